/**
 * Where the merged view's file tails go. The kernel keeps 3 fragment
 * blocks decoded and replaces them round-robin (fs/squashfs/cache.c,
 * CONFIG_SQUASHFS_FRAGMENT_CACHE_SIZE), and a reader such as tar takes the
 * tails in walk order. A fresh mksquashfs image packs them in that order,
 * so each block is decoded once. Copied whole into a merged image, a
 * layer's fragment blocks hold tails from all over the tree: read in walk
 * order they are evicted and decoded again and again (measured: 41% more
 * fragment decompressions after two one-day layers).
 *
 * The rule (part of the merge rule, see recipe.ts):
 *   - a block is copied whole unless its dead bytes are to go
 *     (fragment-dead.ts), when it comes from the bottom image, or from any
 *     image when its tails are read in one run (it is decoded once);
 *   - every other shown tail is repacked, in walk order, into new blocks;
 *     a new block is closed when full or when the kernel's cache would have
 *     evicted it (two other blocks decoded since it opened), so each new
 *     block is also decoded once.
 * Without an encoder for the compressor every block is copied whole.
 */
import { blockKey as key, blockUse, deadBlocks, usedBlocks } from './fragment-dead.js';
import type { Plan } from './plan.js';

/** The kernel's fragment cache (CONFIG_SQUASHFS_FRAGMENT_CACHE_SIZE default). */
export const KERNEL_FRAGMENT_CACHE = 3;

export interface FragmentPlacement {
  /** Entries of the new fragment table: blocks copied whole and new blocks, in the order the walk first reads them. */
  count: number;
  /** Blocks copied whole: layer, old index, index in the new table. */
  kept: { layer: number; index: number; newIndex: number }[];
  /** Per layer: old index -> new index of a block copied whole. */
  keptIndex: Map<number, number>[];
  /** Per plan entry: new fragment index of a repacked tail (-1: not repacked), and its offset. */
  newFragment: Int32Array;
  newOffset: Uint32Array;
  /** The new blocks: the plan entries whose tails each holds, in order, and its index in the new table. */
  blocks: { tails: number[]; newIndex: number }[];
  /** Source blocks not copied (their live tails repacked). */
  repackedSources: number;
  /** Estimated dead bytes in the blocks copied whole, and all bytes to copy or write. */
  wasted: number;
  total: number;
}

/** The kernel's replacement: a hit changes nothing; a miss takes the next slot in turn. */
class RoundRobin {
  private readonly keys: number[];
  private next = 0;

  constructor(size: number) {
    this.keys = new Array<number>(size).fill(-1);
  }

  has(key: number): boolean {
    return this.keys.includes(key);
  }

  /** Look up key; on a miss insert it. Returns true on a miss. */
  touch(key: number): boolean {
    if (this.keys.includes(key)) return false;
    this.keys[this.next] = key;
    this.next = (this.next + 1) % this.keys.length;
    return true;
  }
}

/** blockLimit: the largest new block the encoder makes (the block size, or less). */
export function placeFragments(
  plan: Plan,
  canRepack: boolean,
  blockLimit: number,
): FragmentPlacement {
  const tables = plan.tables;
  const keyOf = (e: number): number => key(plan.layer[e] ?? 0, plan.frag[e] ?? 0);
  const use = blockUse(plan);
  const repack = canRepack ? deadBlocks(plan, use) : new Set<number>();

  // Blocks of upper images whose tails are not read in one run are repacked too.
  if (canRepack) {
    const cache = new RoundRobin(KERNEL_FRAGMENT_CACHE);
    const misses = new Map<number, number>();
    for (const e of plan.tails) {
      if (plan.isFresh(e)) continue;
      const k = keyOf(e);
      if (repack.has(k)) continue;
      if (cache.touch(k)) misses.set(k, (misses.get(k) ?? 0) + 1);
    }
    for (const [k, n] of misses) if (n > 1 && k >= 2 ** 32) repack.add(k);
  }

  // What the merge copies, and the dead bytes it keeps (repacked tails take their live share).
  let wasted = 0;
  let total = 0;
  for (const r of plan.ranges) for (let i = 1; i < r.length; i += 2) total += r[i] ?? 0;
  for (const b of usedBlocks(plan, use)) {
    if (repack.has(key(b.layer, b.frag))) total += b.size * (1 - b.deadShare);
    else {
      total += b.size;
      wasted += b.size * b.deadShare;
    }
  }

  // The walk: repacked tails go into new blocks that stay in the kernel's cache while read.
  const newFragment = new Int32Array(plan.n).fill(-1);
  const newOffset = new Uint32Array(plan.n);
  const blocks: { tails: number[]; newIndex: number }[] = [];
  const kept: { layer: number; index: number; newIndex: number }[] = [];
  const keptIndex = tables.map(() => new Map<number, number>());
  let count = 0;
  const placed = new Map<string, number>();
  let opened = 0;
  const bs = blockLimit;
  const cache = new RoundRobin(KERNEL_FRAGMENT_CACHE);
  let open: { tails: number[]; newIndex: number } | null = null;
  let openKey = -1;
  let openBytes = 0;
  for (const e of plan.tails) {
    const layer = plan.layer[e] ?? 0;
    const frag = plan.frag[e] ?? 0;
    const len = plan.tailLength[e] ?? 0;
    const k = key(layer, frag);
    const fresh = plan.isFresh(e);
    if (!fresh && !repack.has(k)) {
      cache.touch(k);
      const index = keptIndex[layer];
      if (index && !index.has(frag)) {
        index.set(frag, count);
        kept.push({ layer, index: frag, newIndex: count++ });
      }
      continue;
    }
    // The same tail named by two inodes (mksquashfs finds duplicates) is stored once.
    const same = fresh ? '' : `${k}:${plan.fragOffset[e] ?? 0}:${len}`;
    const at = fresh ? undefined : placed.get(same);
    if (at !== undefined) {
      newFragment[e] = newFragment[at] ?? -1;
      newOffset[e] = newOffset[at] ?? 0;
      continue;
    }
    if (!open || openBytes + len > bs || !cache.has(openKey)) {
      open = { tails: [], newIndex: count++ };
      blocks.push(open);
      openKey = -1 - opened++;
      openBytes = 0;
      cache.touch(openKey);
    }
    newFragment[e] = open.newIndex;
    newOffset[e] = openBytes;
    open.tails.push(e);
    openBytes += len;
    if (!fresh) placed.set(same, e);
  }
  return {
    count,
    kept,
    keptIndex,
    newFragment,
    newOffset,
    blocks,
    repackedSources: repack.size,
    wasted,
    total,
  };
}
