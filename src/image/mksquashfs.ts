/**
 * Building an image with mksquashfs. mksquashfs exits 0 even when it could
 * not read a file (it stores an empty one instead), so its messages are read
 * and any sign of a lost or changed file fails the build.
 */
import type { Compressor } from '../config/schema.js';
import { SquashtreeError } from '../errors.js';
import { run } from '../exec/run.js';

export interface PackSettings {
  compression: Compressor;
  compressionLevel: number | undefined;
  blockSize: number;
  extraArgs: readonly string[];
}

export interface BuildOptions extends PackSettings {
  source: string;
  output: string;
  /** Paths relative to source to leave out. */
  exclude?: readonly string[];
  /** Called with 0..1 as mksquashfs reports progress. */
  onProgress?: (fraction: number) => void;
}

/** Messages that mean the image does not hold what the source held. */
const DATA_LOSS = [
  /failed to read file/i,
  /changed size/i,
  /creating empty file/i,
  /read failed/i,
  /cannot stat/i,
  /lseek failed/i,
  /could not open/i,
  /failed to (get|read) xattr/i,
];

export function compressorArgs(s: PackSettings): string[] {
  const args = ['-comp', s.compression, '-b', String(s.blockSize)];
  if (s.compressionLevel !== undefined)
    args.push('-Xcompression-level', String(s.compressionLevel));
  return args;
}

export function mksquashfsArgs(o: BuildOptions): string[] {
  const args = [
    o.source,
    o.output,
    '-noappend',
    '-xattrs',
    '-progress',
    ...compressorArgs(o),
    ...o.extraArgs,
  ];
  // -e takes every argument after it, so it must come last.
  if (o.exclude && o.exclude.length > 0) args.push('-e', ...o.exclude);
  return args;
}

export async function buildImage(o: BuildOptions): Promise<void> {
  const losses: string[] = [];
  const watch = (line: string): void => {
    const m = /(\d+)\/(\d+)\s+(\d+)%/.exec(line);
    if (m) {
      const total = Number(m[2]);
      if (total > 0) o.onProgress?.(Number(m[1]) / total);
      return;
    }
    if (DATA_LOSS.some((re) => re.test(line))) losses.push(line.trim());
  };
  await run('mksquashfs', mksquashfsArgs(o), {
    interruptible: true,
    onStdoutLine: watch,
    onStderrLine: watch,
    hint: 'check free space in the store and the compression settings (squashtree doctor)',
  });
  if (losses.length > 0) {
    throw new SquashtreeError(
      'E_PACK',
      `mksquashfs could not read every file: ${losses[0] ?? ''}`,
      {
        command: `mksquashfs ${mksquashfsArgs(o).join(' ')}`,
        stderr: losses.slice(0, 20).join('\n'),
        hint: 'the source changed while it was packed; nothing was published, try again when it is idle',
      },
    );
  }
}
