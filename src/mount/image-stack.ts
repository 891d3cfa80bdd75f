/**
 * Mounting a stack of images read-only: one squashfs mount per image and,
 * for more than one image, a read-only overlay of them all (the lower view).
 * Teardown unmounts whatever a previous run left under the runtime dir,
 * deepest first, and frees loop devices still attached to our images.
 */
import { promises as fsp } from 'node:fs';
import { isWithin } from '../config/values.js';
import { listLoops, detachLoop } from './loop.js';
import { canMountTmpfs, mountOverlay, mountSquashfs, unmountAll } from './mount.js';
import { checkMetadata } from '../image/check.js';
import { readMounts, type MountEntry } from './mountinfo.js';

export interface MountedStack {
  /** Image mount points, base first. */
  images: string[];
  /** Read-only merged view of all images. */
  view: string;
  /** Undo in reverse order. */
  unmount: () => Promise<void>;
}

/**
 * Mount `imageFiles` (base first) under `dir/N` and a merged view at `view`.
 * On failure, everything mounted so far is unmounted again.
 */
export async function mountStack(
  imageFiles: readonly string[],
  mountPoint: (i: number) => string,
  view: string,
  extra: readonly string[],
): Promise<MountedStack> {
  const mounted: string[] = [];
  const undo = async (): Promise<void> => {
    await unmountAll([...mounted].reverse());
    mounted.length = 0;
  };
  try {
    // The images are independent: attach and mount them side by side (util-linux retries loop races).
    const results = await Promise.allSettled(
      imageFiles.map(async (file, i) => {
        const mp = mountPoint(i);
        await fsp.mkdir(mp, { recursive: true, mode: 0o700 });
        try {
          await mountSquashfs(file, mp, extra);
        } catch (e) {
          // A damaged image whose sha256 still matches (bit rot): name it as damaged, not as a mount error.
          await checkMetadata(file);
          throw e;
        }
      }),
    );
    // Base first, as the view below wants them; only those that did mount.
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') mounted.push(mountPoint(i));
    });
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    let viewPath = mounted[0] ?? '';
    if (mounted.length > 1) {
      await fsp.mkdir(view, { recursive: true, mode: 0o700 });
      await mountOverlay(view, { lower: [...mounted].reverse(), extra });
      mounted.push(view);
      viewPath = view;
    }
    const images = imageFiles.map((_, i) => mountPoint(i));
    return { images, view: viewPath, unmount: undo };
  } catch (e) {
    await undo();
    throw e;
  }
}

/**
 * Unmount everything below each of `paths` and detach stale loops of
 * `store`. Last mounted first (mountinfo lists mounts in the order they were
 * made): a view goes before the images it stands on, whichever of `paths`
 * holds it, as FUSE needs (fuse-overlayfs keeps its lower mounts busy).
 */
export async function teardownUnder(
  paths: string | readonly string[],
  store: string,
): Promise<string[]> {
  const list = typeof paths === 'string' ? [paths] : paths;
  const below = (m: MountEntry): boolean =>
    list.some((p) => m.mountPoint === p || m.mountPoint.startsWith(`${p}/`));
  const done = (await readMounts())
    .filter(below)
    .reverse()
    .map((m) => m.mountPoint);
  await unmountAll(done);
  if (done.length > 0) await detachStaleLoops(store);
  return done;
}

export async function detachStaleLoops(store: string): Promise<void> {
  // Only root attaches loop devices (the kernel mounter); a user's FUSE mounts have none.
  if (!canMountTmpfs()) return;
  const mounts = await readMounts();
  const busy = new Set(mounts.map((m) => m.source));
  for (const l of await listLoops()) {
    if (isWithin(l.backingFile, store) && !busy.has(l.device)) await detachLoop(l.device);
  }
}
