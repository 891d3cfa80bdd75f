/**
 * The data region of the new image: every range of data blocks and every
 * fragment block kept whole, copied verbatim from its image in image order
 * (so a compaction costs about a copy), with a map from each image's old
 * positions to the new ones; then the new fragment blocks that hold the
 * repacked tails (see fragment-plan.ts), compressed and appended.
 */
import { SquashfsFormatError } from './errors.js';
import { ExtentMap } from './extents.js';
import type { FragmentPlacement } from './fragment-plan.js';
import type { Plan } from './plan.js';
import type { ImageOutput } from './output.js';

const COPY_CHUNK = 1 << 20;

export interface CopiedData {
  /** Per layer: old position -> new. */
  maps: ExtentMap[];
  /** The new fragment table's entries (16 bytes each): kept blocks, then new ones. */
  fragEntries: Buffer[];
  /** Bytes copied. */
  copied: number;
  /** Where the data region ends. */
  end: number;
}

export interface CopyOptions {
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

/** Copy the ranges the plan uses and the kept fragment blocks, in image order, to out from `start`. */
export async function copyData(
  plan: Plan,
  placement: FragmentPlacement,
  out: ImageOutput,
  start: number,
  opts: CopyOptions,
): Promise<CopiedData> {
  const tables = plan.tables;
  const perLayer = tables.map((t, layer) => {
    const r = plan.ranges[layer] ?? [];
    const ranges: [number, number][] = [];
    for (let i = 0; i + 1 < r.length; i += 2) ranges.push([r[i] ?? 0, r[i + 1] ?? 0]);
    for (const k of placement.kept) {
      if (k.layer !== layer) continue;
      const e = t.fragments[k.index];
      if (e) ranges.push([e.start, e.word & 0xffffff]);
    }
    return ExtentMap.coalesce(ranges);
  });
  const total = perLayer.reduce((n, r) => n + r.reduce((m, [, l]) => m + l, 0), 0);
  const buffer = Buffer.allocUnsafe(COPY_CHUNK);
  const maps: ExtentMap[] = [];
  let pos = start;
  let done = 0;
  for (let layer = 0; layer < tables.length; layer++) {
    const t = tables[layer];
    const map = new ExtentMap();
    maps.push(map);
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
  }
  const fragEntries = Array.from({ length: placement.count }, () => Buffer.alloc(16));
  for (const { layer, index, newIndex } of placement.kept) {
    const e = tables[layer]?.fragments[index];
    const b = fragEntries[newIndex];
    if (!e || !b) continue;
    b.writeBigUInt64LE(BigInt(maps[layer]?.map(e.start) ?? 0), 0);
    b.writeUInt32LE(e.word, 8);
  }
  return { maps, fragEntries, copied: pos - start, end: pos };
}

/**
 * The new fragment blocks, in order, at `at`: each the repacked tails it
 * holds, back to back, compressed where that is smaller. Their entries in
 * fragEntries are filled in; returns where the data region now ends.
 */
export async function writeNewFragments(
  plan: Plan,
  placement: FragmentPlacement,
  pack: (blocks: Buffer[]) => Promise<(Buffer | null)[]>,
  out: ImageOutput,
  at: number,
  fragEntries: Buffer[],
  signal?: AbortSignal,
): Promise<number> {
  const tables = plan.tables;
  // Decoded source blocks, kept until their last repacked tail is taken.
  const uses = new Map<string, number>();
  const tailOf = (e: number): { layer: number; frag: number; offset: number; len: number } => ({
    layer: plan.layer[e] ?? 0,
    frag: plan.frag[e] ?? -1,
    offset: plan.fragOffset[e] ?? 0,
    len: plan.tailLength[e] ?? 0,
  });
  for (const b of placement.blocks) {
    for (const e of b.tails) {
      const x = tailOf(e);
      const k = `${x.layer}:${x.frag}`;
      uses.set(k, (uses.get(k) ?? 0) + 1);
    }
  }
  const decoded = new Map<string, Buffer>();
  let pos = at;
  // Blocks go to the encoder in batches, so several compress at once and memory stays bounded.
  const BATCH = 16;
  for (let i = 0; i < placement.blocks.length; i += BATCH) {
    signal?.throwIfAborted();
    const raws: Buffer[] = [];
    const batch = placement.blocks.slice(i, i + BATCH);
    for (const b of batch) {
      const parts: Buffer[] = [];
      for (const e of b.tails) {
        const x = tailOf(e);
        const k = `${x.layer}:${x.frag}`;
        const t = tables[x.layer];
        if (!t) continue;
        let block = decoded.get(k);
        if (!block) {
          block = await t.image.fragmentData(x.frag);
          decoded.set(k, block);
        }
        if (x.offset + x.len > block.length) {
          throw new SquashfsFormatError(
            'fragment block',
            `a tail of ${x.len} bytes at ${x.offset} lies outside fragment ${x.frag} of image ${x.layer}`,
            -1,
          );
        }
        parts.push(block.subarray(x.offset, x.offset + x.len));
        const left = (uses.get(k) ?? 1) - 1;
        uses.set(k, left);
        if (left === 0) decoded.delete(k);
      }
      raws.push(Buffer.concat(parts));
    }
    const packed = await pack(raws);
    for (let j = 0; j < raws.length; j++) {
      const raw = raws[j] ?? Buffer.alloc(0);
      const p = packed[j] ?? null;
      const body = p ?? raw;
      await out.write(body, pos);
      const e = fragEntries[batch[j]?.newIndex ?? -1];
      if (!e) throw new Error('internal error: a new fragment block has no table entry');
      e.writeBigUInt64LE(BigInt(pos), 0);
      e.writeUInt32LE(body.length | (p ? 0 : 1 << 24), 8);
      pos += body.length;
    }
  }
  return pos;
}
