/** Inodes: the common header and each of the 14 basic and extended types. */
import { SquashfsFormatError } from './errors.js';
import { ABSENT_U32, type MetadataCursor, readU64 } from './metadata.js';

export type InodeKind = 'dir' | 'file' | 'symlink' | 'blockdev' | 'chardev' | 'fifo' | 'socket';

/** Basic type ids 1..7; the extended form of each is id + 7. */
export const KIND_BY_BASIC_TYPE: readonly InodeKind[] = [
  'dir', // placeholder for index 0, never used
  'dir',
  'file',
  'symlink',
  'blockdev',
  'chardev',
  'fifo',
  'socket',
];

/** The S_IF* bits of st_mode for each kind. */
export const S_IFMT: Readonly<Record<InodeKind, number>> = {
  dir: 0o040000,
  file: 0o100000,
  symlink: 0o120000,
  blockdev: 0o060000,
  chardev: 0o020000,
  fifo: 0o010000,
  socket: 0o140000,
};

/** The longest symlink target accepted (Linux allows 4095 bytes). */
export const MAX_SYMLINK = 65535;

interface InodeCommon {
  /** Inode reference: (metadata block offset in the inode table << 16) | offset in block. */
  ref: number;
  /** On-disk type id, 1..14. */
  type: number;
  /** Basic type id, 1..7 (what directory entries store). */
  basicType: number;
  extended: boolean;
  /** Permission bits (07777); the type bits come from kind. */
  permissions: number;
  uidIndex: number;
  gidIndex: number;
  mtime: number;
  /** Inode number, 1..inode count. */
  number: number;
  nlink: number;
  /** Index into the xattr table, or null. */
  xattrIndex: number | null;
}

export interface DirInode extends InodeCommon {
  kind: 'dir';
  /** Metadata block of the listing, relative to the directory table. */
  dirBlock: number;
  dirOffset: number;
  /** The stored "file size": listing bytes + 3. */
  listingSize: number;
  parent: number;
  indexCount: number;
}

export interface FileInode extends InodeCommon {
  kind: 'file';
  blocksStart: number;
  size: number;
  /** Bytes saved by sparse blocks (extended inodes only). */
  sparse: number;
  /** Fragment index, or null when the file has no tail in a fragment. */
  fragment: number | null;
  fragmentOffset: number;
  /** Number of full (or last partial) blocks stored outside fragments. */
  blockCount: number;
  /** Where the block size list starts in the inode table. */
  blockListBlock: number;
  blockListOffset: number;
}

export interface SymlinkInode extends InodeCommon {
  kind: 'symlink';
  target: Buffer;
}

export interface DeviceInode extends InodeCommon {
  kind: 'blockdev' | 'chardev';
  /** Device number as stored (Linux encoding). */
  rdev: number;
  major: number;
  minor: number;
}

export interface IpcInode extends InodeCommon {
  kind: 'fifo' | 'socket';
}

export type Inode = DirInode | FileInode | SymlinkInode | DeviceInode | IpcInode;

/** Bytes after the 16-byte header that every inode of a type has (symlinks: before the target). */
const FIXED_SIZE = [0, 16, 16, 8, 8, 8, 4, 4, 24, 40, 8, 12, 12, 8, 8];

/** Sequential reads of one inode's bytes from a decoded table. */
export interface InodeBytes {
  /** Where the next read starts. */
  readonly pos: number;
  read(n: number): Buffer;
}

/**
 * Parse the inode at the cursor. The cursor is left after the fixed part
 * (for files: at the block size list).
 */
export async function parseInode(
  cur: MetadataCursor,
  ref: number,
  blockSize: number,
  inodeCount: number,
): Promise<Inode> {
  const at = cur.block;
  const h = await cur.read(16);
  const type = checkHeader(h, ref, inodeCount, at);
  const b = await cur.read(FIXED_SIZE[type] ?? 0);
  let target: Buffer | undefined;
  let xattrWord: number | undefined;
  if (type === 3 || type === 10) {
    target = Buffer.from(await cur.read(symlinkLength(b, ref, at)));
    if (type === 10) xattrWord = (await cur.read(4)).readUInt32LE(0);
  }
  return assembleInode(h, b, type, ref, at, blockSize, target, xattrWord, cur.block, cur.offset);
}

/**
 * The same as parseInode over bytes already decoded: `at` is where the
 * inode's bytes start in buf. Returns the inode and where it ends (for
 * files: where the block size list starts).
 */
export function parseInodeSync(
  bytes: InodeBytes,
  ref: number,
  blockSize: number,
  inodeCount: number,
  tablePos: number,
): Inode {
  const h = bytes.read(16);
  const type = checkHeader(h, ref, inodeCount, tablePos);
  const b = bytes.read(FIXED_SIZE[type] ?? 0);
  let target: Buffer | undefined;
  let xattrWord: number | undefined;
  if (type === 3 || type === 10) {
    target = Buffer.from(bytes.read(symlinkLength(b, ref, tablePos)));
    if (type === 10) xattrWord = bytes.read(4).readUInt32LE(0);
  }
  // The block list position is reported as an offset into the decoded bytes.
  return assembleInode(h, b, type, ref, tablePos, blockSize, target, xattrWord, -1, bytes.pos);
}

function checkHeader(h: Buffer, ref: number, inodeCount: number, at: number): number {
  const type = h.readUInt16LE(0);
  if (type < 1 || type > 14) failInode(`unknown inode type ${type}`, ref, at);
  const number = h.readUInt32LE(12);
  if (number < 1 || number > inodeCount) {
    failInode(`inode number ${number} is outside 1..${inodeCount}`, ref, at);
  }
  return type;
}

function symlinkLength(b: Buffer, ref: number, at: number): number {
  const len = b.readUInt32LE(4);
  if (len > MAX_SYMLINK) failInode(`symlink target of ${len} bytes is too long`, ref, at);
  return len;
}

function failInode(msg: string, ref: number, at: number): never {
  throw new SquashfsFormatError('inode', `${msg} (inode reference 0x${ref.toString(16)})`, at);
}

function assembleInode(
  h: Buffer,
  b: Buffer,
  type: number,
  ref: number,
  at: number,
  blockSize: number,
  target: Buffer | undefined,
  xattrWord: number | undefined,
  listBlock: number,
  listOffset: number,
): Inode {
  const fail = (msg: string): never => failInode(msg, ref, at);
  const number = h.readUInt32LE(12);
  const basicType = type > 7 ? type - 7 : type;
  const extended = type > 7;
  // Only permission bits are stored; the type comes from the inode type.
  const permissions = h.readUInt16LE(2) & 0o7777;
  const uidIndex = h.readUInt16LE(4);
  const gidIndex = h.readUInt16LE(6);
  const mtime = h.readUInt32LE(8);
  const xattr = (v: number): number | null => (v === ABSENT_U32 ? null : v);

  switch (basicType) {
    case 1: {
      // Basic: block u32, nlink u32, size u16, offset u16, parent u32.
      // Extended: nlink u32, size u32, block u32, parent u32, index count u16, offset u16, xattr u32.
      const inode: DirInode = {
        kind: 'dir',
        ref,
        type,
        basicType,
        extended,
        permissions,
        uidIndex,
        gidIndex,
        mtime,
        number,
        nlink: b.readUInt32LE(extended ? 0 : 4),
        xattrIndex: extended ? xattr(b.readUInt32LE(20)) : null,
        dirBlock: b.readUInt32LE(extended ? 8 : 0),
        dirOffset: extended ? b.readUInt16LE(18) : b.readUInt16LE(10),
        listingSize: extended ? b.readUInt32LE(4) : b.readUInt16LE(8),
        parent: b.readUInt32LE(12),
        indexCount: extended ? b.readUInt16LE(16) : 0,
      };
      return inode;
    }
    case 2: {
      // Basic: start u32, fragment u32, offset u32, size u32.
      // Extended: start u64, size u64, sparse u64, nlink u32, fragment u32, offset u32, xattr u32.
      const size = extended ? readU64(b, 8, 'inode', at) : b.readUInt32LE(12);
      const fragment = b.readUInt32LE(extended ? 28 : 4);
      const fragmentOffset = b.readUInt32LE(extended ? 32 : 8);
      const hasFragment = fragment !== ABSENT_U32 && size % blockSize !== 0;
      if (hasFragment && fragmentOffset >= blockSize) {
        fail(`fragment offset ${fragmentOffset} is beyond the block size`);
      }
      const inode: FileInode = {
        kind: 'file',
        ref,
        type,
        basicType,
        extended,
        permissions,
        uidIndex,
        gidIndex,
        mtime,
        number,
        nlink: extended ? b.readUInt32LE(24) : 1,
        xattrIndex: extended ? xattr(b.readUInt32LE(36)) : null,
        blocksStart: extended ? readU64(b, 0, 'inode', at) : b.readUInt32LE(0),
        size,
        sparse: extended ? readU64(b, 16, 'inode', at) : 0,
        fragment: hasFragment ? fragment : null,
        fragmentOffset: hasFragment ? fragmentOffset : 0,
        blockCount: hasFragment ? Math.floor(size / blockSize) : Math.ceil(size / blockSize),
        blockListBlock: listBlock,
        blockListOffset: listOffset,
      };
      return inode;
    }
    case 3: {
      // nlink u32, target size u32, target, (extended) xattr u32.
      const inode: SymlinkInode = {
        kind: 'symlink',
        ref,
        type,
        basicType,
        extended,
        permissions,
        uidIndex,
        gidIndex,
        mtime,
        number,
        nlink: b.readUInt32LE(0),
        xattrIndex: extended ? xattr(xattrWord ?? ABSENT_U32) : null,
        target: target ?? Buffer.alloc(0),
      };
      return inode;
    }
    case 4:
    case 5: {
      // nlink u32, rdev u32, (extended) xattr u32.
      const rdev = b.readUInt32LE(4);
      const inode: DeviceInode = {
        kind: basicType === 4 ? 'blockdev' : 'chardev',
        ref,
        type,
        basicType,
        extended,
        permissions,
        uidIndex,
        gidIndex,
        mtime,
        number,
        nlink: b.readUInt32LE(0),
        xattrIndex: extended ? xattr(b.readUInt32LE(8)) : null,
        rdev,
        major: (rdev & 0xfff00) >>> 8,
        minor: (rdev & 0xff) | ((rdev >>> 12) & 0xfff00),
      };
      return inode;
    }
    default: {
      // fifo, socket: nlink u32, (extended) xattr u32.
      const inode: IpcInode = {
        kind: basicType === 6 ? 'fifo' : 'socket',
        ref,
        type,
        basicType,
        extended,
        permissions,
        uidIndex,
        gidIndex,
        mtime,
        number,
        nlink: b.readUInt32LE(0),
        xattrIndex: extended ? xattr(b.readUInt32LE(4)) : null,
      };
      return inode;
    }
  }
}
