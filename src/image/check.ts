/**
 * Quick checks of an image file: unsquashfs walks its metadata (which
 * catches truncation and damaged tables), and its sha256 is what the
 * manifest records and every later start compares against.
 */
import { promises as fsp } from 'node:fs';
import { SquashtreeError } from '../errors.js';
import { run } from '../exec/run.js';
import { sha256File } from '../fs/hash.js';

export async function checkMetadata(image: string): Promise<void> {
  try {
    await run('unsquashfs', ['-no-progress', '-lls', '-d', '/nonexistent', image]);
  } catch (e) {
    if (e instanceof SquashtreeError && e.code === 'E_COMMAND') {
      throw new SquashtreeError('E_IMAGE_CORRUPT', `${image} is not a readable SquashFS image`, {
        path: image,
        command: e.command,
        stderr: e.stderr,
        hint: 'the image is damaged or not SquashFS; roll back to an earlier generation with squashtree rollback',
      });
    }
    throw e;
  }
}

export interface ImageFacts {
  bytes: number;
  sha256: string;
}

export async function imageFacts(image: string): Promise<ImageFacts> {
  const st = await fsp.stat(image);
  return { bytes: st.size, sha256: await sha256File(image) };
}
