/**
 * One layer format for every engine. A layer must read the same through
 * the kernel overlay and through fuse-overlayfs run by a user, so the copy
 * of the upper a commit packs is brought into one form first:
 *
 * - Deletions are whiteouts, char devices 0/0 (what the kernel writes, and
 *   what fuse-overlayfs writes too where it may mknod them; Linux lets any
 *   user make a 0/0 device since 5.8). A `.wh.NAME` file, fuse-overlayfs's
 *   fallback, becomes a whiteout NAME.
 * - An opaque directory hides all of the lower dir. The kernel marks it
 *   with trusted.overlay.opaque, which a user's fuse-overlayfs cannot read;
 *   fuse-overlayfs marks it with a `.wh..wh..opq` file (plus a `.wh..opq`
 *   whiteout and user.fuseoverlayfs.opaque), which the kernel shows as a
 *   plain file. So every name an opaque dir hides gets an explicit
 *   whiteout, and fuse-overlayfs's marker files are dropped. Such a dir
 *   must then lose trusted.overlay.opaque: the kernel lists a dir that is
 *   opaque (so not merged with anything) straight from the layer, and would
 *   show the whiteouts in it as names that cannot be opened. Without the
 *   xattr it merges the dir with the lower ones and the whiteouts hide
 *   exactly what opacity hid. user.fuseoverlayfs.opaque stays (the kernel
 *   ignores it).
 * - The upper's trusted.overlay.* xattrs (opaque, impure, origin) go too:
 *   they mean nothing below an upper, and squashfuse 0.1.104 shows
 *   trusted.* xattrs of an image as security.*, which fuse-overlayfs then
 *   passes through as ordinary xattrs of the tree. Node cannot remove an
 *   xattr and mksquashfs 4.5 cannot leave them out, so the packed layer is
 *   rewritten without them (publish.ts, by the SquashFS writer: blocks
 *   copied, whiteouts kept).
 *
 * Measured with fuse-overlayfs 1.10, squashfuse 0.1.104, Linux 6.18.
 *
 * What the upper hides is read off the merged view (Node cannot read
 * xattrs): a name in the lower dir that the upper does not have and the
 * merged tree does not show is hidden. The lower stack below a layer never
 * changes, so whiteouts for the names it has now are exact.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { run } from '../exec/run.js';
import { fsPath, joinRel } from '../fs/paths.js';
import { walk, type Entry } from '../fs/walk.js';

/** fuse-overlayfs's opaque-dir markers: a plain file and a whiteout of that name. */
export const OPAQUE_MARKERS = new Set(['.wh..wh..opq', '.wh..opq']);
const WH_PREFIX = '.wh.';

const baseName = (rel: string): string => rel.slice(rel.lastIndexOf('/') + 1);
const parentOf = (rel: string): string => rel.slice(0, Math.max(0, rel.lastIndexOf('/')));

export const isWhiteout = (e: Entry): boolean => e.type === 'char' && e.rdev === 0;

/** An entry of a fuse-overlayfs upper that is bookkeeping, not content. */
export function isFuseMarker(e: Entry): boolean {
  return OPAQUE_MARKERS.has(baseName(e.path));
}

async function lexists(p: string | Buffer): Promise<boolean> {
  try {
    await fsp.lstat(p);
    return true;
  } catch {
    return false;
  }
}

async function readNames(p: string | Buffer): Promise<string[] | undefined> {
  try {
    return (await fsp.readdir(p, { encoding: 'buffer' })).map((n) => n.toString('latin1'));
  } catch {
    return undefined;
  }
}

export interface NormalizeResult {
  /** fuse-overlayfs marker files removed. */
  markers: number;
  /** `.wh.NAME` files turned into whiteouts. */
  converted: number;
  /** Whiteouts added for names an opaque dir hides. */
  expanded: number;
}

/**
 * Bring the staged copy of an upper (`stage`) into the one layer form.
 * `lowerRoot` is the merged view of the images below it, `mergedRoot` the
 * mounted tree the upper belongs to.
 */
export async function normalizeLayer(
  stage: string,
  lowerRoot: string,
  mergedRoot: string,
  mergedNlinks?: ReadonlyMap<string, number> | null,
): Promise<NormalizeResult> {
  const result: NormalizeResult = { markers: 0, converted: 0, expanded: 0 };
  const entries = await walk(stage);
  const whiteouts: string[] = [];
  for (const e of entries) {
    if (e.path === '') continue;
    const name = baseName(e.path);
    if (!name.startsWith(WH_PREFIX)) continue;
    // A real file of that name is in the tree: content, not a marker.
    if (await lexists(fsPath(mergedRoot, e.path))) continue;
    if (OPAQUE_MARKERS.has(name)) {
      await fsp.rm(fsPath(stage, e.path), { force: true });
      result.markers++;
    } else if (e.type === 'file' && e.size === 0) {
      await fsp.rm(fsPath(stage, e.path), { force: true });
      const target = joinRel(parentOf(e.path), name.slice(WH_PREFIX.length));
      if (!(await lexists(fsPath(stage, target)))) whiteouts.push(target);
      result.converted++;
    }
  }
  // Every dir the upper shares with the lower: names it hides without a whiteout.
  for (const e of entries) {
    if (e.type !== 'dir') continue;
    // The overlay shows a merged (not opaque) dir with st_nlink 1 (see opacity.ts): it hides nothing.
    if (e.nlink >= 2 && mergedNlinks?.get(e.path) === 1) continue;
    const lowerNames = await readNames(fsPath(lowerRoot, e.path));
    if (!lowerNames) continue;
    const stageNames = new Set((await readNames(fsPath(stage, e.path))) ?? []);
    const pendingHere = new Set(whiteouts.filter((w) => parentOf(w) === e.path).map(baseName));
    for (const n of lowerNames) {
      if (stageNames.has(n) || pendingHere.has(n)) continue;
      const rel = joinRel(e.path, n);
      if (await lexists(fsPath(mergedRoot, rel))) continue;
      whiteouts.push(rel);
      result.expanded++;
    }
  }
  await makeWhiteouts(stage, whiteouts);
  return result;
}

/**
 * mknod has no Node API, and one mknod process per whiteout costs ~2 ms
 * (843 whiteouts for a day of Gentoo syncs: 1.8 s). So one device is made
 * under a plain temporary name and every whiteout is a hard link to it: a
 * char device 0/0 at a path is a whiteout whatever its link count, to the
 * kernel overlay, fuse-overlayfs and the SquashFS writer alike. link takes
 * binary names; a command line would have to be UTF-8.
 */
async function makeWhiteouts(stage: string, rels: readonly string[]): Promise<void> {
  if (rels.length === 0) return;
  const temp = '.squashtree-whiteout';
  await run('mknod', ['-m', '000', temp, 'c', '0', '0'], {
    cwd: stage,
    hint: 'the staging filesystem must allow whiteout devices (char 0/0)',
  });
  try {
    for (const rel of rels) await fsp.link(join(stage, temp), fsPath(stage, rel));
  } finally {
    await fsp.rm(join(stage, temp), { force: true });
  }
}

/** Normalize the staged upper and return its entries as they will be packed. */
export async function layerForm(
  stage: string,
  lowerRoot: string,
  mergedRoot: string,
  exclude: readonly string[],
  mergedNlinks?: ReadonlyMap<string, number> | null,
): Promise<Entry[]> {
  await normalizeLayer(stage, lowerRoot, mergedRoot, mergedNlinks);
  const skip = (rel: string): boolean => exclude.some((x) => rel === x || rel.startsWith(`${x}/`));
  return walk(stage, exclude.length ? { skip } : {});
}
