/**
 * The store's word for a SquashFS error met while reading the images of a
 * stack: a damaged image is E_IMAGE_CORRUPT naming the store and the way
 * back. A compressor the reader lacks is not damage (callers fall back to a
 * kernel mount or mksquashfs), so it is left to them.
 */
import { SquashtreeError } from '../errors.js';
import { SquashfsFormatError, SquashfsUnsupportedError } from '../squashfs/index.js';

/** E_IMAGE_CORRUPT for a damaged image of the stack in STORE; undefined for any other error. */
export function damagedStackImage(e: unknown, store: string): SquashtreeError | undefined {
  if (!(e instanceof SquashfsFormatError) || e instanceof SquashfsUnsupportedError)
    return undefined;
  return new SquashtreeError('E_IMAGE_CORRUPT', `an image of the stack is damaged: ${e.message}`, {
    path: store,
    hint: 'squashtree verify names the image; roll back to a generation without it (squashtree rollback)',
    cause: e,
  });
}
