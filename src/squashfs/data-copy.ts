/**
 * The data region of the new image: every range of data blocks and every
 * fragment block kept whole, copied verbatim from its image in image order
 * (so a compaction costs about a copy), with a map from each image's old
 * positions to the new ones. What is compressed anew follows (pack-data.ts).
 */
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
