/**
 * What inspect reports about an image and its entries (the data a handler
 * returns), and its text form: an ls -l style listing and a stat page.
 */
import { Buffer } from 'node:buffer';
import { displayPath } from '../../fs/paths.js';
import { SquashfsImage, type Inode, type Stat } from '../../squashfs/index.js';

export interface InspectXattr {
  /** Display form: UTF-8 where valid, other bytes escaped. */
  name: string;
  value: string;
  valueBase64: string;
}

export interface InspectEntry {
  /** Display form of the path (relative to the inspected PATH in listings). */
  path: string;
  /** The path's bytes, base64: exact even for names that are not UTF-8. */
  pathBase64: string;
  type: Stat['kind'];
  mode: number;
  modeString: string;
  uid: number;
  gid: number;
  size: number;
  /** Seconds since the epoch. */
  mtime: number;
  nlink: number;
  inode: number;
  target?: string;
  targetBase64?: string;
  rdev?: { major: number; minor: number };
  xattrs: InspectXattr[];
}

export interface InspectStatEntry extends InspectEntry {
  /** Regular files: how the data is stored. */
  storage?: {
    blocks: number;
    blocksStart: number;
    fragment: number | null;
    fragmentOffset: number;
    tailBytes: number;
    sparseBytes: number;
  };
  /** Directories: number of entries. */
  entries?: number;
  extendedInode: boolean;
}

export interface InspectImageInfo {
  compression: string;
  blockSize: number;
  inodes: number;
  fragments: number;
  ids: number;
  bytesUsed: number;
  created: string;
  flags: string[];
}

export interface InspectData {
  image: string;
  path: string;
  action: 'list' | 'stat' | 'cat';
  info: InspectImageInfo;
  /** list: one per entry (the entry itself when PATH is not a directory). */
  entries?: InspectEntry[];
  stat?: InspectStatEntry;
  /** cat: bytes written to stdout. */
  bytes?: number;
}

export const FLAG_NAMES: [number, string][] = [
  [0x0001, 'uncompressed-inodes'],
  [0x0002, 'uncompressed-data'],
  [0x0008, 'uncompressed-fragments'],
  [0x0010, 'no-fragments'],
  [0x0020, 'always-fragments'],
  [0x0040, 'duplicates-removed'],
  [0x0080, 'exportable'],
  [0x0100, 'uncompressed-xattrs'],
  [0x0200, 'no-xattrs'],
  [0x0400, 'compressor-options'],
  [0x0800, 'uncompressed-ids'],
];

export const TYPE_CHAR: Record<Stat['kind'], string> = {
  dir: 'd',
  file: '-',
  symlink: 'l',
  blockdev: 'b',
  chardev: 'c',
  fifo: 'p',
  socket: 's',
};

export const TYPE_NAME: Record<Stat['kind'], string> = {
  dir: 'directory',
  file: 'regular file',
  symlink: 'symbolic link',
  blockdev: 'block device',
  chardev: 'character device',
  fifo: 'fifo',
  socket: 'socket',
};

export function modeString(kind: Stat['kind'], perm: number): string {
  const rwx = (bits: number, special: boolean, lower: string, upper: string): string =>
    `${bits & 4 ? 'r' : '-'}${bits & 2 ? 'w' : '-'}${
      special ? (bits & 1 ? lower : upper) : bits & 1 ? 'x' : '-'
    }`;
  return (
    TYPE_CHAR[kind] +
    rwx((perm >> 6) & 7, (perm & 0o4000) !== 0, 's', 'S') +
    rwx((perm >> 3) & 7, (perm & 0o2000) !== 0, 's', 'S') +
    rwx(perm & 7, (perm & 0o1000) !== 0, 't', 'T')
  );
}

/** Bytes for display: UTF-8 where valid, everything else escaped (as in paths). */
export function show(b: Buffer): string {
  return displayPath(b.toString('latin1'));
}

export function entryOf(path: Buffer, inode: Inode, st: Stat): InspectEntry {
  const e: InspectEntry = {
    path: show(path),
    pathBase64: path.toString('base64'),
    type: st.kind,
    mode: st.mode,
    modeString: modeString(st.kind, st.permissions),
    uid: st.uid,
    gid: st.gid,
    size: st.size,
    mtime: st.mtime,
    nlink: st.nlink,
    inode: inode.number,
    xattrs: st.xattrs.map((x) => ({
      name: show(x.name),
      value: show(x.value),
      valueBase64: x.value.toString('base64'),
    })),
  };
  if (st.target) {
    e.target = show(st.target);
    e.targetBase64 = st.target.toString('base64');
  }
  if (st.rdev) e.rdev = st.rdev;
  return e;
}

export function imageInfo(img: SquashfsImage): InspectImageInfo {
  const sb = img.superblock;
  return {
    compression: sb.compression,
    blockSize: sb.blockSize,
    inodes: sb.inodeCount,
    fragments: sb.fragmentCount,
    ids: sb.idCount,
    bytesUsed: sb.bytesUsed,
    created: new Date(sb.modificationTime * 1000).toISOString(),
    flags: FLAG_NAMES.filter(([bit]) => sb.flags & bit).map(([, name]) => name),
  };
}

export function time(mtime: number): string {
  return new Date(mtime * 1000).toISOString().slice(0, 16).replace('T', ' ');
}

export function renderList(entries: InspectEntry[]): string {
  const sizeOf = (e: InspectEntry): string =>
    e.rdev ? `${e.rdev.major}, ${e.rdev.minor}` : String(e.size);
  const wLink = Math.max(0, ...entries.map((e) => String(e.nlink).length));
  const wOwner = Math.max(0, ...entries.map((e) => `${e.uid}/${e.gid}`.length));
  const wSize = Math.max(0, ...entries.map((e) => sizeOf(e).length));
  const lines: string[] = [];
  for (const e of entries) {
    lines.push(
      `${e.modeString} ${String(e.nlink).padStart(wLink)} ${`${e.uid}/${e.gid}`.padEnd(wOwner)} ${sizeOf(e).padStart(wSize)} ${time(e.mtime)} ${e.path}${e.target !== undefined ? ` -> ${e.target}` : ''}`,
    );
    for (const x of e.xattrs) lines.push(`    ${x.name}=${x.value}`);
  }
  return lines.join('\n');
}

export function renderStat(d: InspectData): string {
  const s = d.stat;
  if (!s) return '';
  const lines = [
    `  Path: ${s.path}`,
    `  Type: ${TYPE_NAME[s.type]}${s.extendedInode ? ' (extended inode)' : ''}`,
    `  Mode: ${(s.mode & 0o7777).toString(8).padStart(4, '0')} (${s.modeString})`,
    ` Owner: uid ${s.uid}, gid ${s.gid}`,
    `  Size: ${s.size}`,
    ` Links: ${s.nlink}`,
    ` Inode: ${s.inode}`,
    ` Mtime: ${new Date(s.mtime * 1000).toISOString()}`,
  ];
  if (s.target !== undefined) lines.push(`Target: ${s.target}`);
  if (s.rdev) lines.push(`Device: ${s.rdev.major}, ${s.rdev.minor}`);
  if (s.entries !== undefined) lines.push(`Entries: ${s.entries}`);
  if (s.storage) {
    const st = s.storage;
    lines.push(
      `Blocks: ${st.blocks}${st.blocks ? ` from byte ${st.blocksStart}` : ''}${
        st.fragment !== null
          ? `, tail of ${st.tailBytes} bytes in fragment ${st.fragment} at ${st.fragmentOffset}`
          : ''
      }${st.sparseBytes ? `, ${st.sparseBytes} sparse bytes` : ''}`,
    );
  }
  if (s.xattrs.length === 0) lines.push('Xattrs: none');
  else lines.push('Xattrs:', ...s.xattrs.map((x) => `    ${x.name}=${x.value}`));
  const i = d.info;
  lines.push(
    ` Image: ${d.image}: ${i.compression}, block size ${i.blockSize}, ${i.inodes} inodes, ${i.bytesUsed} bytes${
      i.flags.length ? ` [${i.flags.join(', ')}]` : ''
    }`,
  );
  return lines.join('\n');
}
