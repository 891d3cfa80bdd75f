/**
 * The native packer (writeImage with a directory) against mksquashfs, as
 * any user: the same directory is packed by both, and both images, read
 * back with the native reader from memory (BufferOutput), must describe
 * the same tree: kinds, modes, owners, mtimes, sizes, link counts, targets,
 * device numbers, contents and xattrs. Hostile names, sparse and multi-block
 * files, hard links, every compressor the packer has; the same bytes on any
 * number of threads; a file that changes while it is read fails the pack.
 */
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildTree, setXattr, type Spec } from '../helpers/tree.js';
import {
  BufferOutput,
  SquashfsImage,
  SquashfsWriteError,
  writeImage,
  writeMergedImage,
  type CompressorName,
} from '../../src/squashfs/index.js';
import { listXattrs } from '../../src/squashfs/xattr-list.js';

const haveTools = ['mksquashfs', 'python3'].every(
  (c) => spawnSync(c, ['--version']).status !== null || spawnSync(c, ['-version']).status !== null,
);
const isRoot = process.geteuid?.() === 0;

function sh(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
}

async function tmp(t: TestContext): Promise<string> {
  const dir = await fsp.mkdtemp(join(tmpdir(), 'st-pack-'));
  t.after(() => fsp.rm(dir, { recursive: true, force: true }));
  return dir;
}

function mksquashfs(src: string, out: string, comp: string, extra: string[] = []): void {
  sh('mksquashfs', [src, out, '-comp', comp, '-noappend', '-quiet', '-no-progress', ...extra]);
}

/** Each entry of an image as one line: what mksquashfs and the packer must agree on (overlay bookkeeping aside). */
async function describeImage(bytes: Buffer, overlayXattrs = false): Promise<Map<string, string>> {
  const img = await SquashfsImage.fromBuffer(bytes);
  const out = new Map<string, string>();
  try {
    for await (const e of img.walk()) {
      const st = await img.stat(e.inode);
      const xattrs = st.xattrs
        .filter((x) => overlayXattrs || !x.name.toString('latin1').startsWith('trusted.overlay.'))
        .map((x) => `${x.name.toString('latin1')}=${x.value.toString('hex')}`)
        .sort()
        .join(',');
      let what = `${st.kind} ${st.permissions.toString(8)} ${st.uid}:${st.gid} ${st.mtime} n${st.nlink} [${xattrs}]`;
      if (e.inode.kind === 'file') {
        const data = await img.readFileAll(e.inode, 1 << 30);
        what += ` ${data.length} ${createHash('sha256').update(data).digest('hex').slice(0, 16)}`;
      } else if (st.target) what += ` -> ${st.target.toString('latin1')}`;
      else if (st.rdev) what += ` ${st.rdev.major}:${st.rdev.minor}`;
      out.set(e.path.toString('latin1'), what);
    }
  } finally {
    await img.close();
  }
  return out;
}

const BS = 131072;
const patterned = (n: number, seed: number): Buffer => {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed + (i >> 11)) % 251;
  return b;
};

/** Sparse and multi-block content: a zero block between data, sizes around the block size. */
const holes = Buffer.concat([patterned(BS, 1), Buffer.alloc(BS), patterned(BS / 2, 2)]);

function many(n: number): Spec {
  const out: Spec = {};
  for (let i = 0; i < n; i++) out[`entry-${String(i).padStart(5, '0')}`] = `entry ${i}\n`;
  return out;
}

const TREE: Spec = {
  empty: '',
  small: 'small\n',
  'bs-1': patterned(BS - 1, 3),
  bs: patterned(BS, 4),
  'bs+1': patterned(BS + 1, 5),
  holes,
  zeros: Buffer.alloc(3 * BS),
  sym: { symlink: 'small' },
  dangling: { symlink: '../nowhere/at/all' },
  longlink: { symlink: 'x'.repeat(1000) },
  fifo: { fifo: true },
  link1: 'three names\n',
  link2: { hardlink: 'link1' },
  'sub/link3': { hardlink: 'link1' },
  sub: { dir: { inner: { file: 'inner\n', mode: 0o600 } }, mode: 0o750 },
  'empty-dir': { dir: {} },
  exec: { file: '#!/bin/sh\n', mode: 0o4755 },
  // Hostile names: bytes that are not UTF-8, a newline, a leading dash, 255 bytes.
  'bin\xff\xfe\x01': 'binary name\n',
  'new\nline': 'newline\n',
  '-rf': 'dash\n',
  ['n'.repeat(255)]: 'long name\n',
  'sp ace': { dir: { 'é-utf8': 'utf-8 name\n' } },
  big: { dir: many(3000) },
  deep: { dir: { a: { dir: { b: { dir: { c: { dir: { d: 'deep\n' } } } } } } } },
};

async function makeTree(root: string): Promise<void> {
  // buildTree takes 'sub/link3' as a name: hard links into subdirs are made here.
  const spec = { ...TREE };
  delete spec['sub/link3'];
  await buildTree(root, spec);
  await fsp.link(join(root, 'link1'), join(root, 'sub', 'link3'));
  setXattr(join(root, 'small'), 'user.note', 'kept');
  setXattr(join(root, 'sub'), 'user.dir', 'on a dir');
  if (isRoot) {
    // user.* xattrs are for files and dirs only; trusted.* needs root.
    setXattr(join(root, 'sym'), 'trusted.link', 'on the symlink itself');
    // Overlay bookkeeping, which the packer leaves out (mksquashfs keeps it).
    setXattr(join(root, 'sub'), 'trusted.overlay.origin', 'x');
  }
  const mtime = new Date('2026-08-01T00:00:00Z');
  await fsp.utimes(join(root, 'small'), mtime, mtime);
}

async function pack(
  dir: string,
  comp: CompressorName,
  opts: { threads?: number; level?: number; blockSize?: number } = {},
): Promise<Buffer> {
  const out = new BufferOutput();
  const r = await writeImage([{ dir }], out, {
    keepWhiteouts: true,
    verify: true,
    compression: {
      name: comp,
      ...(opts.level !== undefined ? { level: opts.level } : {}),
      ...(opts.blockSize !== undefined ? { blockSize: opts.blockSize } : {}),
    },
    ...(opts.threads !== undefined ? { threads: opts.threads } : {}),
  });
  assert.ok(r.verified && r.verified.entries > 3000);
  return out.bytes;
}

describe(
  'squashfs packer: a directory packed natively',
  { skip: !haveTools && 'needs squashfs-tools and python3' },
  () => {
    for (const comp of ['gzip', 'lz4', 'zstd'] as const) {
      it(`reads back as mksquashfs's image of the same directory (${comp})`, async (t) => {
        const dir = await tmp(t);
        const src = join(dir, 'src');
        await makeTree(src);
        mksquashfs(src, join(dir, 'mk.sqfs'), comp);
        const mine = await pack(src, comp);
        const want = await describeImage(await fsp.readFile(join(dir, 'mk.sqfs')));
        assert.deepEqual(await describeImage(mine), want);
        const img = await SquashfsImage.fromBuffer(mine);
        try {
          assert.equal(img.superblock.compression, comp);
          const a = await img.lookup('link1');
          const b = await img.lookup('sub/link3');
          assert.equal(a.number, b.number, 'hard links are one inode');
          const h = await img.lookup('holes');
          assert.ok(h.kind === 'file' && h.sparse > 0, 'a zero block is stored as a hole');
        } finally {
          await img.close();
        }
      });
    }

    it('xz, with blocks of 64 KiB and of 128 KiB (two LZMA2 chunks each); lzo refused (mksquashfs then)', async (t) => {
      const dir = await tmp(t);
      const src = join(dir, 'src');
      await makeTree(src);
      for (const blockSize of [65536, 131072]) {
        mksquashfs(src, join(dir, `mk${blockSize}.sqfs`), 'xz', ['-b', String(blockSize)]);
        const mine = await pack(src, 'xz', { blockSize });
        assert.deepEqual(
          await describeImage(mine),
          await describeImage(await fsp.readFile(join(dir, `mk${blockSize}.sqfs`))),
        );
      }
      await assert.rejects(
        writeImage([{ dir: src }], new BufferOutput(), { compression: { name: 'lzo' } }),
        (e: unknown) => e instanceof SquashfsWriteError && e.code === 'unsupported',
      );
    });

    it('writes the same bytes on any number of threads, and the compressor level as mksquashfs records it', async (t) => {
      const dir = await tmp(t);
      const src = join(dir, 'src');
      await makeTree(src);
      // Enough data that worker threads are used when asked for.
      await fsp.writeFile(join(src, 'more'), patterned(5 << 20, 9));
      const inline = await pack(src, 'gzip', { threads: 0 });
      assert.ok(inline.equals(await pack(src, 'gzip', { threads: 2 })));
      assert.ok(inline.equals(await pack(src, 'gzip', { threads: 1 })));
      const six = await pack(src, 'gzip', { level: 6 });
      mksquashfs(src, join(dir, 'g6.sqfs'), 'gzip', ['-Xcompression-level', '6']);
      const img = await SquashfsImage.fromBuffer(six);
      const ref = await SquashfsImage.open(join(dir, 'g6.sqfs'));
      try {
        assert.deepEqual(
          (await img.compressorOptions())?.raw,
          (await ref.compressorOptions())?.raw,
        );
      } finally {
        await img.close();
        await ref.close();
      }
    });

    for (const change of ['shrinks', 'grows'] as const) {
      it(`a file that ${change} while it is packed fails the pack, naming it`, async (t) => {
        const dir = await tmp(t);
        const src = join(dir, 'src');
        await makeTree(src);
        const victim = join(src, change === 'shrinks' ? 'bs+1' : 'small');
        const out = join(dir, 'out.sqfs');
        // Held at a known step: after the scan and plan, before any file is read.
        const onPhase = (p: string): void => {
          if (p !== 'copy') return;
          spawnSync('sh', [
            '-c',
            change === 'shrinks' ? `truncate -s 1000 '${victim}'` : `echo more >> '${victim}'`,
          ]);
        };
        await assert.rejects(
          writeImage([{ dir: src }], out, { compression: { name: 'gzip' }, onPhase }),
          (e: unknown) =>
            e instanceof SquashfsWriteError &&
            e.code === 'input-changed' &&
            e.message.includes(victim) &&
            /changed size|shrank|grew/.test(e.message),
        );
        await assert.rejects(fsp.stat(out), { code: 'ENOENT' }, 'nothing is left behind');
      });
    }

    it('merges images below with a directory on top: whiteouts applied, blocks of unchanged files copied', async (t) => {
      const dir = await tmp(t);
      const base = join(dir, 'base');
      await makeTree(base);
      mksquashfs(base, join(dir, 'base.sqfs'), 'gzip');
      // The captured upper, in layer form: changes, additions, a whiteout (as any user: mknod 0/0).
      const up = join(dir, 'up');
      await buildTree(up, {
        small: 'rewritten\n',
        added: patterned(BS * 2 + 10, 7),
        big: { dir: { 'entry-00007': 'changed\n', 'entry-new': 'new\n' } },
      });
      sh('mknod', [join(up, 'sym'), 'c', '0', '0']);
      sh('mknod', [join(up, 'big', 'entry-00003'), 'c', '0', '0']);
      const out = new BufferOutput();
      const r = await writeImage([join(dir, 'base.sqfs'), { dir: up }], out, { verify: true });
      assert.ok(r.copiedBytes > 0 && r.packedFiles === 4, JSON.stringify(r));
      // The same through mksquashfs and the merge of images: the tree the overlay shows.
      mksquashfs(up, join(dir, 'up.sqfs'), 'gzip');
      const ref = new BufferOutput();
      await writeMergedImage([join(dir, 'base.sqfs'), join(dir, 'up.sqfs')], ref);
      const got = await describeImage(out.bytes);
      assert.deepEqual(got, await describeImage(ref.bytes));
      assert.equal(got.has('sym'), false);
      assert.equal(got.has('big/entry-00003'), false);
    });

    it('lists xattrs of names that are not UTF-8 and of binary attribute names (python3 fallback)', async (t) => {
      if (!isRoot) {
        t.skip('sets a trusted.* xattr: needs root');
        return;
      }
      const dir = await tmp(t);
      const odd = Buffer.concat([Buffer.from(dir), Buffer.from('/odd\xff', 'latin1')]);
      await fsp.writeFile(odd, 'x');
      const plain = join(dir, 'plain');
      await fsp.writeFile(plain, 'y');
      spawnSync('python3', [
        '-c',
        'import os,sys; p=bytes.fromhex(sys.argv[1]); os.setxattr(p, b"user.\\xffbin", b"\\x00\\x01"); os.setxattr(sys.argv[2], "trusted.overlay.opaque", b"y")',
        odd.toString('hex'),
        plain,
      ]);
      for (const native of [true, false]) {
        const [a, b] = await listXattrs([odd, Buffer.from(plain)], { native });
        assert.deepEqual(
          a?.map((x) => [x.name.toString('latin1'), x.value.toString('hex')]),
          [['user.\xffbin', '0001']],
        );
        assert.deepEqual(
          b?.map((x) => x.name.toString()),
          ['trusted.overlay.opaque'],
        );
      }
    });
  },
);
