/**
 * Writing one image from a stack of images (bottom first) with OverlayFS
 * semantics, without recompressing data: every data block and fragment
 * block the merged view still uses is copied verbatim from its image, and
 * only the metadata (inodes, directories, fragment, export, id and xattr
 * tables) is written anew. The cost is about that of copying the image.
 *
 *   const r = await writeMergedImage(['base.sqfs', 'layer.sqfs'], 'new.sqfs');
 *   const mem = new BufferOutput();
 *   await writeMergedImage([layerBytes], mem, { keepWhiteouts: true });
 *
 * All inputs must share compressor, compressor options and block size
 * (SquashfsWriteError 'incompatible' otherwise: use mksquashfs then).
 */
import { SquashfsWriteError } from './errors.js';
import { SquashfsImage } from './image.js';
import { dropOverlayXattrs } from './merge.js';
import type { MergeImagesOptions, MergeImagesResult } from './merge-options.js';
import { MergeWriter } from './merge-writer.js';
import { FileOutput, type ImageOutput } from './output.js';
import { ImageTables } from './tables.js';
import { checkAgainstPlan } from './plan-check.js';

export type { MergeImagesOptions, MergeImagesResult } from './merge-options.js';

/** An input image: a path, or the image's bytes in memory. */
export type MergeInput = string | Buffer;

/**
 * Open the inputs, check they can be merged, and write the merged image to
 * output: a path (created, must not exist) or an ImageOutput such as a
 * BufferOutput. On failure nothing this call created is left.
 */
export async function writeMergedImage(
  inputs: readonly MergeInput[],
  output: string | ImageOutput,
  opts: MergeImagesOptions = {},
): Promise<MergeImagesResult> {
  if (inputs.length === 0) throw new SquashfsWriteError('incompatible', 'no images to merge');
  const out = typeof output === 'string' ? new FileOutput(output) : output;
  const images: SquashfsImage[] = [];
  try {
    for (const p of inputs) {
      images.push(
        await (typeof p === 'string' ? SquashfsImage.open(p) : SquashfsImage.fromBuffer(p)),
      );
    }
    await checkCompatible(images, inputs.map(describe));
    const tables: ImageTables[] = [];
    for (const img of images) tables.push(await ImageTables.load(img));
    let result: MergeImagesResult;
    try {
      const written = await new MergeWriter(tables, opts).write(out);
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
    for (const img of images) await img.close();
  }
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
