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
 * - The upper's other trusted.overlay.* xattrs (impure, origin) go too:
 *   they mean nothing below an upper, and squashfuse 0.1.104 shows
 *   trusted.* xattrs of an image as security.*, which fuse-overlayfs then
 *   passes through as ordinary xattrs of the tree.
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
  const sharedDirs: Entry[] = [];
  for (const e of entries) {
    if (e.type !== 'dir') continue;
    // The overlay shows a merged (not opaque) dir with st_nlink 1 (see opacity.ts): it hides nothing.
    if (e.nlink >= 2 && mergedNlinks?.get(e.path) === 1) {
      sharedDirs.push(e);
      continue;
    }
    const lowerNames = await readNames(fsPath(lowerRoot, e.path));
    if (!lowerNames) continue;
    sharedDirs.push(e);
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
  // Only root can have set trusted.* xattrs (the kernel overlay, or fuse-overlayfs as root).
  if (sharedDirs.length > 0 && process.geteuid?.() === 0)
    await stripOverlayXattrs(stage, sharedDirs);
  return result;
}

/**
 * Node cannot remove an xattr, and setfattr is not everywhere; GNU tar is.
 * Each dir is re-created from a tar of the dir alone that leaves the
 * trusted.overlay.* xattrs out (mode, owner, times and other xattrs kept),
 * its children are moved into the new dir, and the new dir replaces the
 * old. Deepest first, so a dir's moved children are already done; the
 * stage's root last, by renaming a fresh dir over it.
 */
async function stripOverlayXattrs(stage: string, dirs: readonly Entry[]): Promise<void> {
  const tmp = `${stage}.strip`;
  const list = `${stage}.strip.list`;
  const archive = `${stage}.strip.tar`;
  const xattrArgs = ['--xattrs', '--xattrs-include=*', '--xattrs-exclude=trusted.overlay.*'];
  const sorted = [...dirs].sort((a, b) => b.path.length - a.path.length);
  try {
    await fsp.mkdir(tmp, { mode: 0o700 });
    const names = sorted.map((d) =>
      Buffer.concat([Buffer.from(d.path === '' ? '.' : `./${d.path}`, 'latin1'), Buffer.from([0])]),
    );
    await fsp.writeFile(list, Buffer.concat(names));
    await run('tar', [
      '-C',
      stage,
      ...xattrArgs,
      '--no-recursion',
      '--null',
      '-cf',
      archive,
      '-T',
      list,
    ]);
    await run('tar', ['-C', tmp, ...xattrArgs, '-xf', archive]);
    for (const d of sorted) {
      if (d.path !== '')
        await swapDir(asBuffer(fsPath(stage, d.path)), asBuffer(fsPath(tmp, d.path)), d);
    }
    const root = sorted.find((d) => d.path === '');
    if (root) {
      // tmp itself is now the root's copy (tar restored "."'s mode, owner and xattrs onto it).
      await moveChildren(Buffer.from(stage), Buffer.from(tmp));
      await fsp.rmdir(stage);
      await fsp.rename(tmp, stage);
      const t = Number(root.mtimeNs / 1_000_000n) / 1000;
      await fsp.utimes(stage, t, t);
    }
  } finally {
    await fsp.rm(tmp, { recursive: true, force: true });
    await fsp.rm(list, { force: true });
    await fsp.rm(archive, { force: true });
  }
}

const asBuffer = (p: string | Buffer): Buffer =>
  typeof p === 'string' ? Buffer.from(p, 'latin1') : p;

async function moveChildren(
  from: Buffer,
  to: Buffer,
  skip: ReadonlySet<string> = new Set(),
): Promise<void> {
  for (const n of await fsp.readdir(from, { encoding: 'buffer' })) {
    if (skip.has(n.toString('latin1'))) continue;
    await fsp.rename(
      Buffer.concat([from, Buffer.from('/'), n]),
      Buffer.concat([to, Buffer.from('/'), n]),
    );
  }
}

async function swapDir(old: Buffer, fresh: Buffer, e: Entry): Promise<void> {
  await moveChildren(old, fresh);
  await fsp.rmdir(old);
  await fsp.rename(fresh, old);
  const t = Number(e.mtimeNs / 1_000_000n) / 1000;
  await fsp.utimes(old, t, t);
}

/**
 * mknod has no Node API: make the devices under plain temporary names in
 * the stage's root with one shell per batch, then rename each into place
 * (rename takes binary names; a command line would have to be UTF-8).
 */
async function makeWhiteouts(stage: string, rels: readonly string[]): Promise<void> {
  const BATCH = 500;
  for (let i = 0; i < rels.length; i += BATCH) {
    const chunk = rels.slice(i, i + BATCH);
    const temps = chunk.map((_, j) => `.squashtree-wh-${i + j}`);
    await run('sh', ['-c', 'for p; do mknod -m 000 "$p" c 0 0 || exit 1; done', 'sh', ...temps], {
      cwd: stage,
      hint: 'the staging filesystem must allow whiteout devices (char 0/0)',
    });
    for (const [j, rel] of chunk.entries()) {
      await fsp.rename(join(stage, temps[j] ?? ''), fsPath(stage, rel));
    }
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
