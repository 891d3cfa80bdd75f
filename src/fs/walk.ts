/**
 * Walk a directory tree without following symlinks and describe every entry
 * with lstat (bigint, so nanosecond times and 64-bit inode numbers are exact).
 */
import { promises as fsp, type BigIntStats } from 'node:fs';
import { fsPath, joinRel } from './paths.js';

export type EntryType = 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket';

export interface Entry {
  /** Binary relative path ('' is the root). */
  path: string;
  type: EntryType;
  /** Permission bits including setuid/setgid/sticky. */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtimeNs: bigint;
  ctimeNs: bigint;
  ino: bigint;
  nlink: number;
  rdev: number;
  /** Binary symlink target. */
  target?: string;
}

export function entryType(st: BigIntStats): EntryType {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  return 'socket';
}

export async function describe(root: string, rel: string): Promise<Entry> {
  const p = fsPath(root, rel);
  const st = await fsp.lstat(p, { bigint: true });
  const type = entryType(st);
  const e: Entry = {
    path: rel,
    type,
    mode: Number(st.mode & 0o7777n),
    uid: Number(st.uid),
    gid: Number(st.gid),
    size: Number(st.size),
    mtimeNs: st.mtimeNs,
    ctimeNs: st.ctimeNs,
    ino: st.ino,
    nlink: Number(st.nlink),
    rdev: Number(st.rdev),
  };
  if (type === 'symlink') e.target = (await fsp.readlink(p, { encoding: 'buffer' })).toString('latin1');
  return e;
}

export interface WalkOptions {
  /** Return true to leave a path (and everything below it) out. */
  skip?: (rel: string) => boolean;
  /** Start below root at this binary relative path; paths stay relative to root. */
  under?: string;
}

/** Every entry below root (or opts.under), parents before children, the start itself first. */
export async function walk(root: string, opts: WalkOptions = {}): Promise<Entry[]> {
  const start = opts.under ?? '';
  const first = await describe(root, start);
  const out: Entry[] = [first];
  const dirs: string[] = first.type === 'dir' ? [start] : [];
  while (dirs.length > 0) {
    const dir = dirs.pop() ?? '';
    const names = await fsp.readdir(fsPath(root, dir), { encoding: 'buffer' });
    const rels = names
      .map((n) => joinRel(dir, n.toString('latin1')))
      .filter((r) => !opts.skip?.(r))
      .sort();
    // lstat a directory's entries concurrently: a 200k-file tree is mostly metadata waits.
    const entries = await Promise.all(rels.map((r) => describe(root, r)));
    for (const e of entries) {
      out.push(e);
      if (e.type === 'dir') dirs.push(e.path);
    }
  }
  return out;
}

export function byPath(entries: readonly Entry[]): Map<string, Entry> {
  return new Map(entries.map((e) => [e.path, e]));
}
