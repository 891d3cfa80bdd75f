/** What stat(2) would report for an inode, from the inode and the id table. */
import { SquashfsFormatError } from './errors.js';
import { S_IFMT, type Inode, type InodeKind } from './inode.js';
import type { Xattr } from './xattr-read.js';

export interface Stat {
  kind: InodeKind;
  /** st_mode: type bits | permissions. */
  mode: number;
  permissions: number;
  uid: number;
  gid: number;
  /** Seconds since the epoch. */
  mtime: number;
  /** Files: bytes; directories: the stored listing size; symlinks: target length; others 0. */
  size: number;
  nlink: number;
  inodeNumber: number;
  /** Devices only. */
  rdev?: { major: number; minor: number };
  /** Symlinks only. */
  target?: Buffer;
  xattrs: Xattr[];
}

/** An id table entry, or a format error naming the inode. */
export function idOf(
  ids: readonly number[],
  index: number,
  what: string,
  inode: Inode,
  inodeTableStart: number,
): number {
  const v = ids[index];
  if (v === undefined) {
    throw new SquashfsFormatError(
      'inode',
      `${what} index ${index} is outside the id table (${ids.length} ids) (inode ${inode.number})`,
      inodeTableStart + Math.floor(inode.ref / 65536),
    );
  }
  return v;
}

export function buildStat(
  inode: Inode,
  ids: readonly number[],
  xattrs: Xattr[],
  inodeTableStart: number,
): Stat {
  const st: Stat = {
    kind: inode.kind,
    mode: S_IFMT[inode.kind] | inode.permissions,
    permissions: inode.permissions,
    uid: idOf(ids, inode.uidIndex, 'uid', inode, inodeTableStart),
    gid: idOf(ids, inode.gidIndex, 'gid', inode, inodeTableStart),
    mtime: inode.mtime,
    size: 0,
    nlink: inode.nlink,
    inodeNumber: inode.number,
    xattrs,
  };
  switch (inode.kind) {
    case 'file':
      st.size = inode.size;
      break;
    case 'dir':
      st.size = inode.listingSize;
      break;
    case 'symlink':
      st.size = inode.target.length;
      st.target = inode.target;
      break;
    case 'blockdev':
    case 'chardev':
      st.rdev = { major: inode.major, minor: inode.minor };
      break;
    default:
      break;
  }
  return st;
}
