/**
 * A native reader and writer for SquashFS 4.0 images. Self-contained:
 * nothing here imports from the rest of squashtree.
 */
export {
  SquashfsImage,
  type CompressorOptions,
  type DirEntry,
  type OpenOptions,
  type ResolvedDirEntry,
  type Stat,
  type WalkEntry,
  type Xattr,
} from './image.js';
export {
  SquashfsFormatError,
  SquashfsPathError,
  SquashfsUnsupportedError,
  SquashfsWriteError,
  isSquashfsFormatError,
  type SquashfsWriteErrorCode,
  type SquashfsPathErrorCode,
} from './errors.js';
export {
  S_IFMT,
  type DeviceInode,
  type DirInode,
  type FileInode,
  type Inode,
  type InodeKind,
  type IpcInode,
  type SymlinkInode,
} from './inode.js';
export { FLAGS, type Superblock } from './superblock.js';
export { COMPRESSORS, type CompressorName } from './decompress.js';
export { BufferSource, FileSource, type ByteSource } from './source.js';
export {
  writeMergedImage,
  type MergeImagesOptions,
  type MergeImagesResult,
  type MergeInput,
} from './writer.js';
export { BufferOutput, FileOutput, type ImageOutput } from './output.js';
export { verifyMergedImage, type VerifyMergeResult } from './verify-merge.js';
export { dropOverlayXattrs, isWhiteout } from './merge.js';
export { diffTopLayer, type LayerChange } from './layer-diff.js';
export { ImageTables } from './tables.js';
export { OverlayMerge, type LayerDir, type MergedEntry } from './merge.js';
export { MERGE_METHOD, mergeEnvironment, type MergeSettings } from './recipe.js';
