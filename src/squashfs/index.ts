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
/**
 * The writer: writeMergedImage merges images (compaction: blocks copied,
 * metadata written anew); writeImage also takes a directory at the top of
 * the stack (the packer): `writeImage([{ dir }], out, { keepWhiteouts:
 * true, compression: { name: 'gzip' }, verify: true })` packs a staged
 * upper in layer form into a layer; `writeImage([base, layer, { dir }],
 * out)` writes a new base from the images and a captured upper, copying
 * the images' blocks and compressing the directory's files on worker
 * threads. A compressor without an encoder here (lzo, lzma), or no python3 to read xattrs, is SquashfsWriteError
 * 'unsupported': pack with mksquashfs then. See DirectoryInput.
 */
export {
  writeImage,
  writeMergedImage,
  type DirectoryInput,
  type MergeImagesOptions,
  type MergeImagesResult,
  type MergeInput,
  type StackInput,
} from './writer.js';
export { BufferOutput, FileOutput, type ImageOutput } from './output.js';
export { verifyMergedImage, type VerifyMergeResult } from './verify-merge.js';
export { dropOverlayXattrs, isWhiteout } from './merge.js';
export { diffTopLayer, type LayerChange } from './layer-diff.js';
export { diffStacks } from './stack-diff.js';
export { ImageTables } from './tables.js';
export { OverlayMerge, type LayerDir, type MergedEntry } from './merge.js';
export { MERGE_METHOD, mergeEnvironment, type MergeSettings } from './recipe.js';
