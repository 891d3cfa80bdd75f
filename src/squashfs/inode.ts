/** Inodes: the common header and each of the 14 basic and extended types. */
import { SquashfsFormatError } from './errors.js';
import { InodeView, inodeFixedBytes } from './inode-view.js';
import { ABSENT_U32, type MetadataCursor } from './metadata.js';

export { InodeView, inodeFixedBytes, MAX_SYMLINK } from './inode-view.js';

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
  const h = Buffer.from(await cur.read(16));
  const type = h.readUInt16LE(0);
  // The view checks the type; an unknown one reads no fixed part here.
  const fixed = type >= 1 && type <= 14 ? inodeFixedBytes(type) - 16 : 0;
  const parts = [h, Buffer.from(await cur.read(fixed))];
  const view = new InodeView().load(Buffer.concat(parts), 0, blockSize, inodeCount, ref, at);
  let target: Buffer | undefined;
  if (view.basic === 3) {
    target = Buffer.from(await cur.read(view.targetLength));
    if (type === 10) view.xattr = xattrId((await cur.read(4)).readUInt32LE(0));
  }
  return toInode(view, ref, target, cur.block, cur.offset);
}

/**
 * The same over a decoded table: the inode at position `pos` of `data`.
 * The block list position is reported as an offset into the decoded bytes.
 */
export function parseInodeSync(
  data: Buffer,
  pos: number,
  ref: number,
  blockSize: number,
  inodeCount: number,
  tablePos: number,
): Inode {
  const view = new InodeView().load(data, pos, blockSize, inodeCount, ref, tablePos);
  let target: Buffer | undefined;
  if (view.basic === 3) {
    if (view.varPos + view.targetLength + (view.type === 10 ? 4 : 0) > data.length) {
      throw new SquashfsFormatError(
        'inode',
        `symlink target runs past the end of its table (inode reference 0x${ref.toString(16)})`,
        tablePos,
      );
    }
    target = Buffer.from(data.subarray(view.varPos, view.varPos + view.targetLength));
  }
  return toInode(view, ref, target, -1, view.varPos);
}

function xattrId(v: number): number {
  return v === ABSENT_U32 ? -1 : v;
}

/**
 * The fields every kind has, and its kind, in one fixed order. Kinds add
 * theirs with Object.assign rather than an object spread: a spread copies
 * the source's hidden class as it is, so inodes whose fields differ in
 * representation (a null or a number, small or large) each got a hidden
 * class of their own, about 600 bytes apiece, and every read of an inode
 * field went megamorphic.
 */
function commonFields<K extends InodeKind>(
  v: InodeView,
  ref: number,
  kind: K,
): InodeCommon & { kind: K } {
  return {
    ref,
    type: v.type,
    basicType: v.basic,
    extended: v.extended,
    permissions: v.permissions,
    uidIndex: v.uidIndex,
    gidIndex: v.gidIndex,
    mtime: v.mtime,
    number: v.number,
    nlink: v.nlink,
    xattrIndex: v.xattr < 0 ? null : v.xattr,
    kind,
  };
}

/** The inode object of a loaded view. */
export function toInode(
  v: InodeView,
  ref: number,
  target: Buffer | undefined,
  listBlock: number,
  listOffset: number,
): Inode {
  switch (v.basic) {
    case 1:
      return Object.assign(commonFields(v, ref, 'dir'), {
        dirBlock: v.dirBlock,
        dirOffset: v.dirOffset,
        listingSize: v.listingSize,
        parent: v.parent,
        indexCount: v.indexCount,
      });
    case 2:
      return Object.assign(commonFields(v, ref, 'file'), {
        blocksStart: v.start,
        size: v.size,
        sparse: v.sparse,
        fragment: v.fragment < 0 ? null : v.fragment,
        fragmentOffset: v.fragmentOffset,
        blockCount: v.blockCount,
        blockListBlock: listBlock,
        blockListOffset: listOffset,
      });
    case 3:
      return Object.assign(commonFields(v, ref, 'symlink'), {
        target: target ?? Buffer.alloc(0),
      });
    case 4:
    case 5:
      return Object.assign(commonFields(v, ref, v.basic === 4 ? 'blockdev' : 'chardev'), {
        rdev: v.rdev,
        major: (v.rdev & 0xfff00) >>> 8,
        minor: (v.rdev & 0xff) | ((v.rdev >>> 12) & 0xfff00),
      });
    default:
      return commonFields(v, ref, v.basic === 6 ? 'fifo' : 'socket');
  }
}
