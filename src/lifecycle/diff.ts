/** diff: the pending changes of a mounted tree, one A/M/D line per path. */
import { join } from 'node:path';
import { checkImages } from './integrity.js';
import { computeChanges, type Change } from './changes.js';
import { extraMountOptions, type TreeContext } from './context.js';
import { observe, requireManifest } from './observe.js';
import { mountedLower } from './lower.js';
import { mountStack } from './stack.js';
import { scanUpper } from './upper.js';
import { isFuseMarker } from './whiteouts.js';

export interface DiffResult {
  tree: string;
  changes: Change[];
  /** With --generation: the generation whose top layer was compared with the images below it. */
  generation?: number;
  /** That layer, or null when the generation is a single base image. */
  layer?: string | null;
}

export async function diffLocked(ctx: TreeContext): Promise<DiffResult> {
  const { tree, layout } = ctx;
  const obs = await observe(ctx);
  const m = requireManifest(ctx, obs);
  if (!obs.session || (obs.state !== 'mounted' && obs.state !== 'interrupted'))
    return { tree: tree.name, changes: [] };
  // fuse-overlayfs's opaque markers are bookkeeping: the changes they stand for show through the merged view.
  const entries = (await scanUpper(layout.upperData, tree.exclude)).filter((e) => !isFuseMarker(e));
  if (obs.state === 'mounted') {
    const s = await computeChanges(entries, await mountedLower(layout), { root: tree.dir });
    return { tree: tree.name, changes: s.changes };
  }
  // An interrupted session: mount its images somewhere private to compare against.
  const paths = await checkImages(tree.store, m, obs.session.lower, layout.verifiedCache);
  const stack = await mountStack(
    paths,
    (i) => join(layout.scratch, String(i)),
    join(layout.scratch, 'view'),
    extraMountOptions(tree),
  );
  try {
    const s = await computeChanges(entries, { view: stack.view }, undefined);
    return { tree: tree.name, changes: s.changes };
  } finally {
    await stack.unmount();
  }
}
