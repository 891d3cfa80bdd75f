/**
 * The data region of the new image: every range of data blocks and every
 * fragment block the merged view uses, copied verbatim from its image in
 * image order (so a compaction costs about a copy), with a map from each
 * image's old positions to the new ones; and, after it, new fragment
 * blocks for the live tails of fragment blocks that were mostly dead.
 */
import { SquashfsFormatError, SquashfsWriteError } from './errors.js';
import { ExtentMap } from './extents.js';
import type { FileInode } from './inode.js';
import type { Plan } from './merge-plan.js';
import type { ImageOutput } from './output.js';
import type { ImageTables } from './tables.js';

const COPY_CHUNK = 1 << 20;

export interface CopiedData {
  /** Per layer: old position -> new. */
  maps: ExtentMap[];
  /** Per layer: old fragment index -> index in the new table (copied blocks only). */
  fragIndex: Map<number, number>[];
  /** The new fragment table's entries so far (16 bytes each). */
  fragEntries: Buffer[];
  /** Bytes copied. */
  copied: number;
}

export interface CopyOptions {
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

/** Copy every used range of every image, in image order, to out from `start`. */
export async function copyData(
  tables: readonly ImageTables[],
  plan: Plan,
  repack: readonly Set<number>[],
  out: ImageOutput,
  start: number,
  opts: CopyOptions,
): Promise<CopiedData> {
  const perLayer = tables.map((t, layer) => {
    const ranges = [...(plan.ranges[layer] ?? [])];
    for (const f of plan.frags[layer] ?? []) {
      if (repack[layer]?.has(f)) continue;
      const e = t.fragments[f];
      if (e) ranges.push([e.start, e.word & 0xffffff]);
    }
    return ExtentMap.coalesce(ranges);
  });
  const total = perLayer.reduce((n, r) => n + r.reduce((m, [, l]) => m + l, 0), 0);
  const buffer = Buffer.allocUnsafe(COPY_CHUNK);
  const result: CopiedData = { maps: [], fragIndex: [], fragEntries: [], copied: 0 };
  let pos = start;
  let done = 0;
  for (let layer = 0; layer < tables.length; layer++) {
    const t = tables[layer];
    const map = new ExtentMap();
    result.maps.push(map);
    if (!t) continue;
    for (const [s, n] of perLayer[layer] ?? []) {
      map.add(s, pos, n);
      for (let off = 0; off < n; off += COPY_CHUNK) {
        const len = Math.min(COPY_CHUNK, n - off);
        opts.signal?.throwIfAborted();
        const buf = await t.image.readRaw(s + off, len, 'data block', buffer);
        await out.write(buf.subarray(0, len), pos + off);
        done += len;
        opts.onProgress?.(done, total);
      }
      pos += n;
    }
    // Fragment indexes in the new table, in the old order.
    const idx = new Map<number, number>();
    for (const f of [...(plan.frags[layer] ?? [])].sort((a, b) => a - b)) {
      if (repack[layer]?.has(f)) continue;
      const e = t.fragments[f];
      if (!e) continue;
      idx.set(f, result.fragEntries.length);
      const b = Buffer.alloc(16);
      b.writeBigUInt64LE(BigInt(map.map(e.start)), 0);
      b.writeUInt32LE(e.word, 8);
      result.fragEntries.push(b);
    }
    result.fragIndex.push(idx);
  }
  result.copied = pos - start;
  return result;
}

/** New fragment blocks for repacked tails, written at the end of the data as they fill. */
export class FragmentPacker {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private readonly placed = new Map<string, { fragment: number; offset: number }>();

  constructor(
    private readonly out: ImageOutput,
    private readonly pack: ((block: Buffer) => Buffer | null) | null,
    private readonly entries: Buffer[],
    /** Where the data region ends in the output (new blocks go there). */
    public dataEnd: number,
    private readonly blockSize: number,
  ) {}

  /** A live tail of a repacked fragment block: its place in the new fragment blocks. */
  async place(
    t: ImageTables,
    layer: number,
    inode: FileInode,
  ): Promise<{ fragment: number; offset: number }> {
    const bs = this.blockSize;
    const len = inode.size % bs;
    const key = `${layer}:${inode.fragment}:${inode.fragmentOffset}:${len}`;
    const known = this.placed.get(key);
    if (known) return known;
    if (inode.fragment === null) throw new SquashfsWriteError('verify', 'internal error: no tail');
    const block = await t.image.fragmentData(inode.fragment);
    if (inode.fragmentOffset + len > block.length) {
      throw new SquashfsFormatError(
        'fragment block',
        `tail of inode ${inode.number} lies outside fragment ${inode.fragment}`,
        -1,
      );
    }
    if (this.pendingBytes + len > bs) await this.flush();
    const place = { fragment: this.entries.length, offset: this.pendingBytes };
    this.pending.push(
      Buffer.from(block.subarray(inode.fragmentOffset, inode.fragmentOffset + len)),
    );
    this.pendingBytes += len;
    this.placed.set(key, place);
    return place;
  }

  /** Write the block being filled (compressed where that is smaller) at the end of the data. */
  async flush(): Promise<void> {
    if (this.pendingBytes === 0 || !this.pack) return;
    const raw = Buffer.concat(this.pending, this.pendingBytes);
    const packed = this.pack(raw);
    const body = packed ?? raw;
    await this.out.write(body, this.dataEnd);
    const e = Buffer.alloc(16);
    e.writeBigUInt64LE(BigInt(this.dataEnd), 0);
    e.writeUInt32LE(body.length | (packed ? 0 : 1 << 24), 8);
    this.entries.push(e);
    this.dataEnd += body.length;
    this.pending = [];
    this.pendingBytes = 0;
  }
}
