/**
 * File data: the fragment table (where each fragment block lies, its size
 * word) with a small cache of decoded fragment blocks, and a file's
 * contents read block by block through its block size list (sparse blocks
 * are zeros, a short block other than the last is zero-padded) followed by
 * its tail in a fragment block.
 */
import type { Decompressor } from './decompress.js';
import { SquashfsFormatError } from './errors.js';
import type { FileInode } from './inode.js';
import {
  decodeBlock,
  type LookupTable,
  type MetadataCache,
  MetadataCursor,
  readU64,
} from './metadata.js';
import type { BoundedReader } from './source.js';
import type { Superblock } from './superblock.js';

export interface FragmentEntry {
  /** Absolute position of the fragment block. */
  start: number;
  /** On-disk size in the low 24 bits; bit 24 set when stored uncompressed. */
  word: number;
}

export class FragmentReader {
  private readonly blocks = new Map<number, Promise<Buffer>>();

  constructor(
    private readonly reader: BoundedReader,
    private readonly decompressor: Decompressor,
    private readonly table: LookupTable | null,
    private readonly sb: Superblock,
    private readonly capacity: number,
  ) {}

  get count(): number {
    return this.table?.count ?? 0;
  }

  /** One fragment table entry, checked: a valid size word, a block inside the image. */
  async entry(index: number): Promise<FragmentEntry> {
    const table = this.table;
    const at = this.sb.fragmentTableStart ?? -1;
    if (!table)
      throw new SquashfsFormatError('fragment table', 'the image has no fragment table', at);
    const e = await table.entry(index);
    const start = readU64(e, 0, 'fragment table', at);
    const word = e.readUInt32LE(8);
    const size = word & 0xffffff;
    if (word & 0xfe000000 || size === 0 || size > this.sb.blockSize) {
      throw new SquashfsFormatError(
        'fragment table',
        `fragment ${index} has invalid size word 0x${word.toString(16)}`,
        at,
      );
    }
    if (start + size > this.sb.bytesUsed) {
      throw new SquashfsFormatError(
        'fragment table',
        `fragment ${index} (${size} bytes at ${start}) lies outside the image`,
        at,
      );
    }
    return { start, word };
  }

  /** The fragment block with this index, decoded (kept in a small LRU cache). */
  block(index: number): Promise<Buffer> {
    const hit = this.blocks.get(index);
    if (hit) {
      this.blocks.delete(index);
      this.blocks.set(index, hit);
      return hit;
    }
    const p = this.load(index);
    this.blocks.set(index, p);
    p.catch(() => this.blocks.delete(index));
    if (this.blocks.size > this.capacity) {
      const oldest = this.blocks.keys().next().value;
      if (oldest !== undefined) this.blocks.delete(oldest);
    }
    return p;
  }

  clear(): void {
    this.blocks.clear();
  }

  private async load(index: number): Promise<Buffer> {
    const { start, word } = await this.entry(index);
    const size = word & 0xffffff;
    const raw = await this.reader.read(start, size, 'fragment block');
    return decodeBlock(
      this.decompressor,
      raw,
      (word & 0x1000000) === 0,
      this.sb.blockSize,
      'fragment block',
      start,
    );
  }
}

/** A regular file's contents, block by block (the chunks must not be modified). */
export async function* readFileData(
  inode: FileInode,
  reader: BoundedReader,
  decompressor: Decompressor,
  meta: MetadataCache,
  fragments: FragmentReader,
  sb: Superblock,
): AsyncGenerator<Buffer> {
  const bs = sb.blockSize;
  const list = new MetadataCursor(
    meta,
    inode.blockListBlock,
    inode.blockListOffset,
    sb.directoryTableStart,
    'block list',
    ` (inode ${inode.number})`,
  );
  let pos = inode.blocksStart;
  let i = 0;
  while (i < inode.blockCount) {
    const n = Math.min(2048, inode.blockCount - i);
    const sizes = await list.read(n * 4);
    for (let j = 0; j < n; j++, i++) {
      yield await dataBlock(inode, i, sizes.readUInt32LE(j * 4), pos, reader, decompressor, bs);
      pos += sizes.readUInt32LE(j * 4) & 0xffffff;
    }
  }
  if (inode.fragment !== null) {
    const tail = inode.size % bs;
    const frag = await fragments.block(inode.fragment);
    if (inode.fragmentOffset + tail > frag.length) {
      throw new SquashfsFormatError(
        'fragment block',
        `tail of inode ${inode.number} (${tail} bytes at ${inode.fragmentOffset}) lies outside the ${frag.length}-byte fragment ${inode.fragment}`,
        -1,
      );
    }
    yield Buffer.from(frag.subarray(inode.fragmentOffset, inode.fragmentOffset + tail));
  }
}

async function dataBlock(
  inode: FileInode,
  i: number,
  word: number,
  pos: number,
  reader: BoundedReader,
  decompressor: Decompressor,
  bs: number,
): Promise<Buffer> {
  const last = i === inode.blockCount - 1 && inode.fragment === null;
  const expected = last ? inode.size - i * bs : bs;
  const size = word & 0xffffff;
  if (word & 0xfe000000 || size > bs) {
    throw new SquashfsFormatError(
      'data block',
      `block ${i} of inode ${inode.number} has invalid size word 0x${word.toString(16)}`,
      pos,
    );
  }
  if (size === 0) return Buffer.alloc(expected); // sparse
  const raw = await reader.read(pos, size, 'data block');
  const data = await decodeBlock(
    decompressor,
    raw,
    (word & 0x1000000) === 0,
    expected,
    'data block',
    pos,
  );
  if (data.length > expected) {
    throw new SquashfsFormatError(
      'data block',
      `block ${i} of inode ${inode.number} holds ${data.length} bytes, expected ${expected}`,
      pos,
    );
  }
  if (data.length < expected) {
    if (last) {
      throw new SquashfsFormatError(
        'data block',
        `last block of inode ${inode.number} holds ${data.length} bytes, expected ${expected}`,
        pos,
      );
    }
    // A short block other than the last is padded with zeros.
    return Buffer.concat([data, Buffer.alloc(expected - data.length)], expected);
  }
  return data;
}
