/**
 * Taking a session down once its overlay is gone: the image mounts and
 * views, then the upper (its tmpfs unmounted, or without root its runtime
 * dir deleted), then the session record. Shared by stop and discard; a
 * start that fails half-way takes down only the upper (releaseRuntimeUpper).
 */
import { promises as fsp } from 'node:fs';
import { SquashtreeError } from '../errors.js';
import { canMountTmpfs, unmount } from '../mount/mount.js';
import { detachStaleLoops, teardownUnder } from '../mount/image-stack.js';
import type { TreeContext } from './context.js';
import { fault } from '../faults.js';
import { removeSession } from './session.js';

/** After the overlay is gone: images, views, then the upper. */
export async function releaseSession(
  ctx: TreeContext,
  dropUpper: boolean,
  lazy = false,
): Promise<void> {
  const { layout, tree } = ctx;
  await teardownUnder([layout.lowerView, layout.imagesDir], tree.store);
  if (layout.upperIsTmpfs) {
    if (canMountTmpfs()) await teardownUnderLazy(layout.upperRoot, lazy);
    else await releaseRuntimeUpper(layout.upperRoot);
    fault('stop:after-upper-umount');
    await removeSession(layout);
  } else if (dropUpper) {
    await fsp.rm(layout.upperData, { recursive: true, force: true });
    await fsp.rm(layout.upperWork, { recursive: true, force: true });
    await removeSession(layout);
  }
  await detachStaleLoops(tree.store);
}

/** Drop the upper kept in the runtime dir: unmount its tmpfs, or (without root) delete the dir. */
export async function releaseRuntimeUpper(upperRoot: string, lazy = false): Promise<void> {
  if (canMountTmpfs()) await unmount(upperRoot, { lazy });
  else await fsp.rm(upperRoot, { recursive: true, force: true });
}

async function teardownUnderLazy(path: string, lazy: boolean): Promise<void> {
  try {
    await unmount(path, { lazy });
  } catch (e) {
    if (!(e instanceof SquashtreeError && /not mounted|no mount point/i.test(e.stderr ?? '')))
      throw e;
  }
}
