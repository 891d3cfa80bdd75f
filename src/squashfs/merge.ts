/**
 * The merged view of a stack of images with OverlayFS semantics, as the
 * kernel shows it when the images are lower layers (bottom first):
 *
 *   - a character device 0:0 is a whiteout: the name is gone in this layer
 *     and every layer below it;
 *   - a directory with trusted.overlay.opaque=y hides the directories of
 *     the same name below it;
 *   - a non-directory hides everything below it of the same name, and a
 *     directory over a non-directory stands alone;
 *   - a merged directory takes its attributes from its topmost layer.
 */
import type { DirInode, Inode } from './inode.js';
import type { ImageTables } from './tables.js';

export interface LayerDir {
  layer: number;
  dir: DirInode;
}

export interface MergedEntry {
  name: Buffer;
  /** The layer the entry's inode comes from (the topmost that has it). */
  layer: number;
  inode: Inode;
  /** For directories: every layer's directory merged into this one, top first. */
  dirs: LayerDir[];
}

const NONE: readonly LayerDir[] = [];
const OVERLAY_PREFIX = Buffer.from('trusted.overlay.');
// A trusted.overlay.X set through an overlay is stored escaped (kernel 6.7+), and shown
// unescaped again from a lower layer: the user's xattr, not overlay bookkeeping.
const ESCAPED_PREFIX = Buffer.from('trusted.overlay.overlay.');

const startsWith = (name: Buffer, prefix: Buffer): boolean =>
  name.length >= prefix.length && prefix.equals(name.subarray(0, prefix.length));

/**
 * The default xattr filter of the writer: overlay bookkeeping
 * (trusted.overlay.*) is not carried over; escaped user xattrs
 * (trusted.overlay.overlay.*) are.
 */
export function dropOverlayXattrs(name: Buffer): boolean {
  return !startsWith(name, OVERLAY_PREFIX) || startsWith(name, ESCAPED_PREFIX);
}
const OPAQUE = Buffer.from('trusted.overlay.opaque');

export function isWhiteout(inode: Inode): boolean {
  return inode.kind === 'chardev' && inode.major === 0 && inode.minor === 0;
}

export class OverlayMerge {
  /**
   * layers: bottom first, as the manifest lists them. keepWhiteouts: take
   * whiteouts as plain entries (rewriting one layer, whose whiteouts must
   * stay whiteouts for the images it will be stacked on).
   */
  constructor(
    readonly layers: readonly ImageTables[],
    private readonly keepWhiteouts = false,
  ) {}

  /**
   * Most directories exist in one layer only (the base): their listing is
   * already sorted and nothing below needs hiding, so no map or sort.
   */
  private singleLayer({ layer, dir }: LayerDir): MergedEntry[] {
    const t = this.layers[layer];
    if (!t) return [];
    const out: MergedEntry[] = [];
    let sorted = true;
    let prev: Buffer | null = null;
    for (const e of t.entries(dir)) {
      const inode = t.entryInode(e);
      if (!this.keepWhiteouts && isWhiteout(inode)) continue;
      if (prev && Buffer.compare(prev, e.name) >= 0) sorted = false;
      prev = e.name;
      out.push({
        name: e.name,
        layer,
        inode,
        dirs: inode.kind === 'dir' ? [{ layer, dir: inode }] : (NONE as LayerDir[]),
      });
    }
    // Listings made by mksquashfs are sorted; others are put in order here.
    return sorted ? out : out.sort((a, b) => Buffer.compare(a.name, b.name));
  }

  async isOpaque(layer: number, dir: DirInode): Promise<boolean> {
    if (dir.xattrIndex === null) return false;
    const t = this.layers[layer];
    if (!t) return false;
    const xs = await t.image.xattrs(dir);
    return xs.some((x) => x.name.equals(OPAQUE) && x.value.length === 1 && x.value[0] === 0x79);
  }

  /** The root directory's layers, top first. */
  async rootDirs(): Promise<LayerDir[]> {
    const out: LayerDir[] = [];
    for (let layer = this.layers.length - 1; layer >= 0; layer--) {
      const t = this.layers[layer];
      if (!t) continue;
      out.push({ layer, dir: t.root });
      if (await this.isOpaque(layer, t.root)) break;
    }
    return out;
  }

  /** The merged entries of a directory (its layers top first), sorted by name bytes. */
  async children(dirs: readonly LayerDir[]): Promise<MergedEntry[]> {
    const only = dirs.length === 1 ? dirs[0] : undefined;
    if (only) return this.singleLayer(only);
    interface Slot {
      entry: MergedEntry;
      /** Still taking directories of the same name from lower layers. */
      open: boolean;
    }
    const byName = new Map<string, Slot>();
    const hidden = new Set<string>();
    for (const { layer, dir } of dirs) {
      const t = this.layers[layer];
      if (!t) continue;
      for (const e of t.entries(dir)) {
        const key = e.name.toString('latin1');
        const have = byName.get(key);
        if (have) {
          if (!have.open) continue;
          if (e.kind !== 'dir') {
            // A file or whiteout below a directory ends the merge there.
            have.open = false;
            continue;
          }
          const inode = t.entryInode(e) as DirInode;
          have.entry.dirs.push({ layer, dir: inode });
          if (await this.isOpaque(layer, inode)) have.open = false;
          continue;
        }
        if (hidden.has(key)) continue;
        const inode = t.entryInode(e);
        if (!this.keepWhiteouts && isWhiteout(inode)) {
          hidden.add(key);
          continue;
        }
        if (inode.kind === 'dir') {
          byName.set(key, {
            entry: { name: e.name, layer, inode, dirs: [{ layer, dir: inode }] },
            open: !(await this.isOpaque(layer, inode)),
          });
        } else {
          byName.set(key, { entry: { name: e.name, layer, inode, dirs: [] }, open: false });
        }
      }
    }
    return [...byName.values()].map((s) => s.entry).sort((a, b) => Buffer.compare(a.name, b.name));
  }
}
