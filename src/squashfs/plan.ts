/**
 * The writer's plan of a merge, in flat arrays that the emission and the
 * check of the result both read, so neither walks the inputs again.
 *
 * Entries are stored with each directory's children contiguous, in name
 * order; directories' child blocks appear in the order the walk reaches
 * them (depth first), which is also the order inode numbers are given
 * (a directory before its contents, as mksquashfs numbers them) and the
 * order a reader such as tar reads the files (`tails`).
 */
import { SquashfsFormatError } from './errors.js';
import type { InodeView } from './inode-view.js';
import type { ImageTables } from './tables.js';

export class Plan {
  /** Entries; 0 is the root. */
  n = 0;
  layer = new Uint16Array(0);
  /** The source inode: decoded position in its layer's inode table, and its reference. */
  ipos = new Float64Array(0);
  iref = new Float64Array(0);
  /** The name: position and length in the layer's decoded directory table. */
  npos = new Uint32Array(0);
  nlen = new Uint16Array(0);
  /** Source inode type (1..14). */
  type = new Uint8Array(0);
  /** Output inode number; hard links share their first entry's. */
  number = new Uint32Array(0);
  /** Directories: their children, [first, first + count). */
  first = new Uint32Array(0);
  count = new Uint32Array(0);
  /** Output link count. */
  nlink = new Uint32Array(0);
  /** For a second name of an inode: the entry of its first name; -1 otherwise. */
  linkOf = new Int32Array(0);
  /** Files with a tail in a fragment, in walk order. */
  tails: number[] = [];
  /** Per entry with a tail: its fragment index, offset and length in its layer. */
  frag = new Int32Array(0);
  fragOffset = new Uint32Array(0);
  tailLength = new Uint32Array(0);
  /** Per layer: [start, length, start, length, ...] of data blocks the view uses. */
  ranges: number[][] = [];
  /** Per layer, per fragment index: uncompressed tail bytes of files the view shows (0: unused). */
  live: Float64Array[] = [];
  inodes = 0;
  files = 0;
  dirs = 0;
  /**
   * The layer that is a directory being packed (its files' data is read
   * and compressed, not copied; see skeleton.ts), or -1.
   */
  freshLayer = -1;
  /** That layer's files the view shows (first names only), in walk order, and their skeleton inode numbers. */
  freshFiles: number[] = [];
  freshNumbers: number[] = [];
  /** Per entry: its index in freshFiles, or -1. */
  freshIndex = new Int32Array(0);

  constructor(readonly tables: readonly ImageTables[]) {
    this.ranges = tables.map(() => []);
    this.live = tables.map((t) => new Float64Array(t.fragments.length));
    // The merged view has at most every input's inodes (plus second names of hard links).
    this.grow(tables.reduce((n, t) => n + t.image.superblock.inodeCount, 64));
  }

  private grow(min: number): void {
    const cap = Math.max(min, Math.ceil(this.layer.length * 1.25));
    const re = <T extends { length: number; set(a: T): void }>(a: T, make: (n: number) => T): T => {
      const b = make(cap);
      b.set(a);
      return b;
    };
    this.layer = re(this.layer, (k) => new Uint16Array(k));
    this.ipos = re(this.ipos, (k) => new Float64Array(k));
    this.iref = re(this.iref, (k) => new Float64Array(k));
    this.npos = re(this.npos, (k) => new Uint32Array(k));
    this.nlen = re(this.nlen, (k) => new Uint16Array(k));
    this.type = re(this.type, (k) => new Uint8Array(k));
    this.number = re(this.number, (k) => new Uint32Array(k));
    this.first = re(this.first, (k) => new Uint32Array(k));
    this.count = re(this.count, (k) => new Uint32Array(k));
    this.nlink = re(this.nlink, (k) => new Uint32Array(k));
    this.linkOf = re(this.linkOf, (k) => new Int32Array(k));
    this.frag = re(this.frag, (k) => new Int32Array(k));
    this.fragOffset = re(this.fragOffset, (k) => new Uint32Array(k));
    this.tailLength = re(this.tailLength, (k) => new Uint32Array(k));
    this.freshIndex = re(this.freshIndex, (k) => new Int32Array(k));
  }

  add(layer: number, ipos: number, iref: number, npos: number, nlen: number, type: number): number {
    if (this.n === this.layer.length) this.grow(this.n + 1);
    const i = this.n++;
    this.layer[i] = layer;
    this.ipos[i] = ipos;
    this.iref[i] = iref;
    this.npos[i] = npos;
    this.nlen[i] = nlen;
    this.type[i] = type;
    this.linkOf[i] = -1;
    this.freshIndex[i] = -1;
    return i;
  }

  /** An entry's name (a view into its layer's directory table). */
  name(i: number): Buffer {
    const d = this.tables[this.layer[i] ?? 0]?.directoryTable.data ?? Buffer.alloc(0);
    const p = this.npos[i] ?? 0;
    return d.subarray(p, p + (this.nlen[i] ?? 0));
  }

  /** An entry whose data comes from the directory being packed. */
  isFresh(i: number): boolean {
    return (this.freshIndex[i] ?? -1) >= 0;
  }

  isDir(i: number): boolean {
    const t = this.type[i] ?? 0;
    return t === 1 || t === 8;
  }
}

/** Bytes a file's data blocks take on disk, its size words checked. */
export function storedBytes(t: ImageTables, v: InodeView): number {
  const data = t.inodeTable.data;
  const bs = t.image.superblock.blockSize;
  if (v.varPos + 4 * v.blockCount > data.length) {
    throw new SquashfsFormatError(
      'block list',
      `the block list of inode ${v.number} runs past the end of the inode table`,
      t.inodeTable.tableStart,
    );
  }
  let n = 0;
  for (let i = 0; i < v.blockCount; i++) {
    const w = data.readUInt32LE(v.varPos + 4 * i);
    const size = w & 0xffffff;
    if (w & 0xfe000000 || size > bs) {
      throw new SquashfsFormatError(
        'block list',
        `block ${i} of inode ${v.number} has invalid size word 0x${w.toString(16)}`,
        t.inodeTable.tableStart,
      );
    }
    n += size;
  }
  if (v.start + n > t.image.superblock.bytesUsed) {
    throw new SquashfsFormatError(
      'data block',
      `the blocks of inode ${v.number} run past the end of the image`,
      v.start,
    );
  }
  return n;
}
