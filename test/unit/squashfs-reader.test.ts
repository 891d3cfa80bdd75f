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
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  SquashfsFormatError,
  SquashfsImage,
  SquashfsPathError,
  SquashfsUnsupportedError,
} from '../../src/squashfs/index.js';
import { mksquashfs, buildTree } from '../helpers/awkward-tree.js';
import {
  type View,
  sourceView,
  readerView,
  assertSameView,
  unsquashfsListing,
  readerListing,
} from '../helpers/squashfs-views.js';

const isRoot = process.geteuid?.() === 0;

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
