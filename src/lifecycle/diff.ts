/**
 * diff: the pending changes of a mounted (or interrupted) tree, one A/M/D
 * line per path: what the overlay shows beyond the generation that holds
 * the session's committed changes (pending.ts), so a commit leaves nothing
 * to list.
 */
import type { TreeContext } from './context.js';
import { admitObserved, observe, type Observation } from './observe.js';
import { pendingOf } from './pending.js';
import type { Change } from '../layer/layer-plan.js';
import { SquashtreeError } from '../errors.js';

export interface DiffResult {
  tree: string;
  changes: Change[];
  /** With --generation: the generation whose top layer was compared with the images below it. */
  generation?: number;
  /** That layer, or null when the generation is a single base image. */
  layer?: string | null;
  /** For a single base image: the parent generation it was compared with. */
  against?: number;
}

export async function diffLocked(ctx: TreeContext, observed?: Observation): Promise<DiffResult> {
  const { tree } = ctx;
  const obs = observed ?? (await observe(ctx));
  const { manifest: m } = admitObserved(ctx, 'diff', obs);
  const pending = await pendingOf(ctx, obs, m);
  if (pending.changes === null) {
    throw new SquashtreeError(
      'E_ENGINE',
      `the images of tree "${tree.name}" use a compressor the native reader cannot read: no per-path diff (${pending.files} pending entries)`,
      {
        hint: 'squashtree status counts the pending changes; compact the tree to another compressor for diff',
      },
    );
  }
  return { tree: tree.name, changes: pending.changes };
}
