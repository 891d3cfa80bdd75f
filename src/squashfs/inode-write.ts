/**
 * Inodes as the writer emits them into the inode table: the 16-byte header
 * (type, permissions, uid and gid as indexes into the new id table, mtime,
 * number) and each type's body, in the basic form where it fits and the
 * extended form otherwise (xattrs, hard links, sparse files, large sizes or
 * offsets, big listings). Inodes are built in one scratch buffer so that
 * 200,000 of them do not allocate 400,000 small buffers.
 */
import { SquashfsFormatError, SquashfsWriteError } from './errors.js';
import type { InodeView } from './inode-view.js';
import type { MetadataCompressor } from './compress.js';
import { MetadataWriter } from './meta-writer.js';

export const ABSENT32 = 0xffffffff;

/** Where a directory's listing went, and what its inode says besides. */
export interface DirFields {
  /** Listing block (relative to the directory table) and offset in it. */
  block: number;
  offset: number;
  /** Listing bytes + 3. */
  size: number;
  nlink: number;
  parent: number;
  xattr: number | null;
  /** The directory index (stored after the inode), and how many entries it has. */
  index: Buffer;
  indexCount: number;
}

export interface FileFields {
  /** Where the file's blocks start in the new image (0 without blocks). */
  start: number;
  fragment: number;
  offset: number;
  nlink: number;
  xattr: number | null;
  /** A packed file's: bytes in holes, and its block size words (else the source inode's). */
  sparse?: number;
  words?: Buffer;
}

/** Where an inode comes from: its image's decoded inode table and id table (the layer names it in errors). */
export interface InodeSource {
  data: Buffer;
  ids: readonly number[];
  layer: number;
}

export class InodeWriter {
  readonly table: MetadataWriter;
  /** Inode number -> reference, for the export table. */
  readonly exportRefs: Float64Array;
  private readonly ids = new Map<number, number>();
  private readonly scratch = Buffer.alloc(64);

  constructor(comp: MetadataCompressor, inodeCount: number) {
    this.table = new MetadataWriter(comp);
    this.exportRefs = new Float64Array(inodeCount + 1);
  }

  /** The new id table: uids and gids in the order first used. */
  idValues(): number[] {
    return [...this.ids.keys()];
  }

  private idIndex(value: number): number {
    let i = this.ids.get(value);
    if (i === undefined) {
      i = this.ids.size;
      if (i >= 65535)
        throw new SquashfsWriteError('too-large', 'more than 65,535 distinct uids and gids');
      this.ids.set(value, i);
    }
    return i;
  }

  /** The header into the scratch buffer, followed by `body` zeroed bytes the caller fills in. */
  private header(
    type: number,
    inode: InodeView,
    src: InodeSource,
    number: number,
    body: number,
  ): Buffer {
    const uid = src.ids[inode.uidIndex];
    const gid = src.ids[inode.gidIndex];
    if (uid === undefined || gid === undefined) {
      throw new SquashfsFormatError(
        'inode',
        `inode ${inode.number} of image ${src.layer} names an id outside the id table`,
        -1,
      );
    }
    const h = this.scratch;
    h.writeUInt16LE(type, 0);
    h.writeUInt16LE(inode.permissions, 2);
    h.writeUInt16LE(this.idIndex(uid), 4);
    h.writeUInt16LE(this.idIndex(gid), 6);
    h.writeUInt32LE(inode.mtime >>> 0, 8);
    h.writeUInt32LE(number, 12);
    h.fill(0, 16, 16 + body);
    return h;
  }

  /**
   * Append the scratch buffer's first `len` bytes as inode `number`, then
   * bytes [from, to) of `tail` (a block list, a symlink target, an index)
   * and a trailing u32.
   */
  private put(
    number: number,
    len: number,
    tail?: Buffer,
    from = 0,
    to = tail?.length ?? 0,
    trailer?: number,
  ): number {
    const ref = this.table.ref();
    this.table.writeRange(this.scratch, 0, len);
    if (tail) this.table.writeRange(tail, from, to);
    if (trailer !== undefined) {
      this.scratch.writeUInt32LE(trailer, 0);
      this.table.writeRange(this.scratch, 0, 4);
    }
    this.exportRefs[number] = ref;
    return ref;
  }

  dir(inode: InodeView, src: InodeSource, number: number, f: DirFields): number {
    if (f.xattr === null && f.indexCount === 0 && f.size <= 0xffff && f.block <= ABSENT32) {
      const b = this.header(1, inode, src, number, 16);
      b.writeUInt32LE(f.block, 16);
      b.writeUInt32LE(f.nlink, 20);
      b.writeUInt16LE(f.size, 24);
      b.writeUInt16LE(f.offset, 26);
      b.writeUInt32LE(f.parent, 28);
      return this.put(number, 32);
    }
    const b = this.header(8, inode, src, number, 24);
    b.writeUInt32LE(f.nlink, 16);
    b.writeUInt32LE(f.size, 20);
    b.writeUInt32LE(f.block, 24);
    b.writeUInt32LE(f.parent, 28);
    b.writeUInt16LE(f.indexCount, 32);
    b.writeUInt16LE(f.offset, 34);
    b.writeUInt32LE(f.xattr ?? ABSENT32, 36);
    return this.put(number, 40, f.index);
  }

  /** A file; its block size words are copied from the source inode. */
  file(inode: InodeView, src: InodeSource, number: number, f: FileFields): number {
    const list = f.words ?? src.data;
    const words = f.words ? 0 : inode.varPos;
    const wordsEnd = f.words ? f.words.length : words + 4 * inode.blockCount;
    const sparse = f.sparse ?? inode.sparse;
    const basic =
      f.xattr === null &&
      f.nlink === 1 &&
      sparse === 0 &&
      f.start <= ABSENT32 &&
      inode.size <= ABSENT32;
    if (basic) {
      const b = this.header(2, inode, src, number, 16);
      b.writeUInt32LE(f.start, 16);
      b.writeUInt32LE(f.fragment, 20);
      b.writeUInt32LE(f.offset, 24);
      b.writeUInt32LE(inode.size, 28);
      return this.put(number, 32, list, words, wordsEnd);
    }
    const b = this.header(9, inode, src, number, 40);
    b.writeBigUInt64LE(BigInt(f.start), 16);
    b.writeBigUInt64LE(BigInt(inode.size), 24);
    b.writeBigUInt64LE(BigInt(sparse), 32);
    b.writeUInt32LE(f.nlink, 40);
    b.writeUInt32LE(f.fragment, 44);
    b.writeUInt32LE(f.offset, 48);
    b.writeUInt32LE(f.xattr ?? ABSENT32, 52);
    return this.put(number, 56, list, words, wordsEnd);
  }

  /** Symlinks, devices, fifos and sockets. */
  leaf(
    inode: InodeView,
    src: InodeSource,
    number: number,
    nlink: number,
    xattr: number | null,
  ): number {
    const ext = xattr !== null;
    const basic = inode.basic;
    switch (basic) {
      case 3: {
        const b = this.header(ext ? 10 : 3, inode, src, number, 8);
        b.writeUInt32LE(nlink, 16);
        b.writeUInt32LE(inode.targetLength, 20);
        const t = inode.varPos;
        return this.put(number, 24, src.data, t, t + inode.targetLength, xattr ?? undefined);
      }
      case 4:
      case 5: {
        const b = this.header(ext ? basic + 7 : basic, inode, src, number, 12);
        b.writeUInt32LE(nlink, 16);
        b.writeUInt32LE(inode.rdev, 20);
        if (ext) b.writeUInt32LE(xattr, 24);
        return this.put(number, ext ? 28 : 24);
      }
      default: {
        const b = this.header(ext ? basic + 7 : basic, inode, src, number, 8);
        b.writeUInt32LE(nlink, 16);
        if (ext) b.writeUInt32LE(xattr, 20);
        return this.put(number, ext ? 24 : 20);
      }
    }
  }
}
