/**
 * Compare two trees entry by entry: type, permissions, owner, size, mtime
 * (seconds, as SquashFS stores it), symlink target, device number, hard-link
 * structure and, optionally, contents (byte for byte). Used to prove that a
 * new image holds exactly what it was built from before it is published.
 */
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { fsPath, displayPath } from '../fs/paths.js';
import { walk, byPath, type Entry } from '../fs/walk.js';
import { mapLimit } from '../fs/hash.js';

export interface Difference {
  path: string;
  what: string;
}

export interface CompareOptions {
  contents?: boolean;
  skip?: (rel: string) => boolean;
  /** Stop after this many differences. */
  limit?: number;
  /** Leave modification times out (for trees written at different moments). */
  ignoreMtime?: boolean;
  /**
   * Leave the hard-link check out: a live overlay with index=off reports
   * different inode numbers for links made to a copied-up lower file.
   */
  ignoreHardlinks?: boolean;
  /** Share of the content hashed so far, 0..1 (hashing is what takes the time). */
  onProgress?: (fraction: number) => void;
}

export interface CompareResult {
  differences: Difference[];
  entries: number;
  files: number;
  bytes: number;
}

function metaDiff(a: Entry, b: Entry, mtime: boolean): string | undefined {
  if (a.type !== b.type) return `type ${a.type} != ${b.type}`;
  if (a.mode !== b.mode) return `mode ${a.mode.toString(8)} != ${b.mode.toString(8)}`;
  if (a.uid !== b.uid || a.gid !== b.gid) return `owner ${a.uid}:${a.gid} != ${b.uid}:${b.gid}`;
  if (a.type === 'file' && a.size !== b.size) return `size ${a.size} != ${b.size}`;
  if (a.type === 'symlink' && a.target !== b.target) return 'symlink target differs';
  if ((a.type === 'char' || a.type === 'block') && a.rdev !== b.rdev)
    return 'device number differs';
  if (
    mtime &&
    a.path !== '' &&
    a.type !== 'dir' &&
    a.mtimeNs / 1_000_000_000n !== b.mtimeNs / 1_000_000_000n
  ) {
    return 'mtime differs';
  }
  return undefined;
}

const CHUNK = 1 << 20;

/** Fill `buf` from `pos` (a read may return less, on FUSE say); fewer bytes only at the end. */
async function readFull(fh: FileHandle, buf: Buffer, pos: number): Promise<number> {
  let got = 0;
  while (got < buf.length) {
    const { bytesRead } = await fh.read(buf, got, buf.length - got, pos + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got;
}

/**
 * Two files hold the same bytes: read side by side and compared, a MiB at
 * a time. Cheaper than hashing both (a memcmp, not two SHA-256 runs), and
 * it stops at the first difference.
 */
async function sameBytes(a: string | Buffer, b: string | Buffer): Promise<boolean> {
  const [fa, fb] = await Promise.all([fsp.open(a, 'r'), fsp.open(b, 'r')]);
  try {
    const ba = Buffer.allocUnsafe(CHUNK);
    const bb = Buffer.allocUnsafe(CHUNK);
    for (let pos = 0; ; pos += CHUNK) {
      const [na, nb] = await Promise.all([readFull(fa, ba, pos), readFull(fb, bb, pos)]);
      if (na !== nb || !ba.subarray(0, na).equals(bb.subarray(0, nb))) return false;
      if (na < CHUNK) return true;
    }
  } finally {
    await Promise.all([fa.close(), fb.close()]);
  }
}

export async function compareTrees(
  expectedRoot: string,
  actualRoot: string,
  opts: CompareOptions = {},
): Promise<CompareResult> {
  const limit = opts.limit ?? 20;
  const walkOpts = opts.skip ? { skip: opts.skip } : {};
  const [exp, act] = await Promise.all([walk(expectedRoot, walkOpts), walk(actualRoot, walkOpts)]);
  const actMap = byPath(act);
  const diffs: Difference[] = [];
  const add = (path: string, what: string): void => {
    if (diffs.length < limit) diffs.push({ path: displayPath(path), what });
  };
  const bothFiles: [Entry, Entry][] = [];
  let bytes = 0;
  let files = 0;
  for (const e of exp) {
    const a = actMap.get(e.path);
    if (!a) {
      add(e.path, 'missing');
      continue;
    }
    actMap.delete(e.path);
    const d = metaDiff(e, a, !opts.ignoreMtime);
    if (d) add(e.path, d);
    else if (e.type === 'file') bothFiles.push([e, a]);
    if (e.type !== 'dir') files++;
    if (e.type === 'file') bytes += e.size;
  }
  for (const extra of actMap.keys()) add(extra, 'unexpected');
  // Hard links: paths that share an inode in one tree must share one in the other.
  const groups = new Map<string, Entry[]>();
  for (const e of exp)
    if (e.type === 'file' && e.nlink > 1)
      groups.set(`${e.dev}:${e.ino}`, [...(groups.get(`${e.dev}:${e.ino}`) ?? []), e]);
  const actByPath = byPath(act);
  if (opts.ignoreHardlinks) groups.clear();
  for (const g of groups.values()) {
    const inos = new Set(
      g.map((e) => {
        const a = actByPath.get(e.path);
        return a ? `${a.dev}:${a.ino}` : undefined;
      }),
    );
    if (inos.size > 1) add(g[0]?.path ?? '', 'hard links not preserved');
  }
  if (opts.contents && diffs.length === 0) {
    const total = bothFiles.reduce((n, [e]) => n + e.size, 0);
    let done = 0;
    const bad = await mapLimit(bothFiles, 8, async ([e]) => {
      const same = await sameBytes(fsPath(expectedRoot, e.path), fsPath(actualRoot, e.path));
      done += e.size;
      if (total > 0) opts.onProgress?.(done / total);
      return same ? undefined : e.path;
    });
    for (const p of bad) if (p !== undefined) add(p, 'content differs');
  }
  opts.onProgress?.(1);
  return { differences: diffs, entries: exp.length, files, bytes };
}
