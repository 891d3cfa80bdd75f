/**
 * Writing one image from a stack (bottom first) with OverlayFS semantics.
 * Images' data blocks and fragment blocks that the merged view still uses
 * are copied verbatim; a directory on top (the packer) has its files read
 * and compressed on worker threads. Metadata (inodes, directories,
 * fragment, export, id and xattr tables) is always written anew.
 *
 *   // compaction: images only, a copy's cost
 *   await writeMergedImage(['base.sqfs', 'layer.sqfs'], 'new.sqfs');
 *   // a layer from a staged upper in layer form (whiteouts kept as 0/0 devices)
 *   await writeImage([{ dir: stage }], 'layer.sqfs',
 *     { keepWhiteouts: true, compression: { name: 'gzip' }, verify: true });
 *   // a new base: the images below and a captured upper (whiteouts applied)
 *   await writeImage(['base.sqfs', 'layer.sqfs', { dir: stage }], 'base2.sqfs');
 *
 * All images must share compressor, compressor options and block size
 * (SquashfsWriteError 'incompatible' otherwise: use mksquashfs then).
 */
import type { CompressorOptions } from './compressor-options.js';
import { parseCompressorOptions } from './compressor-options.js';
import type { CompressorName } from './decompress.js';
import { pathOf, scanDirectory, type DirScan } from './dir-scan.js';
import { SquashfsWriteError } from './errors.js';
import { SquashfsImage } from './image.js';
import { dropOverlayXattrs } from './merge.js';
import type { MergeImagesOptions, MergeImagesResult } from './merge-options.js';
import { MergeWriter, type FreshLayer, type OutputSettings } from './merge-writer.js';
import { FileOutput, type ImageOutput } from './output.js';
import { PackPool } from './pack-pool.js';
import { buildSkeleton, compressorId } from './skeleton.js';
import { ImageTables } from './tables.js';
import { checkAgainstPlan } from './plan-check.js';

export type { MergeImagesOptions, MergeImagesResult } from './merge-options.js';

/** An input image: a path, or the image's bytes in memory. */
export type MergeInput = string | Buffer;

/**
 * A directory to pack, in layer form: character devices 0/0 are whiteouts
 * (kept as entries with keepWhiteouts, else applied to the images below);
 * a directory marked trusted.overlay.opaque=y hides what lies below it, as
 * in an image (the layer form writes opacity out as whiteouts instead, and
 * either reads the same). trusted.overlay.* xattrs are not written (see
 * keepXattr); every other xattr is. The caller packs a private copy: a file
 * that changes while it is read fails the pack (SquashfsWriteError
 * 'input-changed').
 */
export interface DirectoryInput {
  dir: string | Buffer;
}

export type StackInput = MergeInput | DirectoryInput;

const isDir = (x: StackInput): x is DirectoryInput => typeof x === 'object' && 'dir' in x;

/**
 * Open the inputs, check they can be merged, and write the merged image to
 * output: a path (created, must not exist) or an ImageOutput such as a
 * BufferOutput. On failure nothing this call created is left.
 */
export function writeMergedImage(
  inputs: readonly MergeInput[],
  output: string | ImageOutput,
  opts: MergeImagesOptions = {},
): Promise<MergeImagesResult> {
  return writeImage(inputs, output, opts);
}

/** As writeMergedImage, with a directory allowed at the top of the stack (see DirectoryInput). */
export async function writeImage(
  inputs: readonly StackInput[],
  output: string | ImageOutput,
  opts: MergeImagesOptions = {},
): Promise<MergeImagesResult> {
  if (inputs.length === 0) throw new SquashfsWriteError('incompatible', 'no images to merge');
  const dirs = inputs.filter(isDir);
  const top = inputs[inputs.length - 1];
  if (dirs.length > 1 || (dirs.length === 1 && (!top || !isDir(top)))) {
    throw new SquashfsWriteError('incompatible', 'a directory may only be the top of the stack');
  }
  const imageInputs = inputs.filter((x): x is MergeInput => !isDir(x));
  const out = typeof output === 'string' ? new FileOutput(output) : output;
  const images: SquashfsImage[] = [];
  let pool: Promise<PackPool> | undefined;
  try {
    for (const p of imageInputs) {
      images.push(
        await (typeof p === 'string' ? SquashfsImage.open(p) : SquashfsImage.fromBuffer(p)),
      );
    }
    await checkCompatible(images, imageInputs.map(describe));
    const settings = await outputSettings(images, opts);
    const tables: ImageTables[] = [];
    for (const img of images) tables.push(await ImageTables.load(img));
    let fresh: FreshLayer | null = null;
    const dir = dirs[0];
    if (dir) {
      const scan = await scanDirectory(dir.dir, opts.keepXattr ?? dropOverlayXattrs);
      // Threads start while the directory is planned: they are ready when its data is.
      pool = PackPool.open(
        {
          name: settings.compression,
          options: settings.options?.fields ?? {},
          blockSize: settings.blockSize,
        },
        PackPool.threadsFor(scan.fileBytes, opts.threads),
      );
      pool.catch(() => undefined);
      const skeleton = buildSkeleton(scan, settings.compression, settings.blockSize);
      const img = await SquashfsImage.fromBuffer(skeleton.bytes);
      images.push(img);
      tables.push(await ImageTables.load(img));
      fresh = {
        layer: tables.length - 1,
        files: filesOf(scan, skeleton.entryOf),
        bytes: scan.fileBytes,
        pool,
      };
    }
    let result: MergeImagesResult;
    try {
      const written = await new MergeWriter(tables, opts, settings, fresh).write(out);
      result = written.result;
      if (opts.verify) {
        opts.onPhase?.('verify');
        const keep = opts.keepXattr ?? dropOverlayXattrs;
        result.verified = await checkAgainstPlan(written, await out.source(), keep, opts.signal);
      }
    } catch (e) {
      await out.discard();
      throw e;
    }
    return result;
  } finally {
    // The writer closes the pool it used; this one never reached it when something failed first.
    if (pool)
      await pool.then(
        (p) => p.close(),
        () => undefined,
      );
    for (const img of images) await img.close();
  }
}

function filesOf(scan: DirScan, entryOf: Int32Array): FreshLayer['files'] {
  return {
    file: (n) => {
      const i = entryOf[n] ?? 0;
      return { path: pathOf(scan, i), size: scan.entries[i]?.size ?? 0 };
    },
  };
}

/** mksquashfs's defaults: an options block only where they differ (lz4 always has one). */
function optionsFor(name: CompressorName, level: number | undefined): CompressorOptions | null {
  let raw: Buffer | null = null;
  if (name === 'gzip' && level !== undefined && level !== 9) {
    raw = Buffer.alloc(8);
    raw.writeUInt32LE(level, 0);
    raw.writeUInt16LE(15, 4);
  } else if (name === 'zstd' && level !== undefined && level !== 15) {
    raw = Buffer.alloc(4);
    raw.writeUInt32LE(level, 0);
  } else if (name === 'lz4') {
    raw = Buffer.alloc(8);
    raw.writeUInt32LE(1, 0);
  }
  return raw ? parseCompressorOptions(name, raw) : null;
}

async function outputSettings(
  images: readonly SquashfsImage[],
  opts: MergeImagesOptions,
): Promise<OutputSettings> {
  const first = images[0];
  const want = opts.compression;
  if (!first) {
    if (!want) {
      throw new SquashfsWriteError(
        'incompatible',
        'a directory packed alone needs the compression settings (opts.compression)',
      );
    }
    const blockSize = want.blockSize ?? 131072;
    if (!Number.isInteger(Math.log2(blockSize)) || blockSize < 4096 || blockSize > 1 << 20) {
      throw new SquashfsWriteError(
        'incompatible',
        `block size ${blockSize} is not a power of two from 4 KiB to 1 MiB`,
      );
    }
    return {
      compression: want.name,
      compressionId: compressorId(want.name),
      blockSize,
      options: optionsFor(want.name, want.level),
      flags: 0,
    };
  }
  const sb = first.superblock;
  if (want && (want.name !== sb.compression || (want.blockSize ?? sb.blockSize) !== sb.blockSize)) {
    throw new SquashfsWriteError(
      'incompatible',
      `the images use ${sb.compression} with ${sb.blockSize}-byte blocks, not ${want.name} with ${want.blockSize ?? sb.blockSize}`,
    );
  }
  return {
    compression: sb.compression,
    compressionId: sb.compressionId,
    blockSize: sb.blockSize,
    options: await first.compressorOptions(),
    flags: sb.flags,
  };
}

function describe(input: MergeInput, i: number): string {
  return typeof input === 'string' ? input : `image ${i} (in memory)`;
}

async function checkCompatible(
  images: readonly SquashfsImage[],
  names: readonly string[],
): Promise<void> {
  const first = images[0];
  if (!first) return;
  const opts0 = (await first.compressorOptions())?.raw ?? Buffer.alloc(0);
  for (let i = 1; i < images.length; i++) {
    const img = images[i];
    if (!img) continue;
    const a = first.superblock;
    const b = img.superblock;
    const o = (await img.compressorOptions())?.raw ?? Buffer.alloc(0);
    if (a.compression !== b.compression || a.blockSize !== b.blockSize || !o.equals(opts0)) {
      throw new SquashfsWriteError(
        'incompatible',
        `${names[i] ?? `image ${i}`} uses ${b.compression} with ${b.blockSize}-byte blocks` +
          `${o.equals(opts0) ? '' : ' and other compressor options'}, ${names[0] ?? 'the first image'} ${a.compression} with ${a.blockSize}-byte blocks`,
      );
    }
  }
}
