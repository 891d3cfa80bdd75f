/**
 * The native SquashFS reader against mksquashfs: a tree of awkward content
 * (every inode type in basic and extended form, a directory of 400 entries,
 * sparse files, fragments, long symlinks, hard links, xattrs with
 * out-of-line values, names with spaces, newlines and non-UTF-8 bytes) is
 * packed with every compressor and layout option mksquashfs has here, and
 * what the reader sees is compared with the source tree (type, mode, owner,
 * mtime, size, nlink, rdev, symlink target, content hash, xattrs) and with
 * `unsquashfs -lln`. Needs root (device nodes, chown, trusted.* xattrs).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  SquashfsFormatError,
  SquashfsImage,
  SquashfsPathError,
  SquashfsUnsupportedError,
  type Inode,
} from '../../src/squashfs/index.js';
import { generateRepo } from '../../src/corpus/portage.js';

const isRoot = process.geteuid?.() === 0;

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Buffer {
  const r = spawnSync(cmd, args, {
    env: { ...process.env, ...env },
    maxBuffer: 1 << 30,
  });
  if (r.status !== 0) {
    throw new Error(
      `${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr.toString()}${r.error ? String(r.error) : ''}`,
    );
  }
  return r.stdout;
}

function mksquashfs(src: string, out: string, args: string[]): void {
  run('mksquashfs', [src, out, '-noappend', '-quiet', '-no-progress', ...args]);
}

/** Python builds what node:fs cannot: non-UTF-8 names, sockets, device nodes, xattrs. */
const PY_BUILD = String.raw`
import os, socket, stat, sys
root = os.fsencode(sys.argv[1])
def p(*parts): return os.path.join(root, *parts)
def write(path, data):
    with open(path, 'wb') as f: f.write(data)
def sock(path):
    s = socket.socket(socket.AF_UNIX); s.bind(path); s.close()

write(p(b'bad\xff\xfename'), b'not utf-8')
os.mkdir(p(b'dir\xc3('))
write(p(b'dir\xc3(', b'inner'), b'inner file')
write(p(b'new\nline'), b'newline in the name')
write(p(b'name with spaces'), b'spaces')
write(p('\u00fcn\u00efc\u00f8d\u00e9'.encode()), b'utf-8 name')
write(p(b'n' * 255), b'longest name')

os.mkdir(p(b'special'))
os.mknod(p(b'special', b'chr'), stat.S_IFCHR | 0o644, os.makedev(1, 3))
os.mknod(p(b'special', b'blk'), stat.S_IFBLK | 0o660, os.makedev(259, 70000))
os.mknod(p(b'special', b'chrx'), stat.S_IFCHR | 0o600, os.makedev(4, 64))
os.mknod(p(b'special', b'blkx'), stat.S_IFBLK | 0o600, os.makedev(8, 1))
os.mkfifo(p(b'special', b'fifo'))
os.mkfifo(p(b'special', b'fifox'))
sock(p(b'special', b'sock'))
sock(p(b'special', b'sockx'))
for n in (b'chrx', b'blkx', b'fifox', b'sockx'):
    os.setxattr(p(b'special', n), 'trusted.kind', n, follow_symlinks=False)

os.mkdir(p(b'xattrs'))
big = b'v' * 3000
for n in (b'xa', b'xb'):
    write(p(b'xattrs', n), n)
    os.setxattr(p(b'xattrs', n), 'user.bin', b'\xff\x00bin\n')
    os.setxattr(p(b'xattrs', n), 'user.big', big)
    os.setxattr(p(b'xattrs', n), 'user.empty', b'')
    os.setxattr(p(b'xattrs', n), 'trusted.t', b'trusted')
write(p(b'xattrs', b'many'), b'many')
for i in range(25):
    os.setxattr(p(b'xattrs', b'many'), 'user.k%02d' % i, (b'value%02d-' % i) * 10)
for i in range(4):
    write(p(b'xattrs', b'big%d' % i), b'big')
    os.setxattr(p(b'xattrs', b'big%d' % i), 'user.big', (b'%d' % i) * 3000)
os.setxattr(p(b'xattrs'), 'user.dir', b'on a directory')
os.symlink(b'xa', p(b'xattrs', b'lx'))
os.setxattr(p(b'xattrs', b'lx'), 'trusted.link', b'on a symlink', follow_symlinks=False)
`;

/** Every entry's xattrs, sorted, base64: { path: [[name, value], ...] }. */
const PY_XATTRS = String.raw`
import base64, json, os, sys
root = os.fsencode(sys.argv[1])
out = {}
def visit(rel):
    path = os.path.join(root, rel) if rel else root
    names = sorted(os.listxattr(path, follow_symlinks=False))
    if names:
        out[base64.b64encode(rel).decode()] = [
            [base64.b64encode(os.fsencode(n)).decode(),
             base64.b64encode(os.getxattr(path, n, follow_symlinks=False)).decode()]
            for n in names]
    if os.path.isdir(path) and not os.path.islink(path):
        for n in os.listdir(path):
            visit(os.path.join(rel, n) if rel else n)
visit(b'')
print(json.dumps(out))
`;

async function buildTree(root: string): Promise<void> {
  await fsp.mkdir(root, { recursive: true });
  const w = (rel: string, data: string | Buffer): Promise<void> =>
    fsp.writeFile(join(root, rel), data);
  await fsp.mkdir(join(root, 'a/b/c/d/e'), { recursive: true });
  await w('a/b/c/d/e/deep', 'deep file\n');
  await w('a/top', 'top\n');
  await fsp.mkdir(join(root, 'a/empty-dir'));
  // Empty files.
  for (const n of ['empty1', 'empty2', 'a/empty3']) await w(n, '');
  // Sizes around every block size used here.
  const rnd = (n: number, seed: number): Buffer => {
    const b = Buffer.alloc(n);
    let x = seed >>> 0 || 1;
    for (let i = 0; i < n; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      b[i] = x & 0xff;
    }
    return b;
  };
  await fsp.mkdir(join(root, 'sizes'));
  for (const size of [1, 4095, 4096, 4097, 8192, 131071, 131072, 131073, 1048576, 1048577]) {
    await w(`sizes/random-${size}`, rnd(size, size));
    await w(`sizes/text-${size}`, Buffer.alloc(size, `line of text ${size}\n`));
  }
  await w('sizes/random-3M', rnd(3 << 20, 7)); // incompressible: blocks stored uncompressed
  // Sparse: holes at the start, middle and end (truncate), and a wholly sparse file.
  const sparse = join(root, 'sparse');
  await fsp.mkdir(sparse);
  const fh = await fsp.open(join(sparse, 'holes'), 'w');
  await fh.write(Buffer.alloc(5000, 'data'), 0, 5000, 600_000);
  await fh.write(Buffer.alloc(100, 'more'), 0, 100, 1_500_000);
  await fh.truncate(2_500_000);
  await fh.close();
  run('truncate', ['-s', '3M', join(sparse, 'all-hole')]);
  // Many small files: fragments.
  await fsp.mkdir(join(root, 'small'));
  for (let i = 0; i < 200; i++) {
    await w(`small/f${String(i).padStart(3, '0')}`, rnd((i * 37) % 3000, i + 1));
  }
  // A directory of 400 entries with long names: several directory headers and
  // metadata blocks, an extended directory inode with an index.
  await fsp.mkdir(join(root, 'bigdir'));
  for (let i = 0; i < 400; i++) {
    const name = `entry-with-a-fairly-long-name-to-fill-blocks-${String(i).padStart(4, '0')}`;
    if (i % 50 === 0) await fsp.mkdir(join(root, 'bigdir', name));
    else await w(`bigdir/${name}`, `${i}\n`);
  }
  // Symlinks, short and long (4000 bytes), dangling and absolute.
  await fsp.symlink('a/top', join(root, 'link-short'));
  await fsp.symlink(`${'x/'.repeat(1999)}yy`, join(root, 'link-long'));
  await fsp.symlink('/nonexistent/target', join(root, 'link-abs'));
  // Hard links, within one directory and across directories.
  await w('hard1', 'hard linked\n');
  await fsp.link(join(root, 'hard1'), join(root, 'hard2'));
  await fsp.link(join(root, 'hard1'), join(root, 'a/hard3'));
  // Modes and owners.
  await w('setuid', '#!/bin/sh\n');
  await fsp.chmod(join(root, 'setuid'), 0o4755);
  await fsp.mkdir(join(root, 'sticky'));
  await fsp.chmod(join(root, 'sticky'), 0o1777);
  await fsp.mkdir(join(root, 'setgid'));
  await fsp.chmod(join(root, 'setgid'), 0o2750);
  await w('owned', 'owned\n');
  await fsp.chown(join(root, 'owned'), 1000, 1001);
  await fsp.chown(join(root, 'a/top'), 65534, 100);
  await fsp.chown(join(root, 'setgid'), 4000000000, 4000000001);
  await fsp.lchown(join(root, 'link-short'), 123, 456);
  await w('noperm', 'no permissions\n');
  await fsp.chmod(join(root, 'noperm'), 0);
  run('python3', ['-c', PY_BUILD, root]);
  // Fixed mtimes on a few entries (the rest keep the current time).
  await fsp.utimes(join(root, 'a/top'), 86400, 1_000_000_000);
  await fsp.lutimes(join(root, 'link-short'), 86400, 1_500_000_000);
}

interface View {
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

const KIND_OF_MODE: Record<number, string> = {
  0o040000: 'dir',
  0o100000: 'file',
  0o120000: 'symlink',
  0o060000: 'blockdev',
  0o020000: 'chardev',
  0o010000: 'fifo',
  0o140000: 'socket',
};

/** The source tree as the reader should see it; keys are paths as base64. */
async function sourceView(root: string, withXattrs: boolean): Promise<Map<string, View>> {
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

async function readerView(img: SquashfsImage): Promise<Map<string, View>> {
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

function sortXattrs(v: View): View {
  if (!v.xattrs) return v;
  return {
    ...v,
    xattrs: [...v.xattrs].sort((a, b) =>
      Buffer.from(a[0], 'base64').compare(Buffer.from(b[0], 'base64')),
    ),
  };
}

function assertSameView(actual: Map<string, View>, expected: Map<string, View>): void {
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
function unsquashfsListing(image: string, broken: readonly string[] = []): string[] {
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
async function readerListing(img: SquashfsImage): Promise<{ lines: string[]; broken: string[] }> {
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

const VARIANTS: { name: string; args: string[]; xattrs?: boolean }[] = [
  { name: 'gzip', args: [] },
  { name: 'xz', args: ['-comp', 'xz'] },
  { name: 'xz-bcj', args: ['-comp', 'xz', '-Xbcj', 'x86', '-Xdict-size', '50%'] },
  { name: 'lz4', args: ['-comp', 'lz4'] },
  { name: 'lz4-hc', args: ['-comp', 'lz4', '-Xhc'] },
  { name: 'zstd', args: ['-comp', 'zstd'] },
  { name: 'lzo', args: ['-comp', 'lzo'] },
  { name: 'lzo1x_1-4k', args: ['-comp', 'lzo', '-Xalgorithm', 'lzo1x_1', '-b', '4096'] },
  { name: 'gzip-4k', args: ['-b', '4096'] },
  { name: 'zstd-1M', args: ['-comp', 'zstd', '-b', '1M'] },
  { name: 'gzip-no-fragments', args: ['-no-fragments'] },
  { name: 'gzip-always-fragments', args: ['-always-use-fragments', '-tailends'] },
  {
    name: 'uncompressed-no-exports',
    args: ['-noI', '-noD', '-noF', '-noX', '-no-exports', '-b', '8192'],
  },
  { name: 'lz4-no-xattrs', args: ['-comp', 'lz4', '-no-xattrs'], xattrs: false },
  { name: 'gzip-no-duplicates', args: ['-no-duplicates', '-no-sparse'] },
];

describe('squashfs reader vs mksquashfs', { skip: !isRoot && 'needs root' }, () => {
  let dir = '';
  let src = '';
  let expected = new Map<string, View>();
  let expectedNoXattrs = new Map<string, View>();

  before(async () => {
    dir = await fsp.mkdtemp(join(tmpdir(), 'squashfs-reader-'));
    src = join(dir, 'src');
    await buildTree(src);
    expected = await sourceView(src, true);
    expectedNoXattrs = await sourceView(src, false);
  });
  after(async () => {
    if (dir) await fsp.rm(dir, { recursive: true, force: true });
  });

  for (const v of VARIANTS) {
    it(`reads every entry of a ${v.name} image as the source has it`, async () => {
      const image = join(dir, `${v.name}.sqfs`);
      mksquashfs(src, image, v.args);
      const img = await SquashfsImage.open(image);
      try {
        assertSameView(await readerView(img), v.xattrs === false ? expectedNoXattrs : expected);
        const mine = await readerListing(img);
        assert.deepEqual(mine.lines, unsquashfsListing(image, mine.broken));
      } finally {
        await img.close();
      }
      await fsp.rm(image);
    });
  }

  it('meets every inode type, basic and extended, and the structures around them', async () => {
    const image = join(dir, 'types.sqfs');
    mksquashfs(src, image, ['-b', '4096']);
    const img = await SquashfsImage.open(image);
    try {
      const types = new Set<number>([img.root.type]);
      let multiHeader = false;
      for await (const e of img.walk()) {
        types.add(e.inode.type);
        if (e.inode.kind === 'dir' && e.inode.indexCount > 0) multiHeader = true;
      }
      assert.deepEqual(
        [...types].sort((a, b) => a - b),
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14],
      );
      assert.ok(multiHeader, 'the 400-entry directory has a directory index');
      const big = await img.lookup('bigdir');
      assert.equal(big.kind, 'dir');
      if (big.kind === 'dir') {
        assert.equal(big.extended, true);
        assert.equal((await img.readdir(big)).length, 400);
      }
      assert.equal(img.superblock.blockSize, 4096);
      assert.equal(img.superblock.compression, 'gzip');
      assert.ok(img.superblock.fragmentCount > 0);
      const opts = await img.compressorOptions();
      assert.equal(opts, null, 'gzip with default options stores none');
    } finally {
      await img.close();
    }
  });

  it('looks up paths: nested, non-UTF-8, dot-dot, missing, through a file', async () => {
    const image = join(dir, 'lookup.sqfs');
    mksquashfs(src, image, []);
    const img = await SquashfsImage.open(image);
    try {
      const deep = await img.lookup('/a/b/c/d/e/deep');
      assert.equal((await img.readFileAll(deep)).toString(), 'deep file\n');
      assert.equal((await img.lookup('a/./b/../top')).kind, 'file');
      assert.equal((await img.lookup('/../..')).ref, img.root.ref);
      assert.equal((await img.lookup('')).ref, img.root.ref);
      const bad = await img.lookup(Buffer.from('bad\xff\xfename', 'latin1'));
      assert.equal((await img.readFileAll(bad)).toString(), 'not utf-8');
      const nl = await img.lookup('new\nline');
      assert.equal((await img.readFileAll(nl)).toString(), 'newline in the name');
      assert.equal((await img.lookup('\u00fcn\u00efc\u00f8d\u00e9')).kind, 'file');
      const link = await img.lookup('link-long');
      assert.equal(link.kind, 'symlink');
      if (link.kind === 'symlink') assert.equal(link.target.length, 4000);
      await assert.rejects(
        img.lookup('/a/missing'),
        (e) => e instanceof SquashfsPathError && e.code === 'ENOENT',
      );
      await assert.rejects(
        img.lookup('/a/top/x'),
        (e) => e instanceof SquashfsPathError && e.code === 'ENOTDIR',
      );
      const collect = async (gen: AsyncIterable<Buffer>): Promise<number> => {
        let n = 0;
        for await (const c of gen) n += c.length;
        return n;
      };
      await assert.rejects(
        collect(img.readFile(img.root)),
        (e) => e instanceof SquashfsPathError && e.code === 'EISDIR',
      );
      // The export table maps inode numbers to inodes.
      const byNumber = await img.inodeByNumber(deep.number);
      assert.equal(byNumber?.ref, deep.ref);
      await assert.rejects(img.inodeByNumber(img.superblock.inodeCount + 1), SquashfsFormatError);
      const hard = await img.stat(await img.lookup('a/hard3'));
      assert.equal(hard.nlink, 3);
    } finally {
      await img.close();
    }
    const noExport = join(dir, 'noexport.sqfs');
    mksquashfs(src, noExport, ['-no-exports']);
    const img2 = await SquashfsImage.open(noExport);
    try {
      assert.equal(img2.superblock.exportTableStart, null);
      assert.equal(await img2.inodeByNumber(1), null);
    } finally {
      await img2.close();
    }
  });

  it('streams a large file block by block', async () => {
    const image = join(dir, 'stream.sqfs');
    mksquashfs(src, image, ['-b', '65536']);
    const img = await SquashfsImage.open(image);
    try {
      const inode = await img.lookup('sizes/random-3M');
      let chunks = 0;
      let bytes = 0;
      for await (const c of img.readFile(inode)) {
        chunks++;
        bytes += c.length;
        assert.equal(c.length, 65536);
      }
      assert.equal(bytes, 3 << 20);
      assert.equal(chunks, 48);
      const st = await img.stat(await img.lookup('sparse/holes'));
      assert.equal(st.size, 2_500_000);
      const holes = await img.lookup('sparse/holes');
      assert.equal(holes.kind === 'file' && holes.sparse > 0, true, 'sparse bytes are counted');
    } finally {
      await img.close();
    }
  });

  // lzo is read since the LZO1X decoder (test/e2e/lzo.test.ts); lzma, which Linux cannot read, is not.
  for (const comp of ['lzma']) {
    it(`says ${comp} compression is unsupported, with a typed error`, async () => {
      const image = join(dir, `${comp}.sqfs`);
      mksquashfs(src, image, ['-comp', comp]);
      await assert.rejects(
        SquashfsImage.open(image),
        (e) =>
          e instanceof SquashfsUnsupportedError &&
          e instanceof SquashfsFormatError &&
          e.feature === `${comp} compression`,
      );
      // Everything stored uncompressed is still readable.
      const plain = join(dir, `${comp}-plain.sqfs`);
      mksquashfs(src, plain, ['-comp', comp, '-noI', '-noD', '-noF', '-noX']);
      const img = await SquashfsImage.open(plain);
      try {
        assert.equal(img.superblock.compression, comp);
        assertSameView(await readerView(img), expected);
      } finally {
        await img.close();
      }
    });
  }
});

describe('squashfs reader: damaged images', () => {
  let dir = '';
  let good = Buffer.alloc(0);
  before(async () => {
    dir = await fsp.mkdtemp(join(tmpdir(), 'squashfs-damaged-'));
    await fsp.mkdir(join(dir, 'src/sub'), { recursive: true });
    await fsp.writeFile(join(dir, 'src/sub/file'), 'content\n'.repeat(1000));
    mksquashfs(join(dir, 'src'), join(dir, 'i.sqfs'), []);
    good = await fsp.readFile(join(dir, 'i.sqfs'));
  });
  after(async () => {
    if (dir) await fsp.rm(dir, { recursive: true, force: true });
  });

  const expectFormat = async (buf: Buffer, structure: string, re: RegExp): Promise<void> => {
    await assert.rejects(
      SquashfsImage.fromBuffer(buf),
      (e) => e instanceof SquashfsFormatError && e.structure === structure && re.test(e.message),
    );
  };

  it('rejects a bad magic, version, block size and compressor', async () => {
    const b = Buffer.from(good);
    b.writeUInt32LE(0x12345678, 0);
    await expectFormat(b, 'superblock', /bad magic/);
    const v = Buffer.from(good);
    v.writeUInt16LE(3, 28);
    await expectFormat(v, 'superblock', /version 3\.0/);
    const s = Buffer.from(good);
    s.writeUInt32LE(3000, 12);
    await expectFormat(s, 'superblock', /block size/);
    const c = Buffer.from(good);
    c.writeUInt16LE(9, 20);
    await expectFormat(c, 'superblock', /unknown compressor id 9/);
    await expectFormat(good.subarray(0, 50), 'superblock', /smaller than a superblock/);
  });

  it('rejects a truncated image with its offset', async () => {
    await assert.rejects(
      SquashfsImage.fromBuffer(good.subarray(0, 200)),
      (e) => e instanceof SquashfsFormatError && /truncated/.test(e.message) && e.offset === 0,
    );
    const file = join(dir, 'trunc.sqfs');
    await fsp.writeFile(file, good.subarray(0, good.readUInt32LE(40) - 10));
    await assert.rejects(SquashfsImage.open(file), SquashfsFormatError);
  });

  it('rejects a root inode reference outside the inode table', async () => {
    const b = Buffer.from(good);
    b.writeBigUInt64LE(0xffffn << 16n, 32);
    await expectFormat(b, 'superblock', /root inode reference/);
  });

  it('closes the file handle when open fails, and after close', async () => {
    const file = join(dir, 'bad.sqfs');
    await fsp.writeFile(file, Buffer.alloc(4096));
    await assert.rejects(SquashfsImage.open(file), SquashfsFormatError);
    const img = await SquashfsImage.open(join(dir, 'i.sqfs'));
    await img.close();
    await img.close();
    await assert.rejects(img.lookup('/sub'), /closed/);
  });
});

describe('squashfs reader: a 13k-file portage tree', { skip: !isRoot && 'needs root' }, () => {
  let dir = '';
  after(async () => {
    if (dir) await fsp.rm(dir, { recursive: true, force: true });
  });

  it('lists it as unsquashfs does, and reports both timings', async (t) => {
    dir = await fsp.mkdtemp(join(tmpdir(), 'squashfs-portage-'));
    const src = join(dir, 'repo');
    const stats = await generateRepo(src, { categories: 40, packagesPerCategory: 50, seed: 7 });
    const image = join(dir, 'repo.sqfs');
    mksquashfs(src, image, ['-comp', 'zstd']);

    let t0 = performance.now();
    const expected = unsquashfsListing(image);
    const unsquashfsMs = performance.now() - t0;

    // Cold (first open in this process) and warm: walk the tree and stat every entry.
    const walk = async (): Promise<[number, number]> => {
      const start = performance.now();
      const img = await SquashfsImage.open(image);
      let n = 0;
      try {
        for await (const e of img.walk()) {
          await img.stat(e.inode);
          n++;
        }
      } finally {
        await img.close();
      }
      return [n, performance.now() - start];
    };
    const [entries, walkMs] = await walk();
    const [, warmMs] = await walk();

    t0 = performance.now();
    const img2 = await SquashfsImage.open(image);
    let bytes = 0;
    try {
      for await (const e of img2.walk()) {
        if (e.inode.kind === 'file')
          for await (const c of img2.readFile(e.inode)) bytes += c.length;
      }
    } finally {
      await img2.close();
    }
    const readMs = performance.now() - t0;
    const img3 = await SquashfsImage.open(image);
    let actual: string[];
    try {
      actual = (await readerListing(img3)).lines;
    } finally {
      await img3.close();
    }

    assert.ok(stats.files > 12000, `${stats.files} files`);
    assert.equal(entries + 1, expected.length);
    assert.deepEqual(actual, expected);
    assert.equal(bytes, stats.bytes);
    const msg = `${entries} entries: reader walk+stat ${walkMs.toFixed(0)} ms cold, ${warmMs.toFixed(0)} ms warm; unsquashfs -lln ${unsquashfsMs.toFixed(0)} ms; reader reading all ${stats.files} files (${bytes} bytes) ${readMs.toFixed(0)} ms`;
    t.diagnostic(msg);
  });
});
