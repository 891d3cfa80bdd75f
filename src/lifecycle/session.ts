/**
 * A session is one mount of a tree: the images its overlay stands on and
 * what of its upper has already been committed. After a commit while
 * mounted, the upper still holds those changes; the session records that
 * they live in generation N, so the next commit replaces that layer instead
 * of stacking the same changes twice, and a surviving disk upper is put back
 * on exactly the images it was written against.
 */
import { promises as fsp } from 'node:fs';
import { z } from 'zod';
import { errnoCode, SquashtreeError } from '../errors.js';
import { writeFileAtomic } from '../fs/durable.js';
import { checkOwnedFile } from '../fs/secure.js';
import { ENGINES } from '../config/schema.js';

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
  /** Set once a commit has packed this session's upper. */
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

export async function removeSession(path: string, snapshotPath: string): Promise<void> {
  await fsp.rm(path, { force: true });
  await fsp.rm(snapshotPath, { force: true });
}
