/**
 * What a tree looks like to the source filesystem, to the native reader and
 * to `unsquashfs -lln`, in one comparable form (squashfs-reader*.test.ts).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { SquashfsImage, type Inode } from '../../src/squashfs/index.js';
import { run, PY_XATTRS } from './awkward-tree.js';

export interface View {
  kind: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  size?: number;
  nlink: number;
  target?: string;
  rdev?: string;
  sha?: string;
  xattrs?: [string, string][];
}

export const KIND_OF_MODE: Record<number, string> = {
  0o040000: 'dir',
  0o100000: 'file',
  0o120000: 'symlink',
  0o060000: 'blockdev',
  0o020000: 'chardev',
  0o010000: 'fifo',
  0o140000: 'socket',
};

/** The source tree as the reader should see it; keys are paths as base64. */
export async function sourceView(root: string, withXattrs: boolean): Promise<Map<string, View>> {
  const xattrs = withXattrs
    ? (JSON.parse(run('python3', ['-c', PY_XATTRS, root]).toString()) as Record<
        string,
        [string, string][]
      >)
    : {};
  const out = new Map<string, View>();
  const visit = async (rel: Buffer): Promise<void> => {
    const abs = rel.length ? Buffer.concat([Buffer.from(`${root}/`), rel]) : Buffer.from(root);
    const st = await fsp.lstat(abs);
    const kind = KIND_OF_MODE[st.mode & 0o170000] ?? '?';
    const v: View = {
      kind,
      mode: st.mode,
      uid: st.uid,
      gid: st.gid,
      mtime: Math.floor(st.mtimeMs / 1000),
      nlink: st.nlink,
    };
    const key = rel.toString('base64');
    const xa = xattrs[key];
    if (xa) v.xattrs = xa;
    if (kind === 'file') {
      v.size = st.size;
      v.sha = createHash('sha256')
        .update(await fsp.readFile(abs))
        .digest('hex');
    }
    if (kind === 'symlink') v.target = (await fsp.readlink(abs, 'buffer')).toString('base64');
    if (kind === 'blockdev' || kind === 'chardev') {
      // Linux dev_t: major in bits 8..19 (and 32..), minor in 0..7 and 20..
      const major = Number((BigInt(st.rdev) >> 8n) & 0xfffn);
      const minor = Number((BigInt(st.rdev) & 0xffn) | ((BigInt(st.rdev) >> 12n) & 0xfff00n));
      v.rdev = `${major},${minor}`;
    }
    out.set(key, v);
    if (kind === 'dir') {
      for (const n of await fsp.readdir(abs, { encoding: 'buffer' })) {
        await visit(rel.length ? Buffer.concat([rel, Buffer.from('/'), n]) : n);
      }
    }
  };
  await visit(Buffer.alloc(0));
  return out;
}

export async function readerView(img: SquashfsImage): Promise<Map<string, View>> {
  const out = new Map<string, View>();
  const add = async (path: Buffer, inode: Inode): Promise<void> => {
    const st = await img.stat(inode);
    const v: View = {
      kind: st.kind,
      mode: st.mode,
      uid: st.uid,
      gid: st.gid,
      mtime: st.mtime,
      nlink: st.nlink,
    };
    if (st.xattrs.length) {
      v.xattrs = st.xattrs
        .map((x): [string, string] => [x.name.toString('base64'), x.value.toString('base64')])
        .sort((a, b) => Buffer.from(a[0], 'base64').compare(Buffer.from(b[0], 'base64')));
    }
    if (st.kind === 'file') {
      v.size = st.size;
      const h = createHash('sha256');
      let n = 0;
      for await (const chunk of img.readFile(inode)) {
        assert.ok(chunk.length <= img.superblock.blockSize, 'chunks are at most a block');
        h.update(chunk);
        n += chunk.length;
      }
      assert.equal(n, st.size, `read ${n} bytes of ${path.toString()}`);
      v.sha = h.digest('hex');
    }
    if (st.target) v.target = st.target.toString('base64');
    if (st.rdev) v.rdev = `${st.rdev.major},${st.rdev.minor}`;
    out.set(path.toString('base64'), v);
  };
  await add(Buffer.alloc(0), img.root);
  for await (const e of img.walk()) await add(e.path, e.inode);
  return out;
}

export function sortXattrs(v: View): View {
  if (!v.xattrs) return v;
  return {
    ...v,
    xattrs: [...v.xattrs].sort((a, b) =>
      Buffer.from(a[0], 'base64').compare(Buffer.from(b[0], 'base64')),
    ),
  };
}

export function assertSameView(actual: Map<string, View>, expected: Map<string, View>): void {
  const show = (k: string): string => JSON.stringify(Buffer.from(k, 'base64').toString('latin1'));
  const missing = [...expected.keys()].filter((k) => !actual.has(k)).map(show);
  const extra = [...actual.keys()].filter((k) => !expected.has(k)).map(show);
  assert.deepEqual({ missing, extra }, { missing: [], extra: [] });
  for (const [k, exp] of expected) {
    const act = actual.get(k);
    assert.deepEqual(act && sortXattrs(act), sortXattrs(exp), `entry ${show(k)}`);
  }
}

/**
 * unsquashfs -lln, parsed. A name with a newline breaks its line in two; the
 * first half looks like an entry, so the caller names those halves to drop.
 */
export function unsquashfsListing(image: string, broken: readonly string[] = []): string[] {
  const out = run('unsquashfs', ['-lln', '-d', '', image], { TZ: 'UTC' }).toString('latin1');
  const lines: string[] = [];
  const re = /^(\S{10}) (\d+)\/(\d+) +(\d+|\d+, *\d+) (\d{4}-\d\d-\d\d \d\d:\d\d) (.*)$/;
  for (const line of out.split('\n')) {
    const m = re.exec(line);
    if (!m) continue;
    const [, mode, uid, gid, size, date, rest] = m;
    if (broken.includes((rest ?? '').split(' -> ')[0] ?? '')) continue;
    lines.push([mode, `${uid}/${gid}`, (size ?? '').replace(/ /g, ''), date, rest].join(' '));
  }
  return lines.sort();
}

/** The reader's entries as unsquashfs -lln lines, and the first halves of names with newlines. */
export async function readerListing(
  img: SquashfsImage,
): Promise<{ lines: string[]; broken: string[] }> {
  const lines: string[] = [];
  const broken: string[] = [];
  const fmt = async (path: Buffer, inode: Inode): Promise<void> => {
    const st = await img.stat(inode);
    const text = `/${path.toString('latin1')}`;
    const target = st.target?.toString('latin1');
    if (text.includes('\n') || target?.includes('\n')) {
      broken.push(text.split('\n')[0] ?? '');
      return;
    }
    const chars: Record<string, string> = {
      dir: 'd',
      file: '-',
      symlink: 'l',
      blockdev: 'b',
      chardev: 'c',
      fifo: 'p',
      socket: 's',
    };
    const p = st.permissions;
    const trip = (b: number, special: boolean, s: string): string =>
      `${b & 4 ? 'r' : '-'}${b & 2 ? 'w' : '-'}${special ? (b & 1 ? s : s.toUpperCase()) : b & 1 ? 'x' : '-'}`;
    const mode =
      (chars[st.kind] ?? '?') +
      trip((p >> 6) & 7, (p & 0o4000) !== 0, 's') +
      trip((p >> 3) & 7, (p & 0o2000) !== 0, 's') +
      trip(p & 7, (p & 0o1000) !== 0, 't');
    // unsquashfs -lln splits a device number the pre-2.6 way (major = rdev >> 8,
    // minor = rdev & 0xff), which differs from Linux for minors above 255; the
    // comparison with the source tree checks the real major and minor.
    const size =
      inode.kind === 'blockdev' || inode.kind === 'chardev'
        ? `${inode.rdev >>> 8},${inode.rdev & 0xff}`
        : String(st.size);
    const date = new Date(st.mtime * 1000).toISOString().slice(0, 16).replace('T', ' ');
    const name = path.length ? text : '';
    lines.push(
      [mode, `${st.uid}/${st.gid}`, size, date, `${name}${target ? ` -> ${target}` : ''}`].join(
        ' ',
      ),
    );
  };
  await fmt(Buffer.alloc(0), img.root);
  for await (const e of img.walk()) await fmt(e.path, e.inode);
  return { lines: lines.sort(), broken };
}
