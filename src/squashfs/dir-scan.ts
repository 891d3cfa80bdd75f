/**
 * A directory to be packed, read once: every entry's lstat fields, names
 * as bytes (never decoded), symlink targets, and xattrs (xattr-list.ts).
 * Entries are kept in flat arrays in depth-first order, each directory's
 * children contiguous and sorted by name bytes, as the image will list
 * them. Synchronous calls: a scan is a batch of small syscalls, and a
 * promise per entry would cost more than the syscall.
 */
import { constants, lstatSync, readdirSync, readlinkSync, type Stats } from 'node:fs';
import { SquashfsWriteError } from './errors.js';
import type { InodeKind } from './inode.js';
import { listXattrs } from './xattr-list.js';
import type { Xattr } from './xattr-read.js';

export interface ScanEntry {
  name: Buffer;
  /** Its parent's index (-1 for the root). */
  parent: number;
  kind: InodeKind;
  permissions: number;
  uid: number;
  gid: number;
  /** Seconds since the epoch, as mksquashfs stores it (u32). */
  mtime: number;
  size: number;
  nlink: number;
  dev: number;
  ino: number;
  /** Devices: the kernel's major and minor. */
  major: number;
  minor: number;
  target: Buffer | null;
  /** Directories: their children, [first, first + count) of the entries. */
  first: number;
  count: number;
  xattrs: Xattr[];
}

export interface DirScan {
  /** The directory as given (absolute or relative to the working directory). */
  root: Buffer;
  entries: ScanEntry[];
  /** Bytes of regular files (each hard-linked file once). */
  fileBytes: number;
  /** The newest mtime of any entry (the image's time). */
  newest: number;
}

const SLASH = Buffer.from('/');
const OPAQUE = Buffer.from('trusted.overlay.opaque');

function kindOf(st: Stats): InodeKind | null {
  switch (st.mode & constants.S_IFMT) {
    case constants.S_IFDIR:
      return 'dir';
    case constants.S_IFREG:
      return 'file';
    case constants.S_IFLNK:
      return 'symlink';
    case constants.S_IFBLK:
      return 'blockdev';
    case constants.S_IFCHR:
      return 'chardev';
    case constants.S_IFIFO:
      return 'fifo';
    case constants.S_IFSOCK:
      return 'socket';
    default:
      return null;
  }
}

/** glibc's dev_t split: 12 bits of major over 20 of minor, with the high parts above bit 32. */
function splitDev(rdev: number): { major: number; minor: number } {
  const lo = rdev % 2 ** 32;
  const hi = Math.floor(rdev / 2 ** 32);
  return {
    major: ((lo >>> 8) & 0xfff) | ((hi & 0xfffff000) >>> 0),
    minor: (lo & 0xff) | ((lo >>> 12) & 0xfff00),
  };
}

function entryOf(name: Buffer, parent: number, st: Stats, path: Buffer): ScanEntry {
  const kind = kindOf(st);
  if (!kind) {
    throw new SquashfsWriteError(
      'unsupported',
      `${path.toString('latin1')}: a file of unknown type (mode 0${st.mode.toString(8)})`,
    );
  }
  const { major, minor } = splitDev(st.rdev);
  return {
    name,
    parent,
    kind,
    permissions: st.mode & 0o7777,
    uid: st.uid,
    gid: st.gid,
    // A u32 as mksquashfs keeps it (times before 1970 or past 2106 wrap).
    mtime: Math.floor(st.mtimeMs / 1000) >>> 0,
    size: kind === 'file' ? st.size : 0,
    nlink: st.nlink,
    dev: st.dev,
    ino: st.ino,
    major,
    minor,
    target: kind === 'symlink' ? readlinkSync(path, { encoding: 'buffer' }) : null,
    first: 0,
    count: 0,
    xattrs: [],
  };
}

/** The path of entry i below the root. */
export function pathOf(scan: DirScan, i: number): Buffer {
  const parts: Buffer[] = [];
  for (let k = i; k > 0; k = scan.entries[k]?.parent ?? 0) {
    const e = scan.entries[k];
    if (!e) break;
    parts.push(e.name, SLASH);
  }
  parts.push(scan.root);
  return Buffer.concat(parts.reverse());
}

function fail(path: Buffer, e: unknown): never {
  throw new SquashfsWriteError(
    'input-changed',
    `${path.toString('latin1')}: cannot be read (${(e as Error).message})`,
  );
}

/**
 * Read the directory `root` (which must be one, not a symlink to one).
 * Only the xattrs `keepXattr` keeps are read (and trusted.overlay.opaque,
 * which says what the directory hides).
 */
export async function scanDirectory(
  root: string | Buffer,
  keepXattr: (name: Buffer) => boolean = () => true,
): Promise<DirScan> {
  const base = Buffer.isBuffer(root) ? root : Buffer.from(root);
  let st: Stats;
  try {
    st = lstatSync(base);
  } catch (e) {
    fail(base, e);
  }
  if (!st.isDirectory()) {
    throw new SquashfsWriteError('unsupported', `${base.toString('latin1')} is not a directory`);
  }
  const entries: ScanEntry[] = [entryOf(Buffer.alloc(0), -1, st, base)];
  const scan: DirScan = { root: base, entries, fileBytes: 0, newest: entries[0]?.mtime ?? 0 };
  const paths: Buffer[] = [base];
  const seen = new Set<string>();
  // Depth first: a directory's children are appended when it is reached.
  const stack = [0];
  while (stack.length > 0) {
    const d = stack.pop() ?? 0;
    const dir = entries[d];
    const dpath = paths[d];
    if (!dir || !dpath) continue;
    let names: Buffer[];
    try {
      names = readdirSync(dpath, { encoding: 'buffer' });
    } catch (e) {
      fail(dpath, e);
    }
    names.sort((a, b) => Buffer.compare(a, b));
    dir.first = entries.length;
    dir.count = names.length;
    const dirs: number[] = [];
    for (const name of names) {
      const p = Buffer.concat([dpath, SLASH, name]);
      let cst: Stats;
      try {
        cst = lstatSync(p);
      } catch (e) {
        fail(p, e);
      }
      const e = entryOf(name, d, cst, p);
      const i = entries.length;
      entries.push(e);
      paths.push(p);
      if (e.mtime > scan.newest) scan.newest = e.mtime;
      if (e.kind === 'dir') dirs.push(i);
      else if (e.kind === 'file') {
        const key = `${e.dev}:${e.ino}`;
        if (e.nlink < 2 || !seen.has(key)) scan.fileBytes += e.size;
        if (e.nlink > 1) seen.add(key);
      }
    }
    // Reversed onto the stack, so the first subdirectory is read next.
    for (let k = dirs.length - 1; k >= 0; k--) stack.push(dirs[k] ?? 0);
  }
  const xattrs = await listXattrs(paths, { want: (n) => keepXattr(n) || n.equals(OPAQUE) });
  entries.forEach((e, i) => {
    e.xattrs = xattrs[i] ?? [];
  });
  return scan;
}
