/**
 * A session is one mount of a tree. Two stacks of images matter to it:
 *
 * - what is mounted (`lower`): the images its overlay stands on, fixed for
 *   the life of the session; the upper is what changed on top of them, so a
 *   surviving upper is put back on exactly these (and garbage collection
 *   keeps them while the session lasts);
 * - what the current generation stacks: after a commit while mounted the
 *   upper still holds the committed changes, and the session records that
 *   they live in generation `committedGeneration` (its images: the lower,
 *   or a base compacted from it, plus one layer per commit). The next
 *   commit packs only what changed since then, on top of those images,
 *   read off the snapshot of the upper that generation holds (snapshot.ts).
 */
import { promises as fsp } from 'node:fs';
import { z } from 'zod';
import { errnoCode, SquashtreeError } from '../errors.js';
import { writeFileAtomic } from '../fs/durable.js';
import { checkOwnedFile } from '../fs/secure.js';
import { ENGINES, type EngineName } from '../config/schema.js';
import type { Layout } from './layout.js';
import { removeSnapshots } from './snapshot.js';

const sessionSchema = z.object({
  format: z.literal('squashtree-session/1'),
  tree: z.string(),
  dir: z.string(),
  /** Images under the upper, base first. */
  lower: z.array(z.string()).min(1),
  /** Generation that was mounted. */
  generation: z.number().int().positive(),
  /** Tree size of that stack, where known. */
  lowerFiles: z.number().nullable(),
  lowerBytes: z.number().nullable(),
  mountedAt: z.string(),
  /** The generation that holds what of the upper is committed (a commit's or a compaction's). */
  committedGeneration: z.number().int().positive().nullable(),
  /** The engine that mounted it (absent in records written before engines: the kernel's). */
  engine: z.enum(ENGINES).optional(),
});

export type Session = z.infer<typeof sessionSchema>;

export async function readSession(path: string): Promise<Session | null> {
  let text: string;
  try {
    if (!(await checkOwnedFile(path))) return null;
    text = await fsp.readFile(path, 'utf8');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return null;
    throw e;
  }
  const parsed = sessionSchema.safeParse(JSON.parse(text));
  if (!parsed.success) {
    throw new SquashtreeError('E_MANIFEST', `session record ${path} is damaged`, {
      path,
      hint: 'if the tree is not mounted, remove the file; pending changes in a disk upper stay where they are',
    });
  }
  return parsed.data;
}

export async function writeSession(path: string, s: Session): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(s, null, 2)}\n`, 0o600);
}

export async function removeSession(layout: Layout): Promise<void> {
  await fsp.rm(layout.sessionFile, { force: true });
  await removeSnapshots(layout);
}

/** The engine a session was mounted with (records from before engines: the kernel's). */
export function sessionEngine(s: Session | null): EngineName {
  return s?.engine ?? 'kernel';
}
