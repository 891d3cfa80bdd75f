/**
 * The merged view of a generation's image files, read with the native
 * reader, as the kernel overlay shows them stacked (bottom first): a
 * whiteout (char 0/0) hides a name in the layers below; a non-directory
 * hides everything below it; a directory merges with the directories of
 * the same name below it unless it carries trusted.overlay.opaque=y.
 *
 * Lazy on purpose: a commit looks up the paths its upper touches and lists
 * the directories they are in, and only those metadata blocks are read, so
 * the cost follows the change, not the tree (a whole-table decode of a
 * Gentoo-sized base is what the writer needs, not what a commit needs).
 */
import type { EntryType } from '../fs/walk.js';
import { joinRel, parentOf } from '../fs/paths.js';
import { imagePath } from '../store/store.js';
import { damagedStackImage } from '../store/image-errors.js';
import { SquashtreeError, errnoCode, errorMessage } from '../errors.js';
import {
  SquashfsImage,
  isWhiteout,
  type DirEntry,
  type DirInode,
  type Inode,
  type InodeKind,
  type Stat,
} from '../squashfs/index.js';

export const TYPE_OF: Readonly<Record<InodeKind, EntryType>> = {
  file: 'file',
  dir: 'dir',
  symlink: 'symlink',
  chardev: 'char',
  blockdev: 'block',
  fifo: 'fifo',
  socket: 'socket',
};

const OPAQUE = Buffer.from('trusted.overlay.opaque');

interface LayerDir {
  layer: number;
  dir: DirInode;
}

/** What the stack shows at a path: the inode of the topmost layer that has it. */
export interface StackEntry {
  path: string;
  type: EntryType;
  layer: number;
  inode: Inode;
  /** For a directory: the layers' directories merged into it, top first. */
  dirs: LayerDir[];
}

export class StackView {
  private readonly resolved = new Map<string, Promise<StackEntry | undefined>>();

  private constructor(
    readonly images: readonly SquashfsImage[],
    /** Each layer's listings read so far, by layer and dir inode; shared with views stacked on this one. */
    private readonly listings = new Map<string, Map<string, DirEntry>>(),
    /** How many of the images (from the bottom) another view owns. */
    private readonly borrowed = 0,
  ) {}

  /** Open image files (absolute paths, bottom first). */
  static async open(paths: readonly string[]): Promise<StackView> {
    const images: SquashfsImage[] = [];
    try {
      for (const p of paths) images.push(await SquashfsImage.open(p));
    } catch (e) {
      for (const img of images) await img.close();
      throw e;
    }
    return new StackView(images);
  }

  /** A store's images by file name, bottom first; a missing or damaged one is named as such. */
  static async openInStore(store: string, files: readonly string[]): Promise<StackView> {
    try {
      return await StackView.open(files.map((f) => imagePath(store, f)));
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') {
        throw new SquashtreeError(
          'E_IMAGE_MISSING',
          `an image of the stack is missing: ${errorMessage(e)}`,
          {
            path: store,
            hint: 'squashtree verify names it; restore it, or roll back to a generation whose images are there (squashtree rollback)',
            cause: e,
          },
        );
      }
      throw damagedStackImage(e, store) ?? e;
    }
  }

  /**
   * This stack with one more image on top (a new layer, before it is
   * published). What was read of the images below is not read again; close
   * the new view before this one (it closes only the image it added).
   */
  async withTop(path: string): Promise<StackView> {
    const top = await SquashfsImage.open(path);
    return new StackView([...this.images, top], this.listings, this.images.length);
  }

  async close(): Promise<void> {
    for (const img of this.images.slice(this.borrowed)) await img.close();
  }

  private image(layer: number): SquashfsImage {
    const img = this.images[layer];
    if (!img) throw new Error(`no layer ${layer}`);
    return img;
  }

  private async opaque(layer: number, dir: DirInode): Promise<boolean> {
    if (dir.xattrIndex === null) return false;
    const xs = await this.image(layer).xattrs(dir);
    return xs.some((x) => x.name.equals(OPAQUE) && x.value.length === 1 && x.value[0] === 0x79);
  }

  /** One layer's listing of one of its directories, by name (binary string). */
  private async listing(layer: number, dir: DirInode): Promise<Map<string, DirEntry>> {
    const key = `${layer}:${dir.number}`;
    let m = this.listings.get(key);
    if (!m) {
      m = new Map();
      for await (const e of this.image(layer).entries(dir)) m.set(e.name.toString('latin1'), e);
      this.listings.set(key, m);
    }
    return m;
  }

  private async root(): Promise<StackEntry> {
    const dirs: LayerDir[] = [];
    for (let layer = this.images.length - 1; layer >= 0; layer--) {
      const dir = this.image(layer).root;
      dirs.push({ layer, dir });
      if (await this.opaque(layer, dir)) break;
    }
    const top = dirs[0];
    if (!top) throw new Error('an empty stack of images');
    return { path: '', type: 'dir', layer: top.layer, inode: top.dir, dirs };
  }

  /** The merged entry at binary relative path rel, or undefined where the stack shows nothing. */
  lookup(rel: string): Promise<StackEntry | undefined> {
    let p = this.resolved.get(rel);
    if (!p) {
      p = rel === '' ? this.root() : this.resolve(rel);
      this.resolved.set(rel, p);
    }
    return p;
  }

  private async resolve(rel: string): Promise<StackEntry | undefined> {
    const parent = await this.lookup(parentOf(rel));
    if (parent?.type !== 'dir') return undefined;
    const name = rel.slice(rel.lastIndexOf('/') + 1);
    let found: StackEntry | undefined;
    for (const { layer, dir } of parent.dirs) {
      const e = (await this.listing(layer, dir)).get(name);
      if (!e) continue;
      if (found) {
        // A file or whiteout below a directory ends the merge there.
        if (e.kind !== 'dir') break;
        const inode = (await this.image(layer).inode(e.ref)) as DirInode;
        found.dirs.push({ layer, dir: inode });
        if (await this.opaque(layer, inode)) break;
        continue;
      }
      const inode = await this.image(layer).inode(e.ref);
      if (isWhiteout(inode)) return undefined;
      if (inode.kind !== 'dir')
        return { path: rel, type: TYPE_OF[inode.kind], layer, inode, dirs: [] };
      found = { path: rel, type: 'dir', layer, inode, dirs: [{ layer, dir: inode }] };
      if (await this.opaque(layer, inode)) break;
    }
    return found;
  }

  /** The attributes of an entry (owner, permissions, xattrs), as its image has them. */
  stat(e: StackEntry): Promise<Stat> {
    return this.image(e.layer).stat(e.inode);
  }

  /** Names (binary strings) the stack shows in directory rel with their types; undefined if it is none. */
  async names(rel: string): Promise<Map<string, EntryType> | undefined> {
    const d = await this.lookup(rel);
    if (d?.type !== 'dir') return undefined;
    const seen = new Map<string, EntryType | null>();
    for (const { layer, dir } of d.dirs) {
      for (const [name, e] of await this.listing(layer, dir)) {
        if (seen.has(name)) continue;
        const whiteout = e.kind === 'chardev' && isWhiteout(await this.image(layer).inode(e.ref));
        seen.set(name, whiteout ? null : TYPE_OF[e.kind]);
      }
    }
    const out = new Map<string, EntryType>();
    for (const [n, t] of seen) if (t !== null) out.set(n, t);
    return out;
  }

  /** The entry at rel and, for a directory, everything the stack shows below it (parents first). */
  async subtree(rel: string): Promise<StackEntry[]> {
    const top = await this.lookup(rel);
    if (!top) return [];
    const out: StackEntry[] = [top];
    for (let i = 0; i < out.length; i++) {
      const e = out[i];
      if (e?.type !== 'dir') continue;
      for (const name of (await this.names(e.path))?.keys() ?? []) {
        const child = await this.lookup(joinRel(e.path, name));
        if (child) out.push(child);
      }
    }
    return out;
  }
}

/** Bytes of a file entry (0 for anything else). */
export function entrySize(e: StackEntry): number {
  return e.inode.kind === 'file' ? e.inode.size : 0;
}
