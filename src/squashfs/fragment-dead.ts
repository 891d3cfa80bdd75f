/**
 * Dead bytes in the fragment blocks a merge could copy whole, and which
 * blocks it repacks to drop them (part of the merge rule, see recipe.ts).
 *
 * A block copied whole keeps the tails of files the merged view no longer
 * shows. The merged image names none of them, so the next merge must not
 * count a block's bytes from the tails its image names: it measures from
 * how far the tails reach (ImageTables.fragmentExtents), and counts a
 * tail that two files share (mksquashfs's duplicates) once. Counted from
 * the named tails, dead bytes built up unseen: GURU after 8 daily stops
 * carried 638 KB of them (2.1% of its fragment bytes, zstd 1.028 of a
 * fresh image).
 *
 * Two rules decide:
 *   - a block less than REPACK_BELOW alive is repacked;
 *   - while the blocks left to copy that are at least MIN_SHARE dead carry
 *     more than DEAD_BUDGET of the image in dead bytes, the deadest of them
 *     are repacked too, so dead bytes stay bounded however many merges a
 *     tree goes through.
 */
import type { Plan } from './plan.js';

/**
 * A fragment block less than this share alive has its live tails repacked.
 * Measured on the 203k-file tree, gzip: base + 8 daily layers compacts to
 * 1.067 of a fresh image at 0.5, 1.019 at 0.9 (+0.8 s CPU), 1.007 at 0.95
 * (+1.5 s); base + one day costs 1.61 s CPU at 0.5 and 1.83 s at 0.9.
 */
export const REPACK_BELOW = 0.9;
/**
 * Dead bytes a merged image may carry in blocks copied whole that are at
 * least MIN_SHARE dead, as a share of its estimated size. Measured with 8
 * daily stops (the size figure of bench/run.ts), against a fresh image:
 *   - GURU, zstd: 1.027 without the budget, 1.026 at 1%, 1.018 at 0.3%,
 *     1.019 at 0.3% with MIN_SHARE 1% (1.021 with 2%);
 *   - the generated 203k tree, gzip: 1.031 without (daily compactions
 *     1.9-2.2 s), 1.016 at 1% (2.0-2.8 s), 0.996 at 0.3% (2.5-4.1 s), 1.004
 *     at 0.3% with MIN_SHARE 1% (2.2-3.5 s).
 * A block less dead than MIN_SHARE costs much compression for little: a
 * one-day layer leaves most blocks below it, which keeps base + one day
 * near the 10% rule's cost (1.64-1.98 s against 1.87-2.05 s without it).
 */
export const DEAD_BUDGET = 0.003;
export const MIN_SHARE = 0.01;

/** A block is named by one number: layer * 2^32 + index. */
export const blockKey = (layer: number, frag: number): number => layer * 2 ** 32 + frag;

/** What the merge knows of each input's fragment blocks. */
export interface BlockUse {
  /** Per layer, per fragment index: uncompressed bytes the shown tails cover, a shared tail once. */
  live: Float64Array[];
  /** Per layer: how far each block's tails reach (its uncompressed size, as far as known). */
  extent: Map<number, number>[];
}

export function blockUse(plan: Plan): BlockUse {
  const tables = plan.tables;
  const live = plan.live.map((l) => l.slice());
  const used = (layer: number): boolean => live[layer]?.some((x) => x > 0) ?? false;
  const extent = tables.map((t, layer) =>
    used(layer) ? t.fragmentExtents() : new Map<number, number>(),
  );
  // Two files whose tails are one span count it once. Found by sorting each layer's spans
  // (index * 2^20 + offset: blocks are at most 1 MiB), not by a set of every tail.
  const counts = new Uint32Array(tables.length);
  for (const e of plan.tails) {
    const layer = plan.layer[e] ?? 0;
    if (!plan.isFresh(e)) counts[layer] = (counts[layer] ?? 0) + 1;
  }
  const spans = Array.from(counts, (n) => new Float64Array(n));
  const filled = new Uint32Array(tables.length);
  for (const e of plan.tails) {
    if (plan.isFresh(e)) continue;
    const layer = plan.layer[e] ?? 0;
    const list = spans[layer];
    const at = filled[layer] ?? 0;
    if (list) list[at] = spanOf(plan, e);
    filled[layer] = at + 1;
  }
  const shared = spans.map((sorted) => {
    sorted.sort();
    const twice = new Set<number>();
    for (let i = 1; i < sorted.length; i++)
      if (sorted[i] === sorted[i - 1]) twice.add(sorted[i] ?? 0);
    return twice;
  });
  const counted = shared.map(() => new Set<number>());
  for (const e of plan.tails) {
    if (plan.isFresh(e)) continue;
    const layer = plan.layer[e] ?? 0;
    const span = spanOf(plan, e);
    if (!shared[layer]?.has(span)) continue;
    const once = counted[layer];
    if (!once || !once.has(span)) {
      once?.add(span);
      continue;
    }
    const l = live[layer];
    const frag = plan.frag[e] ?? 0;
    if (l) l[frag] = (l[frag] ?? 0) - (plan.tailLength[e] ?? 0);
  }
  return { live, extent };
}

const spanOf = (plan: Plan, e: number): number =>
  (plan.frag[e] ?? 0) * 2 ** 20 + (plan.fragOffset[e] ?? 0);

/** An input block the merged view uses: its stored bytes, and its dead share (of its tails' extent). */
export interface UsedBlock {
  layer: number;
  frag: number;
  size: number;
  deadShare: number;
}

/** The input blocks that hold a shown tail, layer by layer. */
export function* usedBlocks(plan: Plan, use: BlockUse): Generator<UsedBlock> {
  for (let layer = 0; layer < use.live.length; layer++) {
    const live = use.live[layer] ?? new Float64Array(0);
    for (let frag = 0; frag < live.length; frag++) {
      const l = live[frag] ?? 0;
      if (l <= 0) continue;
      const size = (plan.tables[layer]?.fragments[frag]?.word ?? 0) & 0xffffff;
      const extent = Math.max(use.extent[layer]?.get(frag) ?? 0, l);
      yield { layer, frag, size, deadShare: (extent - l) / extent };
    }
  }
}

/** The blocks to repack for their dead bytes. */
export function deadBlocks(plan: Plan, use: BlockUse): Set<number> {
  const repack = new Set<number>();
  const candidates: { key: number; dead: number; share: number }[] = [];
  let estimate = 0;
  for (const r of plan.ranges) for (let i = 1; i < r.length; i += 2) estimate += r[i] ?? 0;
  for (const b of usedBlocks(plan, use)) {
    estimate += b.size * (1 - b.deadShare);
    if (b.deadShare < MIN_SHARE) continue;
    const key = blockKey(b.layer, b.frag);
    if (b.deadShare > 1 - REPACK_BELOW) repack.add(key);
    else candidates.push({ key, dead: b.size * b.deadShare, share: b.deadShare });
  }
  let dead = candidates.reduce((n, c) => n + c.dead, 0);
  // The deadest first: the most bytes dropped for each byte compressed again (ties by key: a rule).
  candidates.sort((a, b) => b.share - a.share || a.key - b.key);
  for (const c of candidates) {
    if (dead <= DEAD_BUDGET * estimate) break;
    repack.add(c.key);
    dead -= c.dead;
  }
  return repack;
}
