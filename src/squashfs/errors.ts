/**
 * Errors of the SquashFS reader. Every problem with the image's bytes is a
 * SquashfsFormatError naming the structure that was being read and where in
 * the image it lies; callers never see a RangeError or a decompressor's own
 * exception. This module depends on nothing outside src/squashfs/.
 */

export interface SquashfsErrorOptions {
  cause?: unknown;
}

/** The image's bytes do not describe a valid SquashFS 4.0 filesystem (or not one this reader can read). */
export class SquashfsFormatError extends Error {
  /** The structure being read: "superblock", "inode", "directory listing", "data block", ... */
  readonly structure: string;
  /**
   * Absolute byte offset in the image where the problem was found. For
   * records inside metadata blocks this is the on-disk position of the
   * metadata block (the message names the offset inside it); -1 when no
   * position applies (for example an unknown compressor id).
   */
  readonly offset: number;

  constructor(
    structure: string,
    message: string,
    offset: number,
    options: SquashfsErrorOptions = {},
  ) {
    super(
      `${structure}${offset >= 0 ? ` at byte ${offset}` : ''}: ${message}`,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = 'SquashfsFormatError';
    this.structure = structure;
    this.offset = offset;
  }
}

/**
 * The image is well-formed but uses something this reader cannot decode (a
 * compressor without a usable JavaScript decoder). A subclass of
 * SquashfsFormatError, so "could not read this image" is one catch.
 */
export class SquashfsUnsupportedError extends SquashfsFormatError {
  /** What is unsupported, such as "lzo compression". */
  readonly feature: string;

  constructor(structure: string, feature: string, offset: number, hint = '') {
    super(
      structure,
      `${feature} is not supported by this reader${hint ? ` (${hint})` : ''}`,
      offset,
    );
    this.name = 'SquashfsUnsupportedError';
    this.feature = feature;
  }
}

export type SquashfsPathErrorCode = 'ENOENT' | 'ENOTDIR' | 'EISDIR' | 'EINVAL' | 'EFBIG';

/** A request the image cannot answer: no such path, the wrong kind of entry, a file too large to read whole. */
export class SquashfsPathError extends Error {
  readonly code: SquashfsPathErrorCode;
  /** The path as asked for (bytes as latin1 text). */
  readonly path: string;

  constructor(code: SquashfsPathErrorCode, path: string, message: string) {
    super(message);
    this.name = 'SquashfsPathError';
    this.code = code;
    this.path = path;
  }
}

export function isSquashfsFormatError(e: unknown): e is SquashfsFormatError {
  return e instanceof SquashfsFormatError;
}

export type SquashfsWriteErrorCode =
  /** The images differ in compressor, its options or block size. */
  | 'incompatible'
  /** Something in the stack the format cannot hold (too many ids, an entry too large). */
  | 'too-large'
  /** Too much of what would be copied belongs to files no longer in the view (recompress instead). */
  | 'wasteful'
  /** The image written does not read back as planned. */
  | 'verify'
  /** Something this writer cannot make (no encoder for the compressor, no xattr reader): use mksquashfs. */
  | 'unsupported'
  /** A file of a directory being packed changed while it was read. */
  | 'input-changed';

/** The writer cannot make (or made a wrong) image from these inputs. */
export class SquashfsWriteError extends Error {
  readonly code: SquashfsWriteErrorCode;

  constructor(code: SquashfsWriteErrorCode, message: string) {
    super(message);
    this.name = 'SquashfsWriteError';
    this.code = code;
  }
}
