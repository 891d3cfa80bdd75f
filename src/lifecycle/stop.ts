/**
 * stop: apply on-stop (commit, discard or keep), then unmount the overlay,
 * the images and the upper, in that order. The upper is never unmounted
 * while the overlay still uses it, and when the commit fails nothing is
 * unmounted: the changes stay where they are.
 */
import { unmountTree } from './unmount.js';
import { currentGeneration } from '../store/manifest.js';
import { commitLocked, type CommitResult } from './commit.js';
import { compactLocked, type CompactResult } from './compact.js';
import type { TreeContext } from './context.js';
import { fault } from '../faults.js';
import { admitObserved, observe, type Observation } from './observe.js';
import { readSession } from './session.js';
import { releaseSession } from './release.js';
import { startLocked } from './start.js';
import { readMounts } from '../mount/mountinfo.js';
import { teardownUnder } from '../mount/image-stack.js';

export interface StopOptions {
  lazy?: boolean;
  /** Override the configured on-stop action. */
  onStop?: 'commit' | 'discard' | 'keep';
  /** Skip the automatic compaction. */
  noCompact?: boolean;
}

export interface StopResult {
  tree: string;
  wasMounted: boolean;
  /** Not mounted, but an earlier mount had left these (taken down now). */
  leftovers?: string[];
  /** The overlay was gone (unmounted by hand) with changes in its upper: mounted again to stop. */
  resumed?: boolean;
  onStop: string;
  commit?: CommitResult;
  compact?: CompactResult;
  lazy: boolean;
}

/**
 * A tree that is not mounted, with what an earlier mount left: image mounts
 * and views under the runtime dir, a session record. Taken down, so stop
 * ends with nothing mounted; an upper that holds changes stays (keep).
 */
async function takeDownLeftovers(ctx: TreeContext, keepUpper: boolean): Promise<string[]> {
  const { layout, reporter } = ctx;
  const mounts = (await readMounts())
    .filter((x) => x.mountPoint.startsWith(`${layout.runtime}/`))
    .map((x) => x.mountPoint);
  const upperOnly = keepUpper && mounts.every((p) => p === layout.upperRoot);
  const session = await readSession(layout.sessionFile).catch(() => null);
  if (upperOnly || (mounts.length === 0 && !session)) return [];
  reporter.step(`not mounted; taking down what an earlier mount left (${mounts.length} mounts)`);
  if (keepUpper) await teardownUnder([layout.lowerView, layout.imagesDir], ctx.tree.store);
  else await releaseSession(ctx, true);
  return mounts.filter((p) => (keepUpper ? p !== layout.upperRoot : true));
}

export async function stopLocked(
  ctx: TreeContext,
  opts: StopOptions = {},
  observed?: Observation,
): Promise<StopResult> {
  const { tree, reporter } = ctx;
  let obs = observed ?? (await observe(ctx));
  const onStop = opts.onStop ?? tree.onStop;
  const { run, manifest: m } = admitObserved(ctx, onStop === 'keep' ? 'stop-keep' : 'stop', obs);
  const lazy = opts.lazy ?? false;
  let resumed = false;
  if (run && obs.state === 'interrupted') {
    // The overlay went (fusermount3 -u, umount, a crash mid-stop) and its upper holds changes:
    // mount it again on what is left, then stop as usual, so on-stop applies to them.
    reporter.step(`${tree.dir} has pending changes but no overlay: mounting it again to stop it`);
    await startLocked(ctx, obs);
    obs = await observe(ctx);
    resumed = true;
  }
  if (!run || obs.state !== 'mounted') {
    const leftovers = await takeDownLeftovers(ctx, obs.state === 'interrupted');
    return {
      tree: tree.name,
      wasMounted: false,
      onStop,
      lazy,
      ...(leftovers.length > 0 ? { leftovers } : {}),
    };
  }
  let commit: CommitResult | undefined;
  // A read-only mount has no upper: nothing to commit, discard or keep.
  if (onStop === 'commit' && obs.session?.engine !== 'readonly') {
    commit = await commitLocked(ctx);
    fault('stop:after-commit');
  }
  reporter.step(`unmounting ${tree.dir}`);
  await unmountTree(ctx, lazy, commit?.committed ?? false);
  if (lazy)
    reporter.warn(
      `${tree.dir} was detached lazily: processes that still use it keep writing into an upper that is no longer committed`,
    );
  fault('stop:after-overlay-umount');
  await releaseSession(ctx, onStop !== 'keep', lazy);
  let compact: CompactResult | undefined;
  const layers = currentGeneration((await observe(ctx)).manifest ?? m).images.length;
  if (!opts.noCompact && layers > tree.compactAfter) {
    reporter.step(`${layers} layers exceed compact-after = ${tree.compactAfter}: compacting`);
    compact = await compactLocked(ctx);
  }
  return {
    tree: tree.name,
    wasMounted: true,
    onStop,
    lazy,
    ...(resumed ? { resumed } : {}),
    ...(commit ? { commit } : {}),
    ...(compact ? { compact } : {}),
  };
}
