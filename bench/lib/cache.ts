/**
 * The benchmark's cache of prepared corpora (generated trees, unpacked GURU
 * snapshots, the Linux source tree and its patch, baseline builds), kept
 * between runs in one directory: --cache-dir, else $SQUASHTREE_BENCH_CACHE,
 * else /var/cache/squashtree-bench. An entry is built in a temp dir beside
 * its final name and renamed into place when complete, so an interrupted
 * build is never taken for a finished one. Entries are used read-only; a
 * stale one (its key changed) is left for `rm -rf` and never reused.
 */
import { createHash } from 'node:crypto';
import { promises as fsp, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const DEFAULT_CACHE_DIR = '/var/cache/squashtree-bench';

export function cacheRoot(option: string | undefined): string {
  return option ?? process.env.SQUASHTREE_BENCH_CACHE ?? DEFAULT_CACHE_DIR;
}

/** A short key from strings and the contents of files (a generator's sources, say). */
export function keyOf(parts: readonly string[], files: readonly string[] = []): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(`${p}\0`);
  for (const f of files) h.update(readFileSync(f)).update('\0');
  return h.digest('hex').slice(0, 12);
}

export interface Cached<T> {
  dir: string;
  meta: T;
  /** It was there already. */
  hit: boolean;
}

/**
 * The entry `name` below root: built by `build(dir)` when missing, which
 * returns what meta.json keeps for later runs.
 */
export async function cached<T>(
  root: string,
  name: string,
  build: (dir: string) => Promise<T>,
): Promise<Cached<T>> {
  const dir = join(root, name);
  const metaFile = join(dir, 'meta.json');
  try {
    return { dir, meta: JSON.parse(await fsp.readFile(metaFile, 'utf8')) as T, hit: true };
  } catch {
    // not built yet (or half-built by a run that was stopped: built again below)
  }
  await fsp.mkdir(root, { recursive: true });
  const tmp = `${dir}.tmp-${process.pid}`;
  await fsp.rm(tmp, { recursive: true, force: true });
  await fsp.mkdir(tmp, { recursive: true });
  try {
    const meta = await build(tmp);
    await fsp.writeFile(join(tmp, 'meta.json'), `${JSON.stringify(meta)}\n`);
    await fsp.rm(dir, { recursive: true, force: true });
    await fsp.rename(tmp, dir);
    return { dir, meta, hit: false };
  } catch (e) {
    await fsp.rm(tmp, { recursive: true, force: true });
    throw e;
  }
}
