/**
 * Which upper dirs of the kernel overlay are opaque, without reading xattrs
 * (Node has no API for them). The overlay shows a dir it merges from an upper and a lower dir with
 * st_nlink 1 (fs/overlayfs/inode.c: "nlink=1 seems to pacify find", since
 * Linux 3.18); an opaque upper dir is not merged and shows its own count, 2
 * or more on tmpfs, ext4 and xfs. So for an upper dir over a lower dir one
 * lstat of the mounted tree tells, provided the upper's own dir counts 2 or
 * more (btrfs dirs count 1) and what the lstat met is the overlay's (same
 * device, no mount on top). Where it cannot tell, the slow way: a lower entry
 * the upper does not mention, yet missing from the mounted tree, was hidden.
 */
import { lstatSync, promises as fsp, readdirSync } from 'node:fs';
import { fsPath, joinRel } from '../fs/paths.js';
import type { Entry } from '../fs/walk.js';

export interface MergedView {
  /** The mounted overlay (the tree's dir). */
  root: string;
  /**
   * st_nlink the mounted tree showed for upper dirs, read while the upper held
   * still (see capture.ts); without it, the mounted tree is read now.
   */
  nlinks?: ReadonlyMap<string, number>;
}

/** st_nlink of each upper dir as the mounted overlay shows it (dirs it shows from elsewhere left out). */
export function readMergedNlinks(
  root: string,
  upperEntries: readonly Entry[],
): Map<string, number> {
  const out = new Map<string, number>();
  const dev = lstatSync(root, { bigint: true }).dev;
  for (const e of upperEntries) {
    if (e.type !== 'dir' || e.path === '') continue;
    const n = mergedNlink(root, e.path, dev);
    if (n !== undefined) out.set(e.path, n);
  }
  return out;
}

/** st_nlink the mounted tree shows for dir rel (undefined: not a dir of the overlay's own). */
export function mergedNlink(
  root: string,
  rel: string,
  dev: bigint = lstatSync(root, { bigint: true }).dev,
): number | undefined {
  try {
    const st = lstatSync(fsPath(root, rel), { bigint: true });
    // Another device: a mount on top, whose link count says nothing about the overlay.
    return st.isDirectory() && st.dev === dev ? Number(st.nlink) : undefined;
  } catch {
    return undefined;
  }
}

async function exists(root: string, rel: string): Promise<boolean> {
  try {
    await fsp.lstat(fsPath(root, rel));
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether upper dir `dir`, which stands on a dir below it, is opaque;
 * undefined when nothing tells (then nothing below is hidden that the upper
 * does not shadow anyway, so the tree is the same either way). `below`
 * lists the names (binary strings) the dir has in the images below it.
 */
export async function isOpaque(
  dir: Entry,
  below: () => Promise<Iterable<string>>,
  upper: ReadonlyMap<string, unknown>,
  merged: MergedView,
): Promise<boolean | undefined> {
  if (dir.nlink >= 2) {
    const n = merged.nlinks ? merged.nlinks.get(dir.path) : mergedNlink(merged.root, dir.path);
    if (n !== undefined) return n !== 1;
  }
  // Opacity is all or nothing per dir: one hidden entry missing from the mounted tree means all are.
  for (const name of await below()) {
    const rel = joinRel(dir.path, name);
    if (upper.has(rel)) continue;
    return !(await exists(merged.root, rel));
  }
  return undefined;
}

/** The names (binary strings) of a plain directory, for isOpaque over a dir on disk. */
export function dirNames(root: string, rel: string): () => Promise<string[]> {
  // eslint-disable-next-line @typescript-eslint/require-await -- async turns a throw into a rejection
  return async () =>
    readdirSync(fsPath(root, rel), { encoding: 'buffer' }).map((n) => n.toString('latin1'));
}
