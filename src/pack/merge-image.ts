/**
 * Publishing a new base made by the native writer from the images of a
 * stack (src/squashfs/writer.ts): blocks are copied, not recompressed, so a
 * compaction costs about a copy of the image. The image is checked against
 * its inputs from its own bytes (every entry, every block), mounted once by
 * the kernel, fsynced, and only then renamed into place.
 */
import { promises as fsp } from 'node:fs';
import { basename } from 'node:path';
import type { Compressor } from '../config/schema.js';
import { SquashtreeError, errnoCode, errorMessage } from '../errors.js';
import { mountSquashfs, unmount } from '../mount/mount.js';
import {
  SquashfsImage,
  SquashfsWriteError,
  writeMergedImage,
  type MergeImagesResult,
} from '../squashfs/index.js';
import { damagedStackImage } from '../store/image-errors.js';
import type { ImageRecord } from '../store/manifest.js';
import { stageImage } from '../store/stage.js';
import { interruptSignal } from '../exec/run.js';
import { fault } from '../faults.js';
import { collectNow, holdYoungGeneration } from './heap.js';

export interface MergeRequest {
  store: string;
  /** Absolute paths of the images, bottom first. */
  inputs: readonly string[];
  file: string;
  /** The images' (and so the new base's) compressor and block size. */
  compression: Compressor;
  blockSize: number;
  /** Where the kernel mounts the new image once to check it (null: not at all, as without root). */
  verifyMount: string | null;
  onProgress?: (fraction: number) => void;
  onStep?: (what: string) => void;
}

const PHASES = {
  plan: 'finding what the merged view keeps',
  copy: 'copying the blocks it keeps',
  metadata: 'writing inodes and directories',
  tables: 'writing the lookup tables',
  verify: 'checking the new image against the images (every entry and block)',
} as const;

/**
 * The writer copies fragment blocks whole, so bytes of files replaced since
 * the last recompression stay in them (about 0.7% of the image per day of
 * Gentoo syncs). Past this share (and 4 MiB), compaction recompresses with
 * mksquashfs once, which reclaims all of it.
 */
export const MAX_WASTE = 0.1;

export interface MergePublished {
  record: ImageRecord;
  merge: MergeImagesResult;
}

/**
 * Why the writer cannot compact these images (then mksquashfs does), or
 * null when it can: they must share the compressor and block size the tree
 * is configured with (a changed setting is applied by recompressing). The
 * superblocks are read: images adopted by init --from-image have no
 * settings in the manifest.
 */
export async function writerUnsuitable(
  paths: readonly string[],
  want: { compression: string; blockSize: number },
): Promise<string | null> {
  if (want.compression === 'lzma') return 'the native reader has no lzma decoder';
  for (const p of paths) {
    let img: SquashfsImage;
    try {
      img = await SquashfsImage.open(p);
    } catch (e) {
      // A damaged image is reported by the integrity check before this, or by mksquashfs's path.
      return `${basename(p)}: ${errorMessage(e)}`;
    }
    const { compression, blockSize } = img.superblock;
    await img.close();
    if (compression !== want.compression || blockSize !== want.blockSize) {
      return `${basename(p)} is ${compression} with ${blockSize}-byte blocks; the tree is configured for ${want.compression} with ${want.blockSize}-byte blocks`;
    }
  }
  return null;
}

export async function mergeAndPublish(req: MergeRequest): Promise<MergePublished> {
  const image = {
    file: req.file,
    kind: 'base' as const,
    compression: req.compression,
    blockSize: req.blockSize,
  };
  holdYoungGeneration();
  const { record, result: merge } = await stageImage(req.store, image, async (tmp) => {
    let merge: MergeImagesResult;
    try {
      merge = await writeMergedImage(req.inputs, tmp, {
        verify: true,
        maxWaste: MAX_WASTE,
        signal: interruptSignal(),
        onPhase: (p) => {
          if (p === 'verify') collectNow();
          req.onStep?.(PHASES[p]);
        },
        ...(req.onProgress
          ? {
              onProgress: (done: number, total: number) =>
                req.onProgress?.(total ? done / total : 1),
            }
          : {}),
      });
    } catch (e) {
      throw asPublishError(e, req);
    }
    fault('compact:after-pack');
    if (req.verifyMount !== null) {
      req.onStep?.('mounting the new image once');
      await kernelMountCheck(tmp, req.verifyMount);
    }
    return { result: merge };
  });
  return { record, merge };
}

/** The kernel mounts the new image and lists its root: what every later start will need. */
export async function kernelMountCheck(image: string, mountPoint: string): Promise<void> {
  await fsp.mkdir(mountPoint, { recursive: true, mode: 0o700 });
  await mountSquashfs(image, mountPoint);
  try {
    await fsp.readdir(mountPoint);
  } finally {
    await unmount(mountPoint);
  }
}

function asPublishError(e: unknown, req: MergeRequest): unknown {
  if (errnoCode(e) === 'ENOSPC') {
    return new SquashtreeError(
      'E_NO_SPACE',
      `No space left on device while writing the new base ${req.file} in ${req.store}`,
      {
        path: req.store,
        hint: 'free space in the store (the new base needs about as much as the images it replaces), then run squashtree compact again; nothing was changed',
        cause: e,
      },
    );
  }
  if (e instanceof SquashfsWriteError && e.code === 'verify') {
    return new SquashtreeError(
      'E_VERIFY',
      `the compacted image does not match its inputs: ${e.message}`,
      {
        path: req.store,
        hint: 'nothing was published; report this as a bug, and compact with compact-method = "mksquashfs" meanwhile',
        cause: e,
      },
    );
  }
  return damagedStackImage(e, req.store) ?? e;
}
