/**
 * A commit's image written by squashtree's own SquashFS writer
 * (src/squashfs/writer.ts) instead of mksquashfs: a layer straight from the
 * staged upper, already in layer form (whiteouts kept as 0/0 devices; the
 * copy left out trusted.overlay.* but the escaped trusted.overlay.overlay.*,
 * and the writer's default keeps exactly those), or a new base from the
 * stack's images and the staged upper. The writer checks what it wrote
 * against its plan (every entry and block) before it returns.
 */
import type { PackSettings } from '../image/mksquashfs.js';
import {
  SquashfsUnsupportedError,
  SquashfsWriteError,
  writeImage,
  type CompressorName,
  type MergeImagesResult,
} from '../squashfs/index.js';
import { interruptSignal } from '../exec/run.js';

export type PackMethod = 'writer' | 'mksquashfs';

/** Compressors the writer has encoders for (lzo has none: mksquashfs packs it). */
const WRITER_COMPRESSORS: ReadonlySet<string> = new Set(['gzip', 'xz', 'zstd', 'lz4']);

/**
 * Why the writer cannot pack with these settings (then mksquashfs does), or
 * null when it can.
 */
export function writerUnsuitableFor(s: PackSettings): string | null {
  if (!WRITER_COMPRESSORS.has(s.compression))
    return `the native writer has no ${s.compression} encoder`;
  if (s.extraArgs.length > 0) return 'mksquashfs-args are set (only mksquashfs applies them)';
  return null;
}

/** True for what the writer refuses by design (then mksquashfs packs): not a failed check. */
export function isPackRefusal(e: unknown): boolean {
  return (
    e instanceof SquashfsUnsupportedError ||
    (e instanceof SquashfsWriteError && e.code !== 'verify')
  );
}

export interface NativePack {
  source: string;
  output: string;
  /** Absolute paths of the images to merge the source onto (a new base); none for a layer. */
  below: readonly string[];
  settings: PackSettings;
  onProgress?: (fraction: number) => void;
}

export async function packNative(p: NativePack): Promise<MergeImagesResult> {
  const layer = p.below.length === 0;
  const s = p.settings;
  return writeImage([...p.below, { dir: p.source }], p.output, {
    // A layer keeps its whiteouts for the images it goes on; a new base applies them.
    keepWhiteouts: layer,
    verify: true,
    signal: interruptSignal(),
    ...(layer
      ? {
          compression: {
            name: s.compression as CompressorName,
            blockSize: s.blockSize,
            ...(s.compressionLevel !== undefined ? { level: s.compressionLevel } : {}),
          },
        }
      : {}),
    ...(p.onProgress
      ? {
          onProgress: (done: number, total: number) => p.onProgress?.(total ? done / total : 1),
        }
      : {}),
  });
}
