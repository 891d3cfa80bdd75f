/**
 * Writing metadata tables: records are appended to 8 KiB blocks, each block
 * stored compressed when that is smaller (2-byte header: bit 15 set when
 * stored as is). A record's reference is the position of its block's header
 * relative to the table start and its offset inside the uncompressed block,
 * which is what inodes, listings and lookup tables point with.
 */
import type { MetadataCompressor } from './compress.js';
import { METADATA_SIZE } from './metadata.js';

export class MetadataWriter {
  /**
   * The finished blocks, back to back. One growing buffer: zlib hands back
   * views of 16 KiB chunks, and keeping 2,000 of those would hold 32 MiB.
   */
  private out = Buffer.allocUnsafe(64 << 10);
  /** Bytes of the finished blocks, headers included. */
  private written = 0;
  private readonly pending = Buffer.alloc(METADATA_SIZE * 2);
  private pendingLen = 0;
  /** Where each finished block starts, relative to the table start. */
  readonly blockStarts: number[] = [];

  constructor(private readonly compressor: MetadataCompressor) {}

  /** Block (relative to the table start) and offset where the next byte goes. */
  position(): { block: number; offset: number } {
    return { block: this.written, offset: this.pendingLen };
  }

  /** Uncompressed bytes written so far (blocks are 8 KiB each but the last). */
  get uncompressed(): number {
    return this.blockStarts.length * METADATA_SIZE + this.pendingLen;
  }

  /**
   * Where the block holding uncompressed byte `pos` starts (relative to the
   * table start): a finished block's position, or the one being filled,
   * which starts where the finished ones end.
   */
  blockStartAt(pos: number): number {
    const k = Math.floor(pos / METADATA_SIZE);
    return this.blockStarts[k] ?? this.written;
  }

  /** The reference ((block << 16) | offset) of the next byte. */
  ref(): number {
    return this.written * 65536 + this.pendingLen;
  }

  write(data: Buffer): void {
    this.writeRange(data, 0, data.length);
  }

  /** Bytes [start, end) of data (no view of them is made). */
  writeRange(data: Buffer, start: number, end: number): void {
    let from = start;
    while (from < end) {
      const take = Math.min(end - from, METADATA_SIZE - this.pendingLen);
      data.copy(this.pending, this.pendingLen, from, from + take);
      this.pendingLen += take;
      from += take;
      if (this.pendingLen === METADATA_SIZE) this.flush();
    }
  }

  private flush(): void {
    if (this.pendingLen === 0) return;
    const raw = this.pending.subarray(0, this.pendingLen);
    const packed = this.compressor.compress(raw);
    const body = packed ?? raw;
    const need = this.written + 2 + body.length;
    if (need > this.out.length) {
      const grown = Buffer.allocUnsafe(Math.max(need, this.out.length * 2));
      this.out.copy(grown, 0, 0, this.written);
      this.out = grown;
    }
    this.out.writeUInt16LE(packed ? body.length : body.length | 0x8000, this.written);
    body.copy(this.out, this.written + 2);
    this.blockStarts.push(this.written);
    this.written = need;
    this.pendingLen = 0;
  }

  /** Close the last block; the table's bytes, in order. */
  finish(): Buffer[] {
    this.flush();
    return [this.out.subarray(0, this.written)];
  }

  /** Total bytes once finished. */
  get size(): number {
    return this.written;
  }
}

/**
 * A lookup table (fragment, export, id): entries in metadata blocks
 * followed by the list of where each block is. Appends both to chunks,
 * which start at `start`; returns the list's position (what the superblock
 * records).
 */
export function writeLookupTable(
  chunks: Buffer[],
  start: number,
  comp: MetadataCompressor,
  entries: readonly Buffer[],
): number {
  const w = new MetadataWriter(comp);
  for (const e of entries) w.write(e);
  chunks.push(...w.finish());
  for (const s of w.blockStarts) {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(start + s), 0);
    chunks.push(b);
  }
  return start + w.size;
}
