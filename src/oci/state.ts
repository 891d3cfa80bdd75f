/**
 * STORE/oci.json: what a follower last applied from a registry (manifest
 * digest, the builder's generation number and the local generation it
 * became). Replaced atomically; a crash leaves the old or the new record,
 * and a missing or stale record only costs a manifest fetch.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { errnoCode } from '../errors.js';
import { writeFileAtomic } from '../fs/durable.js';

export const OCI_STATE_FILE = 'oci.json';

const stateSchema = z.object({
  format: z.literal('squashtree-oci-state/1'),
  ref: z.string(),
  digest: z.string(),
  generation: z.number().int().positive(),
  localGeneration: z.number().int().positive(),
  pulledAt: z.string(),
});

export type OciState = z.infer<typeof stateSchema>;

export async function readOciState(store: string): Promise<OciState | null> {
  try {
    const parsed = stateSchema.safeParse(
      JSON.parse(await fsp.readFile(join(store, OCI_STATE_FILE), 'utf8')),
    );
    return parsed.success ? parsed.data : null;
  } catch (e) {
    if (errnoCode(e) === 'ENOENT' || e instanceof SyntaxError) return null;
    throw e;
  }
}

export async function writeOciState(store: string, s: OciState): Promise<void> {
  await writeFileAtomic(join(store, OCI_STATE_FILE), `${JSON.stringify(s, null, 2)}\n`, 0o644);
}

/** Temp files of an interrupted writeOciState (cleanupTemps knows only the manifest's). */
export async function cleanupOciTemps(store: string): Promise<void> {
  let names: string[];
  try {
    names = await fsp.readdir(store);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return;
    throw e;
  }
  for (const n of names) {
    if (n.startsWith(`.${OCI_STATE_FILE}.tmp-`)) await fsp.rm(join(store, n), { force: true });
  }
}
