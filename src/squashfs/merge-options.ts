/** What writeMergedImage and writeImage take and return. */
import type { CompressorName } from './decompress.js';

/** What the check of a written image compared. */
export interface PlanCheckResult {
  entries: number;
  /** Data and fragment bytes compared. */
  bytesCompared: number;
}

export interface MergeImagesOptions {
  /** Which xattrs the new image keeps; default: all but trusted.overlay.* (overlay bookkeeping). */
  keepXattr?: (name: Buffer) => boolean;
  /** Called as each phase starts. */
  onPhase?: (phase: 'plan' | 'copy' | 'metadata' | 'tables' | 'verify') => void;
  /** Progress of the data copy, in bytes. */
  onProgress?: (done: number, total: number) => void;
  /** Modification time for the superblock; default: the newest input's. */
  mtime?: number;
  /** Check the result against the inputs (see verifyMergedImage) before returning. */
  verify?: boolean;
  /** Keep whiteouts as entries (rewriting a single layer) instead of applying them. */
  keepWhiteouts?: boolean;
  /** Stops the work (its reason is thrown) at the next directory or block copied. */
  signal?: AbortSignal;
  /**
   * Refuse (SquashfsWriteError 'wasteful') when more than this share of the
   * bytes to copy (and over 4 MiB) belongs to replaced or deleted files:
   * fragment blocks are copied whole, so such bytes would stay until a
   * recompression.
   */
  maxWaste?: number;
  /**
   * Threads that compress (new fragment blocks, a packed directory's
   * files); default: one per core when there are megabytes to compress,
   * none (the calling thread) for less. The bytes are the same either way.
   */
  threads?: number;
  /**
   * For a directory alone (no image below it): the compressor, its level
   * (default mksquashfs's: gzip 9, zstd 15) and the block size (default
   * 128 KiB). With images, they come from the images (and must match when
   * given).
   */
  compression?: { name: CompressorName; level?: number; blockSize?: number };
}

export interface MergeImagesResult {
  /** Bytes of the image file (padded to 4 KiB). */
  bytes: number;
  inodes: number;
  files: number;
  dirs: number;
  fragments: number;
  /** Data and fragment bytes copied verbatim from the inputs. */
  copiedBytes: number;
  /** Data bytes of the inputs the merged view no longer uses (not copied). */
  droppedBytes: number;
  /** Of the copied bytes, about how many hold files the merged view no longer has (in shared fragment blocks). */
  wastedBytes: number;
  /** Fragment blocks not copied whole (over a tenth dead, or read out of order): their live tails were repacked. */
  repackedFragments: number;
  /** False when metadata is stored uncompressed (no encoder for the compressor). */
  metadataCompressed: boolean;
  /** Files of a packed directory (their data read and compressed), and the bytes read. */
  packedFiles: number;
  packedBytes: number;
  /** Threads that compressed (0: the calling thread). */
  threads: number;
  /** With verify: what was compared. */
  verified?: PlanCheckResult;
}

/** maxWaste applies above this many wasted bytes: a small tree's few dead tails do not matter. */
export const WASTE_FLOOR = 4 << 20;
