/**
 * What changed between two stacks (say a generation and its parent, when
 * the generation is one new base), read from the images alone: each path
 * added, modified or deleted, in path order. Unlike diffTopLayer, every
 * directory is visited, and a regular file whose size, mtime, mode and owner
 * are the same is compared by content (SquashFS keeps mtimes in whole
 * seconds, so a file rewritten within the second has the same ones).
 */
import { createHash } from 'node:crypto';
import type { Inode } from './inode.js';
import { joinPath, listAll, type LayerChange } from './layer-diff.js';
import { OverlayMerge, type LayerDir, type MergedEntry } from './merge.js';
import type { ImageTables } from './tables.js';

/** before, after: bottom first. */
export async function diffStacks(
  before: readonly ImageTables[],
  after: readonly ImageTables[],
): Promise<LayerChange[]> {
  const a = new OverlayMerge(before);
  const b = new OverlayMerge(after);
  const out: LayerChange[] = [];
  const join = joinPath;
  const owner = (t: readonly ImageTables[], e: MergedEntry): [number?, number?] => {
    const ids = t[e.layer]?.image.idList() ?? [];
    return [ids[e.inode.uidIndex], ids[e.inode.gidIndex]];
  };
  const digest = async (t: readonly ImageTables[], e: MergedEntry): Promise<string> => {
    const h = createHash('sha256');
    const img = t[e.layer]?.image;
    // The reader's own inode: the tables' sync parse places block lists in the decoded table.
    if (img) for await (const c of img.readFile(await img.inode(e.inode.ref))) h.update(c);
    return h.digest('hex');
  };
  const same = async (x: MergedEntry, y: MergedEntry): Promise<boolean> => {
    const [xu, xg] = owner(before, x);
    const [yu, yg] = owner(after, y);
    if (x.inode.permissions !== y.inode.permissions || xu !== yu || xg !== yg) return false;
    if (x.inode.kind === 'dir') return true;
    if (!sameAttributes(x.inode, y.inode)) return false;
    return x.inode.kind !== 'file' || (await digest(before, x)) === (await digest(after, y));
  };
  const all = (merge: OverlayMerge, kind: 'A' | 'D', path: Buffer, e: MergedEntry) =>
    listAll(out, merge, kind, path, e);
  const visit = async (path: Buffer, da: LayerDir[], db: LayerDir[]): Promise<void> => {
    const xs = await a.children(da);
    const ys = await b.children(db);
    let i = 0;
    let j = 0;
    while (i < xs.length || j < ys.length) {
      const x = xs[i];
      const y = ys[j];
      const order = !x ? 1 : !y ? -1 : Buffer.compare(x.name, y.name);
      if (order < 0 && x) {
        await all(a, 'D', join(path, x.name), x);
        i++;
      } else if (order > 0 && y) {
        await all(b, 'A', join(path, y.name), y);
        j++;
      } else if (x && y) {
        i++;
        j++;
        const p = join(path, y.name);
        if (x.inode.kind !== y.inode.kind) {
          await all(a, 'D', p, x);
          await all(b, 'A', p, y);
          continue;
        }
        if (!(await same(x, y))) out.push({ kind: 'M', path: p, type: y.inode.kind });
        if (y.inode.kind === 'dir') await visit(p, x.dirs, y.dirs);
      }
    }
  };
  await visit(Buffer.alloc(0), await a.rootDirs(), await b.rootDirs());
  return out;
}

function sameAttributes(x: Inode, y: Inode): boolean {
  if (x.mtime !== y.mtime) return false;
  if (x.kind === 'file' && y.kind === 'file') return x.size === y.size;
  if (x.kind === 'symlink' && y.kind === 'symlink') return x.target.equals(y.target);
  if ((x.kind === 'blockdev' || x.kind === 'chardev') && x.kind === y.kind)
    return x.rdev === y.rdev;
  return x.kind === y.kind;
}
