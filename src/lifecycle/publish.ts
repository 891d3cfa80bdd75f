/**
 * Turning a directory into a published image: pack it into a fresh temp
 * file in the store, check the metadata with unsquashfs, mount the image and
 * compare it with its source (types, modes, owners, sizes, targets, content
 * hashes), record its sha256, fsync it and only then rename it into place.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Compressor } from '../config/schema.js';
import { SquashtreeError } from '../errors.js';
import { publishFile } from '../fs/durable.js';
import { buildImage, type PackSettings } from '../image/mksquashfs.js';
import { checkMetadata, imageFacts } from '../image/check.js';
import { compareTrees, type CompareResult } from '../image/compare.js';
import { mountSquashfs, unmount } from '../mount/mount.js';
import { TEMP_PREFIX } from '../store/store.js';
import type { ImageRecord } from '../store/manifest.js';
import { fault, type FaultPoint } from './faults.js';

export interface PublishRequest {
  source: string;
  store: string;
  file: string;
  kind: 'base' | 'layer';
  settings: PackSettings;
  exclude?: readonly string[];
  /** Where to mount the new image to compare it with its source. */
  verifyMount: string;
  onProgress?: (fraction: number) => void;
  onPhase?: (phase: 'pack' | 'verify' | 'publish') => void;
  afterPack?: FaultPoint;
}

export interface Published {
  record: ImageRecord;
  compare: CompareResult;
}

export function tempImagePath(store: string): string {
  return join(store, `${TEMP_PREFIX}${process.pid}-${randomBytes(4).toString('hex')}.sqfs`);
}

export async function verifyAgainst(
  image: string,
  source: string,
  mountPoint: string,
  exclude: readonly string[] = [],
): Promise<CompareResult> {
  await checkMetadata(image);
  await fsp.mkdir(mountPoint, { recursive: true, mode: 0o700 });
  await mountSquashfs(image, mountPoint);
  try {
    const skip = exclude.length
      ? (rel: string): boolean => exclude.some((x) => rel === x || rel.startsWith(`${x}/`))
      : undefined;
    const result = await compareTrees(source, mountPoint, {
      contents: true,
      ...(skip ? { skip } : {}),
    });
    if (result.differences.length > 0) {
      const d = result.differences.map((x) => `${x.path}: ${x.what}`).join('\n');
      throw new SquashtreeError(
        'E_VERIFY',
        `the new image does not match its source (${result.differences.length} differences, first: ${result.differences[0]?.path ?? ''})`,
        {
          stderr: d,
          path: image,
          hint: 'nothing was published; if the source was being written to, try again when it is idle',
        },
      );
    }
    return result;
  } finally {
    await unmount(mountPoint);
  }
}

export async function packAndPublish(req: PublishRequest): Promise<Published> {
  const tmp = tempImagePath(req.store);
  try {
    req.onPhase?.('pack');
    await buildImage({
      source: req.source,
      output: tmp,
      ...req.settings,
      ...(req.exclude ? { exclude: req.exclude } : {}),
      ...(req.onProgress ? { onProgress: req.onProgress } : {}),
    });
    if (req.afterPack) fault(req.afterPack);
    req.onPhase?.('verify');
    const compare = await verifyAgainst(tmp, req.source, req.verifyMount, req.exclude);
    const facts = await imageFacts(tmp);
    req.onPhase?.('publish');
    const finalPath = join(req.store, req.file);
    await publishFile(tmp, finalPath);
    const record: ImageRecord = {
      file: req.file,
      kind: req.kind,
      bytes: facts.bytes,
      sha256: facts.sha256,
      compression: req.settings.compression satisfies Compressor,
      blockSize: req.settings.blockSize,
      created: new Date().toISOString(),
    };
    return { record, compare };
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw e;
  }
}
