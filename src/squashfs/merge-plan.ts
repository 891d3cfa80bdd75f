/**
 * The writer's first pass over the merged view: which data ranges and
 * fragment blocks of each image it still uses (so only those are copied),
 * how many links each hard-linked inode keeps, and the counts of inodes,
 * files and directories. Then the repacking decision: a fragment block
 * mostly dead has its live tails packed into new blocks (where an encoder
 * exists) rather than copied whole.
 */
import { SquashfsFormatError, SquashfsWriteError } from './errors.js';
import type { LayerDir, OverlayMerge } from './merge.js';
import type { ImageTables } from './tables.js';

export interface Plan {
  /** Per layer: [start, length) of data the merged view uses. */
  ranges: [number, number][][];
  /** Per layer: fragment indexes the merged view uses. */
  frags: Set<number>[];
  /** Per layer: fragment index -> uncompressed tail bytes of files the view shows. */
  tails: Map<number, number>[];
  /** "layer:inode number" -> visible links, for inodes with more than one. */
  links: Map<string, number>;
  inodes: number;
  files: number;
  dirs: number;
}

export interface Repacking {
  /** Per layer: fragment blocks whose live tails are repacked rather than copied. */
  repack: Set<number>[];
  /** Estimated dead bytes in the fragment blocks to copy. */
  wasted: number;
  /** All bytes to copy. */
  total: number;
}

const ABSENT32 = 0xffffffff;
/** A fragment block less than this share alive has its live tails repacked (where an encoder exists). */
const REPACK_BELOW = 0.5;

export async function makePlan(
  merge: OverlayMerge,
  tables: readonly ImageTables[],
  signal?: AbortSignal,
): Promise<Plan> {
  const n = tables.length;
  const plan: Plan = {
    ranges: Array.from({ length: n }, () => []),
    frags: Array.from({ length: n }, () => new Set<number>()),
    tails: Array.from({ length: n }, () => new Map<number, number>()),
    links: new Map(),
    inodes: 1,
    files: 0,
    dirs: 1,
  };
  const seen = new Set<string>();
  const visit = async (dirs: LayerDir[]): Promise<void> => {
    signal?.throwIfAborted();
    for (const d of dirs) {
      const key = `${d.layer}:${d.dir.ref}`;
      if (seen.has(key)) {
        throw new SquashfsFormatError(
          'directory listing',
          `directory inode ${d.dir.number} of image ${d.layer} appears twice in the tree (a cycle)`,
          -1,
        );
      }
      seen.add(key);
    }
    for (const c of await merge.children(dirs)) {
      if (c.inode.kind === 'dir') {
        plan.dirs++;
        plan.inodes++;
        await visit(c.dirs);
        continue;
      }
      if (c.inode.nlink > 1) {
        const key = `${c.layer}:${c.inode.number}`;
        const count = plan.links.get(key);
        plan.links.set(key, (count ?? 0) + 1);
        if (count !== undefined) continue;
      }
      plan.inodes++;
      if (c.inode.kind !== 'file') continue;
      plan.files++;
      const t = tables[c.layer];
      if (!t) continue;
      const stored = t.storedBytes(c.inode);
      if (stored > 0) plan.ranges[c.layer]?.push([c.inode.blocksStart, stored]);
      if (c.inode.fragment !== null) {
        if (c.inode.fragment >= t.fragments.length) {
          throw new SquashfsFormatError(
            'inode',
            `inode ${c.inode.number} names fragment ${c.inode.fragment} of ${t.fragments.length}`,
            -1,
          );
        }
        plan.frags[c.layer]?.add(c.inode.fragment);
        const tails = plan.tails[c.layer];
        const tail = c.inode.size % t.image.superblock.blockSize;
        tails?.set(c.inode.fragment, (tails.get(c.inode.fragment) ?? 0) + tail);
      }
    }
  };
  await visit(await merge.rootDirs());
  if (plan.inodes > ABSENT32 - 1) {
    throw new SquashfsWriteError('too-large', `${plan.inodes} inodes do not fit one image`);
  }
  return plan;
}

/** Which fragment blocks to repack (none when canRepack is false), and the dead bytes left in those copied. */
export function planRepacking(
  tables: readonly ImageTables[],
  plan: Plan,
  canRepack: boolean,
): Repacking {
  let wasted = 0;
  let total = 0;
  const repack = tables.map(() => new Set<number>());
  tables.forEach((t, layer) => {
    for (const [, n] of plan.ranges[layer] ?? []) total += n;
    const used = plan.frags[layer];
    if (!used || used.size === 0) return;
    const all = t.fragmentTails();
    const live = plan.tails[layer];
    for (const f of used) {
      const size = (t.fragments[f]?.word ?? 0) & 0xffffff;
      const a = all.get(f) ?? 0;
      const l = live?.get(f) ?? 0;
      if (canRepack && a > 0 && l < a * REPACK_BELOW) {
        // Mostly dead: its few live tails go into new blocks.
        repack[layer]?.add(f);
        total += (size * l) / a;
        continue;
      }
      total += size;
      if (a > 0 && l < a) wasted += (size * (a - l)) / a;
    }
  });
  return { repack, wasted, total };
}
