/**
 * Metadata blocks: a 2-byte header (bit 15: stored uncompressed; low 15
 * bits: on-disk size, at most 8 KiB) followed by the block, which unpacks to
 * at most 8 KiB. Tables (inodes, directories, lookup tables, xattrs) are runs
 * of such blocks read through a cursor that crosses block boundaries. Blocks
 * are decoded once and kept in a small LRU cache.
 */
import type { Decompressor } from './decompress.js';
import { SquashfsFormatError, SquashfsUnsupportedError } from './errors.js';
import type { BoundedReader } from './source.js';

export const METADATA_SIZE = 8192;

export interface MetadataBlock {
  /** Absolute position of the block's 2-byte header. */
  readonly pos: number;
  readonly data: Buffer;
  /** Absolute position of the next block's header. */
  readonly next: number;
}

export async function decodeBlock(
  decompressor: Decompressor,
  raw: Buffer,
  compressed: boolean,
  limit: number,
  structure: string,
  pos: number,
): Promise<Buffer> {
  if (!compressed) return raw;
  try {
    return await decompressor.decompress(raw, limit);
  } catch (e) {
    if (e instanceof SquashfsUnsupportedError) {
      throw new SquashfsUnsupportedError(structure, e.feature, pos, '');
    }
    if (e instanceof SquashfsFormatError) throw e;
    const msg = e instanceof Error ? e.message : String(e);
    throw new SquashfsFormatError(
      structure,
      `${decompressor.name} decompression failed: ${msg}`,
      pos,
      {
        cause: e,
      },
    );
  }
}

/**
 * Bytes read ahead from a metadata table. A table's blocks lie back to back
 * (2-3 KiB each compressed), and a lookup reads a dir's listing and then its
 * entries' inodes, so one read serves the next blocks too; a read of each
 * block alone is a round trip through libuv's threads: a one-day commit of
 * the 203k-file tree loaded 1,274 blocks and waited 210 ms for them. A file
 * is read synchronously (source.ts, readAtSync): lookups wait for each read
 * anyway, and a page-cached read then costs a quarter of the round trip.
 */
const READ_AHEAD = 64 << 10;

interface Window {
  start: number;
  end: number;
  bytes: Buffer | Promise<Buffer>;
}

export class MetadataCache {
  private readonly blocks = new Map<number, Promise<MetadataBlock>>();
  /** One window per table (by where the table ends): lookups go back and forth between them. */
  private readonly windows = new Map<number, Window>();

  constructor(
    private readonly reader: BoundedReader,
    private readonly decompressor: Decompressor,
    private readonly capacity = 256,
  ) {}

  /** The block whose header is at pos; end bounds the table the block belongs to. */
  get(pos: number, end: number, structure: string): Promise<MetadataBlock> {
    const hit = this.blocks.get(pos);
    if (hit) {
      this.blocks.delete(pos);
      this.blocks.set(pos, hit);
      return hit;
    }
    const p = this.load(pos, end, structure);
    this.blocks.set(pos, p);
    p.catch(() => this.blocks.delete(pos));
    if (this.blocks.size > this.capacity) {
      const oldest = this.blocks.keys().next().value;
      if (oldest !== undefined) this.blocks.delete(oldest);
    }
    return p;
  }

  private async load(pos: number, end: number, structure: string): Promise<MetadataBlock> {
    if (!Number.isSafeInteger(pos) || pos < 0 || pos + 2 > end) {
      throw new SquashfsFormatError(
        structure,
        `metadata block lies outside its table (which ends at byte ${end})`,
        pos,
      );
    }
    const word = (await this.span(pos, 2, end, structure)).readUInt16LE(0);
    const size = word & 0x7fff;
    const compressed = (word & 0x8000) === 0;
    if (size === 0 || size > METADATA_SIZE) {
      throw new SquashfsFormatError(structure, `metadata block has invalid size ${size}`, pos);
    }
    if (pos + 2 + size > end) {
      throw new SquashfsFormatError(
        structure,
        `metadata block of ${size} bytes runs past the end of its table (byte ${end})`,
        pos,
      );
    }
    const inWindow = (await this.span(pos, 2 + size, end, structure)).subarray(2);
    // A stored block is kept as it is: a copy, so the cache does not hold the whole window.
    const raw = compressed ? inWindow : Buffer.from(inWindow);
    const data = await decodeBlock(
      this.decompressor,
      raw,
      compressed,
      METADATA_SIZE,
      structure,
      pos,
    );
    return { pos, data, next: pos + 2 + size };
  }

  /** len bytes at pos of the table that ends at end, from its window or a new one. */
  private async span(pos: number, len: number, end: number, structure: string): Promise<Buffer> {
    let w = this.windows.get(end);
    if (!w || pos < w.start || pos + len > w.end) {
      const stop = Math.min(end, pos + Math.max(len, READ_AHEAD));
      const bytes = this.reader.readSoon(pos, stop - pos, structure);
      const mine: Window = { start: pos, end: stop, bytes };
      this.windows.set(end, (w = mine));
      if (bytes instanceof Promise) {
        bytes.catch(() => {
          if (this.windows.get(end) === mine) this.windows.delete(end);
        });
      }
    }
    const b = await w.bytes;
    return b.subarray(pos - w.start, pos - w.start + len);
  }
}

/** Reads a run of bytes from a metadata table, crossing block boundaries. */
export class MetadataCursor {
  constructor(
    private readonly cache: MetadataCache,
    /** Absolute position of the current block's header. */
    public block: number,
    /** Offset inside the current (uncompressed) block. */
    public offset: number,
    /** Absolute end of the table: no block header at or past it. */
    private readonly end: number,
    private readonly structure: string,
    /** Appended to error messages, such as "(inode 12)". */
    private readonly context = '',
  ) {}

  async read(n: number): Promise<Buffer> {
    const first = await this.cache.get(this.block, this.end, this.structure);
    if (this.offset + n <= first.data.length) {
      const out = first.data.subarray(this.offset, this.offset + n);
      this.offset += n;
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let done = 0;
    let blk = first;
    for (;;) {
      if (this.offset > blk.data.length) {
        throw new SquashfsFormatError(
          this.structure,
          `offset ${this.offset} lies past the end of a ${blk.data.length}-byte metadata block${this.context}`,
          blk.pos,
        );
      }
      const take = Math.min(n - done, blk.data.length - this.offset);
      blk.data.copy(out, done, this.offset, this.offset + take);
      done += take;
      this.offset += take;
      if (done === n) return out;
      // Move on to the next block (its position strictly increases: no loops).
      this.block = blk.next;
      this.offset = 0;
      if (this.block >= this.end) {
        throw new SquashfsFormatError(
          this.structure,
          `record runs past the end of its table (byte ${this.end})${this.context}`,
          blk.pos,
        );
      }
      blk = await this.cache.get(this.block, this.end, this.structure);
    }
  }

  async skip(n: number): Promise<void> {
    let left = n;
    while (left > 0) {
      const step = Math.min(left, METADATA_SIZE);
      await this.read(step);
      left -= step;
    }
  }

  clone(): MetadataCursor {
    return new MetadataCursor(
      this.cache,
      this.block,
      this.offset,
      this.end,
      this.structure,
      this.context,
    );
  }
}

/**
 * A lookup table: fixed-size entries in metadata blocks whose on-disk
 * positions are listed, uncompressed, as u64s at listPos. The blocks are
 * stored before their list, which bounds them.
 */
export class LookupTable {
  private readonly locations = new Map<number, number>();

  constructor(
    private readonly reader: BoundedReader,
    private readonly cache: MetadataCache,
    private readonly listPos: number,
    readonly count: number,
    private readonly entrySize: number,
    private readonly structure: string,
    /** Lowest position a block of this table may have. */
    private readonly start: number,
  ) {}

  static listBytes(count: number, entrySize: number): number {
    return Math.ceil((count * entrySize) / METADATA_SIZE) * 8;
  }

  async blockLocation(blockIndex: number): Promise<number> {
    const known = this.locations.get(blockIndex);
    if (known !== undefined) return known;
    const at = this.listPos + blockIndex * 8;
    const buf = await this.reader.read(at, 8, `${this.structure} location list`);
    const loc = readU64(buf, 0, `${this.structure} location list`, at);
    if (loc < this.start || loc >= this.listPos) {
      throw new SquashfsFormatError(
        this.structure,
        `metadata block location ${loc} lies outside the table (${this.start}..${this.listPos})`,
        at,
      );
    }
    if (this.locations.size >= 4096) this.locations.clear();
    this.locations.set(blockIndex, loc);
    return loc;
  }

  async entry(index: number): Promise<Buffer> {
    if (!Number.isSafeInteger(index) || index < 0 || index >= this.count) {
      throw new SquashfsFormatError(
        this.structure,
        `index ${index} is out of range (the table has ${this.count} entries)`,
        this.listPos,
      );
    }
    const byte = index * this.entrySize;
    const loc = await this.blockLocation(Math.floor(byte / METADATA_SIZE));
    const cursor = new MetadataCursor(
      this.cache,
      loc,
      byte % METADATA_SIZE,
      this.listPos,
      this.structure,
    );
    return cursor.read(this.entrySize);
  }
}

/** A little-endian u64 as a safe integer; larger values are a format error. */
export function readU64(buf: Buffer, off: number, structure: string, pos: number): number {
  const v = buf.readBigUInt64LE(off);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new SquashfsFormatError(structure, `64-bit value ${v} is too large`, pos);
  }
  return Number(v);
}

/** The "absent" marker for optional tables and indexes. */
export const ABSENT_U64 = 0xffffffffffffffffn;
export const ABSENT_U32 = 0xffffffff;

/** Describes what a record belongs to, for error messages: " (inode 12)". */
export type Context = (subject: number) => string;

/**
 * A whole metadata table decoded into one buffer, for bulk readers (the
 * writer) that would spend most of their time awaiting a cursor otherwise.
 * Records that cross a block boundary are contiguous here.
 */
export class DecodedTable {
  private constructor(
    readonly data: Buffer,
    /** Block position relative to the table start -> where its bytes start in data. */
    private readonly starts: Map<number, number>,
    readonly structure: string,
    /** Absolute position of the table's first block. */
    readonly tableStart: number,
  ) {}

  private sorted: [number, number][] | null = null;

  /** Decode every block in [start, end); refuses to decode more than maxBytes. */
  static async load(
    reader: BoundedReader,
    decompressor: Decompressor,
    start: number,
    end: number,
    structure: string,
    maxBytes: number,
  ): Promise<DecodedTable> {
    const raw = await reader.read(start, end - start, structure);
    // Count the blocks first, so the decoded bytes go into one buffer.
    let blocks = 0;
    for (let pos = 0; pos + 2 <= raw.length; blocks++) pos += 2 + (raw.readUInt16LE(pos) & 0x7fff);
    const cap = Math.min(blocks * METADATA_SIZE, maxBytes);
    const data = Buffer.allocUnsafe(cap);
    const starts = new Map<number, number>();
    let total = 0;
    let pos = 0;
    while (pos < raw.length) {
      if (pos + 2 > raw.length) {
        throw new SquashfsFormatError(structure, 'a block header runs past the table', start + pos);
      }
      const word = raw.readUInt16LE(pos);
      const size = word & 0x7fff;
      if (size === 0 || size > METADATA_SIZE || pos + 2 + size > raw.length) {
        throw new SquashfsFormatError(
          structure,
          `metadata block has invalid size ${size}`,
          start + pos,
        );
      }
      const block = await decodeBlock(
        decompressor,
        raw.subarray(pos + 2, pos + 2 + size),
        (word & 0x8000) === 0,
        METADATA_SIZE,
        structure,
        start + pos,
      );
      if (total + block.length > cap) {
        throw new SquashfsFormatError(
          structure,
          `the table decodes to more than ${maxBytes} bytes`,
          start + pos,
        );
      }
      starts.set(pos, total);
      block.copy(data, total);
      total += block.length;
      pos += 2 + size;
    }
    return new DecodedTable(data.subarray(0, total), starts, structure, start);
  }

  /**
   * The blocks (positions relative to the table start, as references name
   * them) that hold bytes [from, to) of the decoded data, in order.
   */
  blocksIn(from: number, to: number): number[] {
    this.sorted ??= [...this.starts].sort((a, b) => a[1] - b[1]);
    const s = this.sorted;
    let lo = 0;
    let hi = s.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if ((s[mid]?.[1] ?? 0) <= from) lo = mid;
      else hi = mid - 1;
    }
    const out: number[] = [];
    for (let i = lo; i < s.length && (s[i]?.[1] ?? 0) < Math.max(to, from + 1); i++) {
      out.push(s[i]?.[0] ?? 0);
    }
    return out;
  }

  /**
   * Where (block relative to the table start, offset in it) lies in data.
   * Errors name context(subject); the message is only built on failure.
   */
  at(block: number, offset: number, context: Context, subject: number): number {
    const base = this.starts.get(block);
    if (base === undefined || offset >= METADATA_SIZE || base + offset > this.data.length) {
      throw new SquashfsFormatError(
        this.structure,
        `reference to block ${block} offset ${offset} does not point into the table${context(subject)}`,
        this.tableStart,
      );
    }
    return base + offset;
  }

  /** n bytes at a position of data, or a format error naming the structure. */
  slice(pos: number, n: number, context: Context, subject: number): Buffer {
    if (pos < 0 || n < 0 || pos + n > this.data.length) {
      throw new SquashfsFormatError(
        this.structure,
        `record of ${n} bytes at decoded offset ${pos} runs past the end of the table${context(subject)}`,
        this.tableStart,
      );
    }
    return this.data.subarray(pos, pos + n);
  }
}
