/**
 * The store directory of one tree: its images, its manifest, and the temp
 * files that a crashed run may have left (removed by the next run, under the
 * tree's lock). Old generations beyond `keep` are forgotten here, and images
 * no remaining generation needs are deleted, only after the manifest that
 * stops naming them is durable.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { ensureSecureDir } from '../fs/secure.js';
import { errnoCode } from '../errors.js';
import { IMAGE_NAME, readManifest, writeManifest, type Manifest } from './manifest.js';

export const TEMP_PREFIX = '.tmp-';
export const STAGE_PREFIX = '.stage-';

export function imagePath(store: string, file: string): string {
  return join(store, file);
}

/** The store is private: images hold files of any mode (0600 ones too), so only its owner reads them. */
export async function ensureStore(store: string): Promise<void> {
  await secureStore(store);
  await ensureSecureDir(store, { mode: 0o700, parents: true });
}

/**
 * Make an existing store of ours private: the dir 0700, its files 0600.
 * Stores written before stores were private (0755, images 0644) are fixed
 * by the next command that names the tree. A store of another owner, or on
 * a read-only filesystem, is left as it is (the commands that write to it
 * refuse it their own way).
 */
export async function secureStore(store: string): Promise<void> {
  const me = process.geteuid?.() ?? 0;
  const tighten = async (path: string, mode: number): Promise<void> => {
    try {
      await fsp.chmod(path, mode);
    } catch (e) {
      if (errnoCode(e) !== 'EROFS' && errnoCode(e) !== 'EPERM') throw e;
    }
  };
  let st;
  try {
    st = await fsp.lstat(store);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'EACCES') return;
    throw e;
  }
  if (!st.isDirectory() || st.uid !== me) return;
  if ((st.mode & 0o077) !== 0) await tighten(store, 0o700);
  for (const n of await fsp.readdir(store)) {
    const p = join(store, n);
    const f = await fsp.lstat(p).catch(() => null);
    if (f?.isFile() && f.uid === me && (f.mode & 0o077) !== 0) await tighten(p, 0o600);
  }
}

/** Leftovers of an interrupted run: temp images, staging copies, temp manifests. */
export async function cleanupTemps(store: string): Promise<string[]> {
  let names: string[];
  try {
    names = await fsp.readdir(store);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return [];
    throw e;
  }
  const stale = names.filter(
    (n) =>
      n.startsWith(TEMP_PREFIX) || n.startsWith(STAGE_PREFIX) || /^\.manifest\.json\.tmp-/.test(n),
  );
  for (const n of stale) await fsp.rm(join(store, n), { recursive: true, force: true });
  return stale;
}

export interface GcResult {
  droppedGenerations: number[];
  deletedImages: string[];
  freedBytes: number;
}

/**
 * Keep the current generation and the `keep` newest others; delete images
 * that neither they nor `pinned` (images a mounted or surviving session
 * still stands on) reference.
 */
export async function collectGarbage(
  store: string,
  m: Manifest,
  keep: number,
  pinned: ReadonlySet<string>,
  afterManifest?: () => void,
): Promise<GcResult> {
  const others = m.generations
    .filter((g) => g.generation !== m.current)
    .sort((a, b) => b.generation - a.generation);
  const keepSet = new Set([m.current, ...others.slice(0, keep).map((g) => g.generation)]);
  const dropped = m.generations.filter((g) => !keepSet.has(g.generation)).map((g) => g.generation);
  if (dropped.length > 0) {
    m.generations = m.generations.filter((g) => keepSet.has(g.generation));
  }
  const needed = new Set<string>([...pinned]);
  for (const g of m.generations) for (const f of g.images) needed.add(f);
  const before = Object.keys(m.images).length;
  m.images = Object.fromEntries(Object.entries(m.images).filter(([f]) => needed.has(f)));
  // Rewrite (and fsync) the manifest only when it changed.
  if (dropped.length > 0 || Object.keys(m.images).length !== before) {
    await writeManifest(store, m);
    afterManifest?.();
  }
  const deleted: string[] = [];
  let freed = 0;
  for (const n of await fsp.readdir(store)) {
    if (!IMAGE_NAME.test(n) || needed.has(n)) continue;
    const p = join(store, n);
    const st = await fsp.lstat(p);
    await fsp.rm(p, { force: true });
    deleted.push(n);
    freed += st.size;
  }
  return { droppedGenerations: dropped, deletedImages: deleted, freedBytes: freed };
}

/** Bytes of all images in the store (what the tree costs on disk). */
export async function storeBytes(store: string): Promise<number> {
  let total = 0;
  try {
    for (const n of await fsp.readdir(store)) {
      if (IMAGE_NAME.test(n)) total += (await fsp.lstat(join(store, n))).size;
    }
  } catch (e) {
    if (errnoCode(e) !== 'ENOENT') throw e;
  }
  return total;
}

/**
 * Make a just-published image part of a generation. If the manifest cannot
 * be written (a full disk), the image is removed again so the store holds
 * nothing that no generation names, and the error says nothing was committed.
 */
export async function writeManifestOrUnpublish(
  store: string,
  m: Manifest,
  file: string,
): Promise<void> {
  try {
    await writeManifest(store, m);
  } catch (e) {
    // The rename may have happened before the failure (an fsync of the dir): keep what a manifest names.
    const onDisk = await readManifest(store).catch(() => null);
    if (!onDisk?.images[file]) await fsp.rm(join(store, file), { force: true });
    throw e;
  }
}
