/**
 * Prove that a freshly built image holds exactly the dir it was built from,
 * read with the native reader (src/squashfs): no mount, no loop device, no
 * root. Every entry of the source must be in the image with the same type,
 * permissions, owner, size, mtime (seconds, as SquashFS stores it), symlink
 * target, device number and contents; hard links must stay links; nothing
 * else may be there. Contents are compared byte for byte as they stream out
 * of both, one block at a time. Node cannot read the source's xattrs, so the
 * caller says which dirs must be opaque, and which must not, where it knows.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { displayPath, fsPath } from '../fs/paths.js';
import { byPath, walkSync, type Entry, type EntryType } from '../fs/walk.js';
import type { Inode, InodeKind, SquashfsImage, Stat } from '../squashfs/index.js';
import type { CompareResult, Difference } from './compare.js';

export interface MatchOptions {
  /**
   * What the image must hold, when the caller has it already (a commit has
   * the upper's entries as they were copied): then only the contents are
   * read from the source dir, and the copy itself is checked too.
   */
  expected?: readonly Entry[];
  /** Leave these source paths (and what is below them) out on both sides. */
  skip?: (rel: string) => boolean;
  /** Stop after this many differences. */
  limit?: number;
  /** Dirs that must (true) or must not (false) carry trusted.overlay.opaque=y. */
  opaque?: ReadonlyMap<string, boolean>;
}

const TYPE_OF: Readonly<Record<InodeKind, EntryType>> = {
  dir: 'dir',
  file: 'file',
  symlink: 'symlink',
  blockdev: 'block',
  chardev: 'char',
  fifo: 'fifo',
  socket: 'socket',
};

const OPAQUE = Buffer.from('trusted.overlay.opaque');

/** glibc's dev_t layout, as lstat reports it. */
function splitDev(rdev: number): { major: number; minor: number } {
  const d = BigInt(rdev);
  return {
    major: Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn)),
    minor: Number((d & 0xffn) | ((d >> 12n) & ~0xffn)),
  };
}

/** How an image entry differs from the source entry it was made from (undefined: it does not). */
export function metaDiff(e: Entry, st: Stat): string | undefined {
  const type = TYPE_OF[st.kind];
  if (e.type !== type) return `type ${e.type} != ${type}`;
  if (e.mode !== st.permissions)
    return `mode ${e.mode.toString(8)} != ${st.permissions.toString(8)}`;
  if (e.uid !== st.uid || e.gid !== st.gid) return `owner ${e.uid}:${e.gid} != ${st.uid}:${st.gid}`;
  if (e.type === 'file' && e.size !== st.size) return `size ${e.size} != ${st.size}`;
  if (
    e.type === 'symlink' &&
    !Buffer.from(e.target ?? '', 'latin1').equals(st.target ?? Buffer.alloc(0))
  )
    return 'symlink target differs';
  if (e.type === 'char' || e.type === 'block') {
    const { major, minor } = splitDev(e.rdev);
    if (major !== st.rdev?.major || minor !== st.rdev.minor) return 'device number differs';
  }
  if (e.path !== '' && e.type !== 'dir' && e.mtimeNs / 1_000_000_000n !== BigInt(st.mtime))
    return 'mtime differs';
  return undefined;
}

/**
 * A source file of a MiB or more that allocates no block on its filesystem
 * is all holes: zeros, known without reading it (a sparse disk image of
 * 16 GiB costs a pass over the image's blocks, not 16 GiB of reads).
 */
function allHoles(e: Entry): boolean {
  return e.allocated === 0 && e.size >= 1 << 20;
}

/** An image file of zeros only, as many bytes as `size`. */
async function zerosOnly(img: SquashfsImage, inode: Inode, size: number): Promise<boolean> {
  let zero = Buffer.alloc(img.superblock.blockSize);
  let pos = 0;
  for await (const chunk of img.readFile(inode)) {
    if (chunk.length > zero.length) zero = Buffer.alloc(chunk.length);
    if (!chunk.equals(zero.subarray(0, chunk.length))) return false;
    pos += chunk.length;
  }
  return pos === size;
}

/** Whether a source file and an image file hold the same bytes (streamed, a block at a time). */
async function sameContents(
  img: SquashfsImage,
  inode: Inode,
  path: string | Buffer,
  scratch: Buffer,
): Promise<boolean> {
  const fd = openSync(path, 'r');
  try {
    let pos = 0;
    for await (const chunk of img.readFile(inode)) {
      const buf = chunk.length <= scratch.length ? scratch : Buffer.alloc(chunk.length);
      let got = 0;
      while (got < chunk.length) {
        const n = readSync(fd, buf, got, chunk.length - got, pos + got);
        if (n === 0) return false;
        got += n;
      }
      if (!buf.subarray(0, got).equals(chunk)) return false;
      pos += got;
    }
    // Nothing may follow in the source.
    return readSync(fd, scratch, 0, 1, pos) === 0;
  } finally {
    closeSync(fd);
  }
}

/** Compare an open image (the caller closes it) with the dir it was built from. */
export async function matchImage(
  img: SquashfsImage,
  sourceRoot: string,
  opts: MatchOptions = {},
): Promise<CompareResult> {
  const limit = opts.limit ?? 20;
  const source = opts.expected ?? walkSync(sourceRoot, opts.skip ? { skip: opts.skip } : {});
  const expected = byPath(source);
  const diffs: Difference[] = [];
  const add = (path: string, what: string): void => {
    if (diffs.length < limit) diffs.push({ path: displayPath(path), what });
  };
  let files = 0;
  let bytes = 0;
  // Hard links: source paths that share an inode must share one in the image.
  const links = new Map<string, number>();
  const scratch = Buffer.alloc(img.superblock.blockSize);
  const check = async (e: Entry, inode: Inode): Promise<void> => {
    const st = await img.stat(inode);
    const d = metaDiff(e, st);
    if (d) {
      add(e.path, d);
      return;
    }
    if (e.type !== 'dir') files++;
    if (e.type === 'dir') {
      const want = opts.opaque?.get(e.path);
      const has = st.xattrs.some((x) => x.name.equals(OPAQUE) && x.value.toString() === 'y');
      if (want !== undefined && want !== has)
        add(e.path, want ? 'opaque mark missing' : 'opaque mark unexpected');
    }
    if (e.type !== 'file') return;
    bytes += e.size;
    if (e.nlink > 1) {
      const key = `${e.dev}:${e.ino}`;
      const first = links.get(key);
      if (first === undefined) links.set(key, inode.number);
      else if (first !== inode.number) add(e.path, 'hard links not preserved');
    }
    const same = allHoles(e)
      ? await zerosOnly(img, inode, e.size)
      : await sameContents(img, inode, fsPath(sourceRoot, e.path), scratch);
    if (!same) add(e.path, 'content differs');
  };
  const root = expected.get('');
  if (root) {
    expected.delete('');
    await check(root, img.root);
  }
  // The walk is depth first: what lies below a skipped dir follows it.
  let skipped: string | null = null;
  for await (const w of img.walk()) {
    if (diffs.length >= limit) break;
    const rel = w.path.toString('latin1');
    if (skipped !== null && rel.startsWith(skipped)) continue;
    if (opts.skip?.(rel)) {
      skipped = `${rel}/`;
      continue;
    }
    const e = expected.get(rel);
    if (!e) {
      add(rel, 'unexpected');
      continue;
    }
    expected.delete(rel);
    await check(e, w.inode);
  }
  for (const p of expected.keys()) add(p, 'missing');
  return { differences: diffs, entries: source.length, files, bytes };
}
