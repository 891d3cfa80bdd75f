/**
 * What the top image of a stack changes in the images below it, read from
 * the images alone (no mount, no root): each path the top layer adds,
 * modifies or deletes, in path order. Only directories the top layer
 * touches are visited, so a one-day layer over a 200k-file base is cheap.
 */
import type { InodeKind } from './inode.js';
import { OverlayMerge, type LayerDir, type MergedEntry } from './merge.js';
import type { ImageTables } from './tables.js';

export interface LayerChange {
  kind: 'A' | 'M' | 'D';
  /** '/'-separated bytes relative to the root. */
  path: Buffer;
  type: InodeKind;
}

const SLASH = Buffer.from('/');

export const joinPath = (dir: Buffer, name: Buffer): Buffer =>
  dir.length ? Buffer.concat([dir, SLASH, name]) : name;

/** E and, for a dir, everything below it in MERGE, as KIND changes. */
export async function listAll(
  out: LayerChange[],
  merge: OverlayMerge,
  kind: 'A' | 'D',
  path: Buffer,
  e: MergedEntry,
): Promise<void> {
  out.push({ kind, path, type: e.inode.kind });
  if (e.inode.kind !== 'dir') return;
  for (const c of await merge.children(e.dirs))
    await listAll(out, merge, kind, joinPath(path, c.name), c);
}

/** tables: bottom first; the last one is the layer whose changes are listed. */
export async function diffTopLayer(tables: readonly ImageTables[]): Promise<LayerChange[]> {
  const top = tables.length - 1;
  if (top < 1) return [];
  const lower = new OverlayMerge(tables.slice(0, top));
  const full = new OverlayMerge(tables);
  const out: LayerChange[] = [];
  const join = joinPath;
  const all = (merge: OverlayMerge, kind: 'A' | 'D', path: Buffer, e: MergedEntry) =>
    listAll(out, merge, kind, path, e);

  const visit = async (path: Buffer, below: LayerDir[], now: LayerDir[]): Promise<void> => {
    const a = below.length ? await lower.children(below) : [];
    const b = await full.children(now);
    let i = 0;
    let j = 0;
    while (i < a.length || j < b.length) {
      const x = a[i];
      const y = b[j];
      const order = !x ? 1 : !y ? -1 : Buffer.compare(x.name, y.name);
      if (order < 0 && x) {
        await all(lower, 'D', join(path, x.name), x);
        i++;
        continue;
      }
      if (order > 0 && y) {
        await all(full, 'A', join(path, y.name), y);
        j++;
        continue;
      }
      i++;
      j++;
      if (!x || !y || y.layer !== top) continue; // untouched by the layer
      const p = join(path, y.name);
      if (x.inode.kind !== y.inode.kind) {
        await all(lower, 'D', p, x);
        await all(full, 'A', p, y);
      } else if (y.inode.kind !== 'dir') {
        out.push({ kind: 'M', path: p, type: y.inode.kind });
      } else {
        const xi = x.inode;
        const yi = y.inode;
        const ids = (t: ImageTables | undefined, n: number): number | undefined =>
          t?.image.idList()[n];
        const xt = tables[x.layer];
        const yt = tables[y.layer];
        if (
          xi.permissions !== yi.permissions ||
          ids(xt, xi.uidIndex) !== ids(yt, yi.uidIndex) ||
          ids(xt, xi.gidIndex) !== ids(yt, yi.gidIndex)
        ) {
          out.push({ kind: 'M', path: p, type: 'dir' });
        }
        await visit(p, x.dirs, y.dirs);
      }
    }
  };
  await visit(Buffer.alloc(0), await lower.rootDirs(), await full.rootDirs());
  return out;
}
