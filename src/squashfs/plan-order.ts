/** Name order of a run of plan entries (a directory's listing is sorted by name, as the kernel looks names up). */
import { compareNames } from './directory.js';
import type { Plan } from './plan.js';
import type { ImageTables } from './tables.js';

/**
 * Put the plan's entries [from, to) in name order, moving along what `merged`
 * holds for them (the merged-layer lists of the walk, keyed by entry).
 */
export function sortRange<T>(
  plan: Plan,
  tables: readonly ImageTables[],
  merged: Map<number, T>,
  from: number,
  to: number,
): void {
  const idx = Array.from({ length: to - from }, (_, k) => from + k);
  const data = (i: number): Buffer =>
    tables[plan.layer[i] ?? 0]?.directoryTable.data ?? Buffer.alloc(0);
  idx.sort((a, b) =>
    compareNames(
      data(a),
      plan.npos[a] ?? 0,
      plan.nlen[a] ?? 0,
      data(b),
      plan.npos[b] ?? 0,
      plan.nlen[b] ?? 0,
    ),
  );
  const rows = idx.map((i) => ({
    layer: plan.layer[i] ?? 0,
    ipos: plan.ipos[i] ?? 0,
    iref: plan.iref[i] ?? 0,
    npos: plan.npos[i] ?? 0,
    nlen: plan.nlen[i] ?? 0,
    type: plan.type[i] ?? 0,
    merged: merged.get(i),
  }));
  for (const i of idx) merged.delete(i);
  rows.forEach((r, k) => {
    const i = from + k;
    plan.layer[i] = r.layer;
    plan.ipos[i] = r.ipos;
    plan.iref[i] = r.iref;
    plan.npos[i] = r.npos;
    plan.nlen[i] = r.nlen;
    plan.type[i] = r.type;
    if (r.merged) merged.set(i, r.merged);
  });
}
