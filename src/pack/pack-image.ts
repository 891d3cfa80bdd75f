/**
 * Turning a directory into a published image: pack it into a fresh temp
 * file in the store, prove it holds its source, record its sha256, fsync it
 * and only then rename it into place. The proof is either a mount (unsquashfs
 * checks the metadata, the kernel reads the image, and the trees are compared:
 * types, modes, owners, sizes, targets, contents byte for byte) or, cheaper for the
 * small layers a commit makes, the same comparison in process through the
 * native reader (src/image/match.ts), which also reads every metadata table
 * and data block on the way.
 */
import { promises as fsp } from 'node:fs';
import { createHash } from 'node:crypto';
import type { Compressor } from '../config/schema.js';
import { SquashtreeError, errnoCode, errorMessage } from '../errors.js';
import type { Entry } from '../fs/walk.js';
import { buildImage, type PackSettings } from '../image/mksquashfs.js';
import { checkMetadata, imageFacts, type ImageFacts } from '../image/check.js';
import { compareTrees, type CompareResult } from '../image/compare.js';
import { matchImage } from '../image/match.js';
import {
  SquashfsFormatError,
  SquashfsImage,
  SquashfsUnsupportedError,
  type MergeImagesResult,
} from '../squashfs/index.js';
import { mountSquashfs, unmount } from '../mount/mount.js';
import { stageImage } from '../store/stage.js';
import type { ImageRecord } from '../store/manifest.js';
import { fault, hold, type FaultPoint, type HoldPoint } from '../faults.js';
import { interruptSignal } from '../exec/run.js';
import { skipExcluded } from '../config/exclude.js';
import { isPackRefusal, packNative, type PackMethod } from './native-pack.js';

export interface PublishRequest {
  source: string;
  store: string;
  file: string;
  kind: 'base' | 'layer';
  settings: PackSettings;
  exclude?: readonly string[];
  /** Where to mount the new image to compare it with its source. */
  verifyMount: string;
  /**
   * mount (the default): compare through a kernel mount; reader: in process
   * with the native reader, through a mount only for a compressor it lacks.
   */
  verifyWith?: 'mount' | 'reader';
  /**
   * For verifyWith reader: the dirs that must (true) or must not (false) be
   * opaque. Called once the pack has started, so working them out overlaps it.
   */
  opaque?: () => Promise<ReadonlyMap<string, boolean> | undefined>;
  /**
   * For verifyWith reader: the entries the image must hold, when the caller
   * has them (a commit: the upper as it was copied, so the copy is checked
   * too); else the source is walked.
   */
  expected?: readonly Entry[];
  /** A last check of the verified temp image before it is published (a commit's new stack). */
  beforePublish?: (tempImage: string) => Promise<void>;
  onProgress?: (fraction: number) => void;
  /** Progress of the comparison through a mount (init's, which reads every file). */
  onVerifyProgress?: (fraction: number) => void;
  onPhase?: (phase: 'pack' | 'verify' | 'publish') => void;
  afterPack?: FaultPoint;
  /** A check of the source run beside the pack; its failure stops the publish before the verify. */
  besidePack?: () => Promise<void>;
  /** A test hold point while the pack runs (see src/faults.ts). */
  whilePacking?: HoldPoint;
  /**
   * writer: pack with squashtree's own writer (native-pack.ts), mksquashfs
   * when it refuses (a layer only); mksquashfs (the default): mksquashfs.
   */
  method?: PackMethod;
  /**
   * For method writer: the images (absolute paths, bottom first) to merge
   * the source onto, writing a new base; the writer's own check then stands
   * for the comparison with the source, which holds only the changes.
   */
  below?: readonly string[];
}

export interface Published {
  record: ImageRecord;
  compare: CompareResult;
  /** What packed it, and why not the writer when it was asked for. */
  method: PackMethod;
  methodReason?: string;
}

function requireMatch(result: CompareResult, image: string): CompareResult {
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
}

export async function verifyAgainst(
  image: string,
  source: string,
  mountPoint: string,
  exclude: readonly string[] = [],
  onProgress?: (fraction: number) => void,
): Promise<CompareResult> {
  await checkMetadata(image);
  await fsp.mkdir(mountPoint, { recursive: true, mode: 0o700 });
  await mountSquashfs(image, mountPoint);
  try {
    const result = await compareTrees(source, mountPoint, {
      contents: true,
      ...skipExcluded(exclude),
      ...(onProgress ? { onProgress } : {}),
    });
    return requireMatch(result, image);
  } finally {
    await unmount(mountPoint);
  }
}

/** Layers up to this size are read once into memory: verified and hashed from the same bytes. */
const IN_MEMORY = 64 << 20;

/** Its sha256, and a reader on it: from memory when it is small, else from the file. */
async function openForCheck(image: string): Promise<{ img: SquashfsImage; facts: ImageFacts }> {
  const size = (await fsp.stat(image)).size;
  if (size > IN_MEMORY)
    return { img: await SquashfsImage.open(image), facts: await imageFacts(image) };
  const bytes = await fsp.readFile(image);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  return { img: await SquashfsImage.fromBuffer(bytes), facts: { bytes: bytes.length, sha256 } };
}

/** The same proof in process; a mount only for a compressor the reader lacks (lzma). */
export async function verifyWithReader(
  image: string,
  source: string,
  mountPoint: string,
  exclude: readonly string[] = [],
  opaque?: ReadonlyMap<string, boolean>,
  expected?: readonly Entry[],
): Promise<{ compare: CompareResult; facts: ImageFacts }> {
  let result: CompareResult;
  let facts: ImageFacts;
  try {
    const opened = await openForCheck(image);
    facts = opened.facts;
    try {
      result = await matchImage(opened.img, source, {
        ...skipExcluded(exclude),
        ...(opaque ? { opaque } : {}),
        ...(expected ? { expected } : {}),
      });
    } finally {
      await opened.img.close();
    }
  } catch (e) {
    if (e instanceof SquashfsUnsupportedError) {
      const compare = await verifyAgainst(image, source, mountPoint, exclude);
      return { compare, facts: await imageFacts(image) };
    }
    if (!(e instanceof SquashfsFormatError)) throw e;
    throw new SquashtreeError('E_VERIFY', `the new image cannot be read back: ${e.message}`, {
      path: image,
      hint: 'nothing was published; check the disk of the store and squashfs-tools (squashtree doctor)',
    });
  }
  return { compare: requireMatch(result, image), facts };
}

/** Pack as asked; the method that packed and why the writer did not, when it did not. */
async function pack(
  req: PublishRequest,
  tmp: string,
): Promise<{ method: PackMethod; reason?: string; native?: MergeImagesResult }> {
  const mksquashfs = async (reason?: string): Promise<{ method: PackMethod; reason?: string }> => {
    await buildImage({
      source: req.source,
      output: tmp,
      ...req.settings,
      ...(req.exclude ? { exclude: req.exclude } : {}),
      ...(req.onProgress ? { onProgress: req.onProgress } : {}),
    });
    return { method: 'mksquashfs', ...(reason ? { reason } : {}) };
  };
  if (req.method !== 'writer') return mksquashfs();
  try {
    const native = await packNative({
      source: req.source,
      output: tmp,
      below: req.below ?? [],
      settings: req.settings,
      ...(req.onProgress ? { onProgress: req.onProgress } : {}),
    });
    return { method: 'writer', native };
  } catch (e) {
    if (errnoCode(e) === 'ENOSPC') {
      throw new SquashtreeError(
        'E_NO_SPACE',
        `No space left on device while writing ${req.file} in ${req.store}`,
        {
          path: req.store,
          hint: 'free space in the store, then try again; nothing was published',
          cause: e,
        },
      );
    }
    // A new base has no mksquashfs fallback here: the caller packs a layer instead.
    if (req.below?.length || !isPackRefusal(e)) throw e;
    return mksquashfs(errorMessage(e));
  }
}

export async function packAndPublish(req: PublishRequest): Promise<Published> {
  const newBase = req.method === 'writer' && (req.below?.length ?? 0) > 0;
  const image = {
    file: req.file,
    kind: req.kind,
    compression: req.settings.compression satisfies Compressor,
    blockSize: req.settings.blockSize,
  };
  const { record, result } = await stageImage(req.store, image, async (tmp) => {
    req.onPhase?.('pack');
    // The pack starts before it returns: the opaque marks are worked out beside it.
    const packing = pack(req, tmp);
    const marks = req.verifyWith === 'reader' && !newBase ? req.opaque?.() : undefined;
    // Settled first, so a failure while the test holds the pack is handled.
    const settled = Promise.allSettled([packing, marks, req.besidePack?.()]);
    if (req.whilePacking) await hold(req.whilePacking);
    const [packed, opaque, beside] = await settled;
    if (beside.status === 'rejected') throw beside.reason;
    if (packed.status === 'rejected') throw packed.reason;
    if (opaque.status === 'rejected') throw opaque.reason;
    // A signal that came as the pack finished: no further step begins.
    interruptSignal().throwIfAborted();
    if (req.afterPack) fault(req.afterPack);
    req.onPhase?.('verify');
    const native = packed.value.native;
    const { compare, facts } =
      newBase && native
        ? {
            compare: { differences: [], entries: native.inodes, files: native.files, bytes: 0 },
            facts: await imageFacts(tmp),
          }
        : req.verifyWith === 'reader'
          ? await verifyWithReader(
              tmp,
              req.source,
              req.verifyMount,
              req.exclude,
              opaque.value,
              req.expected,
            )
          : {
              compare: await verifyAgainst(
                tmp,
                req.source,
                req.verifyMount,
                req.exclude,
                req.onVerifyProgress,
              ),
              facts: await imageFacts(tmp),
            };
    if (req.beforePublish) await req.beforePublish(tmp);
    req.onPhase?.('publish');
    return { result: { compare, packed: packed.value }, facts };
  });
  return {
    record,
    compare: result.compare,
    method: result.packed.method,
    ...(result.packed.reason ? { methodReason: result.packed.reason } : {}),
  };
}
