/**
 * Taking the tree's dir down: the excluded dirs bound on top of the overlay
 * first, then the overlay. A busy tree is reported with the processes that
 * hold it.
 */
import { SquashtreeError } from '../errors.js';
import { findHolders, type Holder } from '../mount/holders.js';
import { BusyError, unmount } from '../mount/mount.js';
import { mountsUnder, readMounts } from '../mount/mountinfo.js';
import type { TreeContext } from './context.js';

export function busyError(dir: string, holders: Holder[], committed: boolean): SquashtreeError {
  const list = holders
    .slice(0, 10)
    .map((h) => `  pid ${h.pid} (${h.command}): ${h.uses[0] ?? ''}`)
    .join('\n');
  return new SquashtreeError(
    'E_BUSY',
    `${dir} is busy${holders.length ? `; held by ${holders.length} process(es):\n${list}` : ''}`,
    {
      path: dir,
      stderr: list,
      hint: `${committed ? 'your changes are committed. ' : ''}close those processes (or leave the directory), then stop again; or stop --lazy to detach it now`,
    },
  );
}

/** Unmount everything at and below the tree's dir, deepest first. */
export async function unmountTree(
  ctx: TreeContext,
  lazy: boolean,
  committed = false,
): Promise<void> {
  const dir = ctx.tree.dir;
  try {
    for (const m of mountsUnder(await readMounts(), dir)) await unmount(m.mountPoint, { lazy });
  } catch (e) {
    if (e instanceof BusyError) throw busyError(dir, await findHolders(dir), committed);
    throw e;
  }
}
