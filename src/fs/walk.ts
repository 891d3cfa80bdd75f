/**
 * Walk a directory tree without following symlinks and describe every entry
 * with lstat (bigint, so nanosecond times and 64-bit inode numbers are exact).
 */
import { lstatSync, readdirSync, readlinkSync, type BigIntStats } from 'node:fs';
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
  /** Bytes the file takes on its filesystem (st_blocks * 512): far below size for a sparse file. */
  allocated?: number;
  mtimeNs: bigint;
  ctimeNs: bigint;
  ino: bigint;
  /** Device: inode numbers repeat across the layers an overlay shows. */
  dev: bigint;
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

/**
 * Synchronous on purpose: per-call promise overhead made a walk of a warm
 * tree about ten times slower, and nothing else runs while we walk.
 */
export function describeSync(root: string, rel: string): Entry {
  const p = fsPath(root, rel);
  const st = lstatSync(p, { bigint: true });
  const type = entryType(st);
  const e: Entry = {
    path: rel,
    type,
    mode: Number(st.mode & 0o7777n),
    uid: Number(st.uid),
    gid: Number(st.gid),
    size: Number(st.size),
    allocated: Number(st.blocks) * 512,
    mtimeNs: st.mtimeNs,
    ctimeNs: st.ctimeNs,
    ino: st.ino,
    dev: st.dev,
    nlink: Number(st.nlink),
    rdev: Number(st.rdev),
  };
  if (type === 'symlink') e.target = readlinkSync(p, { encoding: 'buffer' }).toString('latin1');
  return e;
}

// eslint-disable-next-line @typescript-eslint/require-await -- async turns a throw into a rejection
export async function describe(root: string, rel: string): Promise<Entry> {
  return describeSync(root, rel);
}

export interface WalkOptions {
  /** Return true to leave a path (and everything below it) out. */
  skip?: (rel: string) => boolean;
  /** Start below root at this binary relative path; paths stay relative to root. */
  under?: string;
}

/** Every entry below root (or opts.under), parents before children, the start itself first. */
// eslint-disable-next-line @typescript-eslint/require-await -- async turns a throw into a rejection
export async function walk(root: string, opts: WalkOptions = {}): Promise<Entry[]> {
  return walkSync(root, opts);
}

export function walkSync(root: string, opts: WalkOptions = {}): Entry[] {
  const start = opts.under ?? '';
  const first = describeSync(root, start);
  const out: Entry[] = [first];
  const dirs: string[] = first.type === 'dir' ? [start] : [];
  while (dirs.length > 0) {
    const dir = dirs.pop() ?? '';
    const names = readdirSync(fsPath(root, dir), { encoding: 'buffer' });
    const rels = names
      .map((n) => joinRel(dir, n.toString('latin1')))
      .filter((r) => !opts.skip?.(r))
      .sort();
    for (const r of rels) {
      const e = describeSync(root, r);
      out.push(e);
      if (e.type === 'dir') dirs.push(e.path);
    }
  }
  return out;
}

export function byPath(entries: readonly Entry[]): Map<string, Entry> {
  return new Map(entries.map((e) => [e.path, e]));
}
