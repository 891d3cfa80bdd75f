/** The 96-byte SquashFS 4.0 superblock and its sanity checks. */
import { COMPRESSORS, type CompressorName } from './decompress.js';
import { SquashfsFormatError } from './errors.js';
import { ABSENT_U64 } from './metadata.js';

export const SUPERBLOCK_SIZE = 96;
export const SQUASHFS_MAGIC = 0x73717368;

export const FLAGS = {
  UNCOMPRESSED_INODES: 0x0001,
  UNCOMPRESSED_DATA: 0x0002,
  CHECK: 0x0004,
  UNCOMPRESSED_FRAGMENTS: 0x0008,
  NO_FRAGMENTS: 0x0010,
  ALWAYS_FRAGMENTS: 0x0020,
  DUPLICATES: 0x0040,
  EXPORTABLE: 0x0080,
  UNCOMPRESSED_XATTRS: 0x0100,
  NO_XATTRS: 0x0200,
  COMPRESSOR_OPTIONS: 0x0400,
  UNCOMPRESSED_IDS: 0x0800,
} as const;

export interface Superblock {
  inodeCount: number;
  /** Seconds since the epoch. */
  modificationTime: number;
  blockSize: number;
  blockLog: number;
  fragmentCount: number;
  compressionId: number;
  compression: CompressorName;
  flags: number;
  idCount: number;
  versionMajor: number;
  versionMinor: number;
  /** Inode reference of the root directory: (block << 16) | offset. */
  rootInodeRef: number;
  bytesUsed: number;
  idTableStart: number;
  /** null when the image has no xattr table. */
  xattrTableStart: number | null;
  inodeTableStart: number;
  directoryTableStart: number;
  /** null when the image has no fragment table. */
  fragmentTableStart: number | null;
  /** null when the image has no export table. */
  exportTableStart: number | null;
}

function u64(buf: Buffer, off: number, field: string, optional: boolean): number | null {
  const v = buf.readBigUInt64LE(off);
  if (v === ABSENT_U64) {
    if (optional) return null;
    throw new SquashfsFormatError('superblock', `${field} is missing`, 0);
  }
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new SquashfsFormatError('superblock', `${field} ${v} is out of range`, 0);
  }
  return Number(v);
}

/** Parse and check the superblock; fileSize is the size of the image file. */
export function parseSuperblock(buf: Buffer, fileSize: number): Superblock {
  const fail = (msg: string): never => {
    throw new SquashfsFormatError('superblock', msg, 0);
  };
  if (buf.length < SUPERBLOCK_SIZE) fail(`image is ${buf.length} bytes, smaller than a superblock`);
  const magic = buf.readUInt32LE(0);
  if (magic !== SQUASHFS_MAGIC) fail(`bad magic 0x${magic.toString(16)} (not a SquashFS image)`);
  const versionMajor = buf.readUInt16LE(28);
  const versionMinor = buf.readUInt16LE(30);
  if (versionMajor !== 4 || versionMinor !== 0) {
    fail(`version ${versionMajor}.${versionMinor} is not SquashFS 4.0`);
  }
  const blockSize = buf.readUInt32LE(12);
  const blockLog = buf.readUInt16LE(22);
  if (blockLog < 12 || blockLog > 20 || blockSize !== 2 ** blockLog) {
    fail(`block size ${blockSize} (log ${blockLog}) is not a power of two from 4 KiB to 1 MiB`);
  }
  const compressionId = buf.readUInt16LE(20);
  const compression = COMPRESSORS[compressionId];
  if (compression === undefined) fail(`unknown compressor id ${compressionId}`);
  const sb: Superblock = {
    inodeCount: buf.readUInt32LE(4),
    modificationTime: buf.readUInt32LE(8),
    blockSize,
    blockLog,
    fragmentCount: buf.readUInt32LE(16),
    compressionId,
    compression: compression as CompressorName,
    flags: buf.readUInt16LE(24),
    idCount: buf.readUInt16LE(26),
    versionMajor,
    versionMinor,
    rootInodeRef: 0,
    bytesUsed: u64(buf, 40, 'bytes used', false) ?? 0,
    idTableStart: u64(buf, 48, 'id table start', false) ?? 0,
    xattrTableStart: u64(buf, 56, 'xattr table start', true),
    inodeTableStart: u64(buf, 64, 'inode table start', false) ?? 0,
    directoryTableStart: u64(buf, 72, 'directory table start', false) ?? 0,
    fragmentTableStart: u64(buf, 80, 'fragment table start', true),
    exportTableStart: u64(buf, 88, 'export table start', true),
  };
  const root = buf.readBigUInt64LE(32);
  const rootBlock = Number(root >> 16n);
  const rootOffset = Number(root & 0xffffn);
  if (root >> 16n > BigInt(sb.bytesUsed) || rootOffset >= 8192) {
    fail(`root inode reference 0x${root.toString(16)} is out of range`);
  }
  sb.rootInodeRef = rootBlock * 65536 + rootOffset;
  if (sb.inodeCount === 0) fail('inode count is 0');
  if (sb.idCount === 0) fail('id count is 0');
  if (sb.bytesUsed < SUPERBLOCK_SIZE) fail(`bytes used ${sb.bytesUsed} is too small`);
  if (sb.bytesUsed > fileSize) {
    fail(`image is truncated: the superblock says ${sb.bytesUsed} bytes, the file has ${fileSize}`);
  }
  const within = (v: number | null, name: string): void => {
    if (v !== null && (v < SUPERBLOCK_SIZE || v >= sb.bytesUsed)) {
      fail(`${name} ${v} lies outside the image (${SUPERBLOCK_SIZE}..${sb.bytesUsed})`);
    }
  };
  within(sb.inodeTableStart, 'inode table start');
  within(sb.directoryTableStart, 'directory table start');
  within(sb.idTableStart, 'id table start');
  within(sb.xattrTableStart, 'xattr table start');
  within(sb.fragmentTableStart, 'fragment table start');
  within(sb.exportTableStart, 'export table start');
  if (sb.inodeTableStart >= sb.directoryTableStart) {
    fail('the inode table does not come before the directory table');
  }
  if (rootBlock >= sb.directoryTableStart - sb.inodeTableStart) {
    fail('root inode reference lies outside the inode table');
  }
  if (sb.fragmentCount > 0 && sb.fragmentTableStart === null) {
    fail(`${sb.fragmentCount} fragments but no fragment table`);
  }
  return sb;
}

/** What the writer puts in a superblock (the magic and version are fixed). */
export interface SuperblockFields {
  inodeCount: number;
  modificationTime: number;
  blockSize: number;
  blockLog: number;
  fragmentCount: number;
  compressionId: number;
  flags: number;
  idCount: number;
  rootInodeRef: number;
  bytesUsed: number;
  idTableStart: number;
  xattrTableStart: number | null;
  inodeTableStart: number;
  directoryTableStart: number;
  fragmentTableStart: number;
  exportTableStart: number;
}

export function encodeSuperblock(f: SuperblockFields): Buffer {
  const s = Buffer.alloc(SUPERBLOCK_SIZE);
  s.writeUInt32LE(SQUASHFS_MAGIC, 0);
  s.writeUInt32LE(f.inodeCount, 4);
  s.writeUInt32LE(f.modificationTime >>> 0, 8);
  s.writeUInt32LE(f.blockSize, 12);
  s.writeUInt32LE(f.fragmentCount, 16);
  s.writeUInt16LE(f.compressionId, 20);
  s.writeUInt16LE(f.blockLog, 22);
  s.writeUInt16LE(f.flags, 24);
  s.writeUInt16LE(f.idCount, 26);
  s.writeUInt16LE(4, 28);
  s.writeUInt16LE(0, 30);
  s.writeBigUInt64LE(BigInt(f.rootInodeRef), 32);
  s.writeBigUInt64LE(BigInt(f.bytesUsed), 40);
  s.writeBigUInt64LE(BigInt(f.idTableStart), 48);
  s.writeBigUInt64LE(f.xattrTableStart === null ? ABSENT_U64 : BigInt(f.xattrTableStart), 56);
  s.writeBigUInt64LE(BigInt(f.inodeTableStart), 64);
  s.writeBigUInt64LE(BigInt(f.directoryTableStart), 72);
  s.writeBigUInt64LE(BigInt(f.fragmentTableStart), 80);
  s.writeBigUInt64LE(BigInt(f.exportTableStart), 88);
  return s;
}
