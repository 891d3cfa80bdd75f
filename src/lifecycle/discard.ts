/**
 * discard: drop the pending changes. On a mounted tree that means
 * unmounting (refused while busy), emptying the upper and mounting the
 * current generation again; committed changes are kept.
 */
import type { TreeContext } from './context.js';
import { admitObserved, observe, type Observation } from './observe.js';
import { startLocked } from './start.js';
import { releaseSession } from './release.js';
import { unmountTree } from './unmount.js';
import { pendingOf } from './pending.js';

export interface DiscardResult {
  tree: string;
  discarded: boolean;
  files: number;
  bytes: number;
  reason?: string;
}

export async function discardLocked(
  ctx: TreeContext,
  observed?: Observation,
): Promise<DiscardResult> {
  const { tree } = ctx;
  const obs = observed ?? (await observe(ctx));
  const { run, reason, manifest: m } = admitObserved(ctx, 'discard', obs);
  if (!run) return { tree: tree.name, discarded: false, files: 0, bytes: 0, reason };
  const pending = await pendingOf(ctx, obs, m);
  if (!pending.any)
    return { tree: tree.name, discarded: false, files: 0, bytes: 0, reason: 'no pending changes' };
  const wasMounted = obs.state === 'mounted';
  if (wasMounted) await unmountTree(ctx, false);
  await releaseSession(ctx, true);
  if (wasMounted) await startLocked(ctx);
  return { tree: tree.name, discarded: true, files: pending.files, bytes: pending.bytes };
}
