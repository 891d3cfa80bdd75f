/**
 * What is pending in a session, by one definition for status, diff, discard
 * and commit: the plan of the next commit (layer/layer-plan.ts), the changes the
 * overlay shows beyond the generation that holds the session's committed
 * changes (commit-chain.ts). Read-only: nothing is copied, locked or mounted; the
 * images are read natively.
 */
import { SquashtreeError } from '../errors.js';
import { SquashfsUnsupportedError } from '../squashfs/index.js';
import type { Manifest } from '../store/manifest.js';
import { resolveChain } from './commit-chain.js';
import type { TreeContext } from './context.js';
import { sessionEngine } from './tree-engine.js';
import type { Observation } from './observe.js';
import { planLayer, type Change } from '../layer/layer-plan.js';
import { StackView } from '../layer/stack-view.js';
import { pendingChanges, scanUpper } from '../layer/upper-scan.js';

export interface PendingChanges {
  /** A/M/D per path; null when the images cannot be read natively (lzo), so only counts are known. */
  changes: Change[] | null;
  /** Diff's lines (or, without them, changed upper entries). */
  files: number;
  /** Bytes of the regular files added or changed. */
  bytes: number;
  /** Anything to commit, directory times included. */
  any: boolean;
}

const NONE: PendingChanges = { changes: [], files: 0, bytes: 0, any: false };

export async function pendingOf(
  ctx: TreeContext,
  obs: Observation,
  m: Manifest,
): Promise<PendingChanges> {
  const { tree, layout } = ctx;
  const session = obs.session;
  if (!session || (obs.state !== 'mounted' && obs.state !== 'interrupted')) return NONE;
  const chain = await resolveChain(layout, session, m);
  const entries = await scanUpper(layout.upperData, tree.exclude);
  const quick = pendingChanges(entries, chain.snapshot);
  if (!quick.any) return NONE;
  let view: StackView;
  try {
    view = await StackView.openInStore(tree.store, chain.images);
  } catch (e) {
    // An image the reader has no decoder for, or one a concurrent compaction just collected.
    const gone = e instanceof SquashtreeError && e.code === 'E_IMAGE_MISSING';
    if (!(e instanceof SquashfsUnsupportedError) && !gone) throw e;
    return { changes: null, files: quick.files, bytes: quick.bytes, any: true };
  }
  try {
    const plan = await planLayer({
      entries,
      snapshot: chain.snapshot,
      stack: view,
      fuse: sessionEngine(session) === 'fuse',
      ...(obs.state === 'mounted' ? { merged: tree.dir } : {}),
      exclude: tree.exclude,
    });
    return {
      changes: plan.changes,
      files: plan.changes.length,
      bytes: plan.copyBytes,
      any: plan.any,
    };
  } finally {
    await view.close();
  }
}
