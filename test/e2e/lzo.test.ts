/**
 * lzo images end to end. The native reader against the kernel: mksquashfs
 * packs one tree (a generated portage tree, incompressible, half-compressible
 * and long-period data, symlinks, hard links) with every LZO algorithm it
 * offers, small and large blocks, and what the reader lists and reads must
 * equal what the kernel's mount of the same image shows (type, mode, owner,
 * mtime, size, links, target, content hash); the real GURU corpus once. Then
 * the tool: inspect as nobody, and a tree configured for lzo whose commit,
 * compact (by the native writer) and verify (by the reader) need no mount.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Random } from '../../src/corpus/random.js';
import { generateRepo } from '../../src/corpus/portage.js';
import { SquashfsImage } from '../../src/squashfs/index.js';
import { isRoot, needRoot, unmountAllBelow } from '../helpers/env.js';
import { asNobody } from '../helpers/cli.js';
import { CORPUS } from '../helpers/portage.js';
import { initTree, parseJson } from '../helpers/setup.js';
import { assertSameTree } from '../helpers/tree.js';

function mksquashfs(src: string, out: string, args: readonly string[]): void {
  execFileSync('mksquashfs', [src, out, '-noappend', '-quiet', '-no-progress', ...args]);
}

const KIND: Record<string, string> = {
  file: 'file',
  dir: 'dir',
  symlink: 'symlink',
  blockdev: 'blockdev',
  chardev: 'chardev',
  fifo: 'fifo',
  socket: 'socket',
};

/** path -> one line describing the entry, as the kernel's mount shows it. */
async function kernelView(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const visit = async (rel: string): Promise<void> => {
    for (const name of (await fsp.readdir(join(root, rel))).sort()) {
      const path = rel ? `${rel}/${name}` : name;
      const abs = join(root, path);
      const st = await fsp.lstat(abs);
      const kind = st.isFile()
        ? 'file'
        : st.isDirectory()
          ? 'dir'
          : st.isSymbolicLink()
            ? 'symlink'
            : st.isFIFO()
              ? 'fifo'
              : 'other';
      let what = '';
      if (kind === 'file')
        what = createHash('sha256')
          .update(await fsp.readFile(abs))
          .digest('hex');
      if (kind === 'symlink') what = await fsp.readlink(abs);
      const size = kind === 'dir' ? '-' : String(st.size);
      const links = kind === 'dir' ? '-' : String(st.nlink);
      out.set(
        path,
        `${kind} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${Math.floor(st.mtimeMs / 1000)} ${size} ${links} ${what}`,
      );
      if (kind === 'dir') await visit(path);
    }
  };
  await visit('');
  return out;
}

/** The same lines, from the native reader. */
async function readerView(image: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const img = await SquashfsImage.open(image);
  try {
    for await (const e of img.walk()) {
      const st = await img.stat(e.inode);
      const kind = KIND[st.kind] ?? 'other';
      let what = '';
      if (kind === 'file') {
        const h = createHash('sha256');
        for await (const c of img.readFile(e.inode)) h.update(c);
        what = h.digest('hex');
      }
      if (kind === 'symlink') what = st.target?.toString() ?? '';
      const size = kind === 'dir' ? '-' : String(st.size);
      const links = kind === 'dir' ? '-' : String(st.nlink);
      out.set(
        e.path.toString(),
        `${kind} ${st.permissions.toString(8)} ${st.uid}:${st.gid} ${st.mtime} ${size} ${links} ${what}`,
      );
    }
  } finally {
    await img.close();
  }
  return out;
}

/** The image mounted by the kernel (loop, read-only) and read by the reader must agree. */
async function assertReaderMatchesKernel(image: string, mnt: string): Promise<number> {
  await fsp.mkdir(mnt, { recursive: true });
  execFileSync('mount', ['-t', 'squashfs', '-o', 'loop,ro', image, mnt]);
  let kernel: Map<string, string>;
  try {
    kernel = await kernelView(mnt);
  } finally {
    execFileSync('umount', [mnt]);
  }
  const mine = await readerView(image);
  const diff = [...new Set([...kernel.keys(), ...mine.keys()])]
    .filter((p) => kernel.get(p) !== mine.get(p))
    .slice(0, 5)
    .map(
      (p) => `${p}:\n  kernel ${kernel.get(p) ?? 'absent'}\n  reader ${mine.get(p) ?? 'absent'}`,
    );
  assert.deepEqual(diff, [], `${image}: the reader and the kernel differ`);
  return kernel.size;
}

/** Counts of compressed and stored metadata blocks in the inode table. */
async function inodeBlocks(image: string): Promise<{ compressed: number; stored: number }> {
  const img = await SquashfsImage.open(image);
  const n = { compressed: 0, stored: 0 };
  try {
    const sb = img.superblock;
    for (let pos = sb.inodeTableStart; pos < sb.directoryTableStart;) {
      const h = (await img.readRaw(pos, 2)).readUInt16LE(0);
      if (h & 0x8000) n.stored++;
      else n.compressed++;
      pos += 2 + (h & 0x7fff);
    }
  } finally {
    await img.close();
  }
  return n;
}

const VARIANTS: { name: string; args: string[] }[] = [
  { name: 'lzo1x_999 (the default)', args: [] },
  { name: 'lzo1x_999 level 1', args: ['-Xcompression-level', '1'] },
  { name: 'lzo1x_999 level 9', args: ['-Xcompression-level', '9'] },
  { name: 'lzo1x_1', args: ['-Xalgorithm', 'lzo1x_1'] },
  { name: 'lzo1x_1_11', args: ['-Xalgorithm', 'lzo1x_1_11'] },
  { name: 'lzo1x_1_12', args: ['-Xalgorithm', 'lzo1x_1_12'] },
  { name: 'lzo1x_1_15', args: ['-Xalgorithm', 'lzo1x_1_15'] },
  { name: 'lzo1x_1, 4 KiB blocks', args: ['-Xalgorithm', 'lzo1x_1', '-b', '4K'] },
  { name: 'lzo1x_999, 4 KiB blocks', args: ['-b', '4K'] },
  { name: 'lzo1x_1, 1 MiB blocks', args: ['-Xalgorithm', 'lzo1x_1', '-b', '1M'] },
  { name: 'lzo1x_999, 1 MiB blocks, no fragments', args: ['-b', '1M', '-no-fragments'] },
];

describe(
  'lzo images: the native reader against the kernel',
  { skip: !isRoot && 'needs root' },
  () => {
    let dir = '';
    let src = '';
    let sourceBytes = 0;

    before(async () => {
      dir = await fsp.mkdtemp(join(tmpdir(), 'st-test-lzo-'));
      src = join(dir, 'src');
      sourceBytes += (await generateRepo(src, { categories: 6, packagesPerCategory: 20, seed: 16 }))
        .bytes;
      const r = new Random(17);
      const noise = (n: number): Buffer =>
        Buffer.from(Array.from({ length: n }, () => r.int(0, 255)));
      const write = async (name: string, data: Buffer): Promise<void> => {
        await fsp.writeFile(join(src, name), data);
        sourceBytes += data.length;
      };
      await fsp.mkdir(join(src, 'data'));
      // Incompressible: mksquashfs stores its blocks as they are.
      await write('data/random.bin', noise(1_500_000));
      // Random runs between repeats: long literal runs, matches at every distance.
      const half = Buffer.alloc(1_200_000);
      const seedBytes = noise(300_000);
      for (let i = 0; i < half.length; i++) {
        half[i] = i % 3000 < 1500 ? (seedBytes[i % seedBytes.length] ?? 0) : (i * 31) & 0x3f;
      }
      await write('data/half.bin', half);
      // A 20 KB period: matches from 16-48 KiB back (the far-match instruction).
      const period = noise(20_000);
      await write('data/period.bin', Buffer.concat(Array.from({ length: 30 }, () => period)));
      await write('data/zeros.bin', Buffer.alloc(700_000));
      await write('data/empty', Buffer.alloc(0));
      await write('data/one', Buffer.from('1'));
      await fsp.symlink('random.bin', join(src, 'data/link'));
      await fsp.link(join(src, 'data/one'), join(src, 'data/one-again'));
    });
    after(async () => {
      if (!dir) return;
      unmountAllBelow(dir);
      await fsp.rm(dir, { recursive: true, force: true });
    });

    for (const [i, v] of VARIANTS.entries()) {
      it(`reads a ${v.name} image as the kernel mounts it`, async () => {
        const image = join(dir, `v${i}.sqfs`);
        mksquashfs(src, image, ['-comp', 'lzo', ...v.args]);
        const img = await SquashfsImage.open(image);
        assert.equal(img.superblock.compression, 'lzo');
        await img.close();
        const { size } = await fsp.stat(image);
        assert.ok(size < sourceBytes * 0.8, `${v.name}: compressed (${size} of ${sourceBytes})`);
        assert.ok((await inodeBlocks(image)).compressed > 0, 'compressed metadata blocks');
        const entries = await assertReaderMatchesKernel(image, join(dir, `m${i}`));
        assert.ok(entries > 500, `${entries} entries`);
        await fsp.rm(image);
      });
    }

    it('reads the real GURU corpus packed with lzo as the kernel does', async (t) => {
      if (!existsSync(join(CORPUS, 'guru-base.tar.xz'))) {
        const msg = `corpus not found at ${CORPUS}; skipping the real-corpus lzo test`;
        console.log(`# SKIP: ${msg}`);
        t.skip(msg);
        return;
      }
      const guru = join(dir, 'guru');
      await fsp.mkdir(guru);
      execFileSync('tar', ['-xJf', join(CORPUS, 'guru-base.tar.xz'), '-C', guru]);
      const image = join(dir, 'guru.sqfs');
      mksquashfs(guru, image, ['-comp', 'lzo']);
      const entries = await assertReaderMatchesKernel(image, join(dir, 'mguru'));
      assert.ok(entries > 13_000, `${entries} entries`);
      await fsp.rm(image);
      await fsp.rm(guru, { recursive: true });
    });
  },
);

interface CompactJson {
  trees: { result: { compacted: boolean; method?: string; methodReason?: string } }[];
}
interface VerifyJson {
  trees: { result: { ok: boolean; images: { file: string; ok: boolean; method: string }[] } }[];
}

describe('lzo trees: inspect, commit, compact and verify natively', () => {
  it('inspect reads an lzo image without root', async (t) => {
    if (!needRoot(t)) return;
    const f = await initTree(t, {
      'a.txt': 'alpha\n'.repeat(1000),
      sub: { dir: { 'b.txt': 'beta\n' } },
      link: { symlink: 'a.txt' },
    });
    const image = join(f.sb.dir, 'lzo.sqfs');
    mksquashfs(f.model, image, ['-comp', 'lzo']);
    await fsp.chmod(f.sb.dir, 0o755);
    const list = await asNobody(['--json', 'inspect', image, '--recursive'], f.sb.dir);
    assert.equal(list.status, 0, list.stderr);
    const data = JSON.parse(list.stdout.toString()) as {
      info: { compression: string };
      entries: { path: string }[];
    };
    assert.equal(data.info.compression, 'lzo');
    assert.deepEqual(data.entries.map((e) => e.path).sort(), ['a.txt', 'link', 'sub', 'sub/b.txt']);
    const cat = await asNobody(['inspect', image, 'a.txt', '--cat'], f.sb.dir);
    assert.equal(cat.status, 0, cat.stderr);
    assert.equal(cat.stdout.toString(), 'alpha\n'.repeat(1000));
  });

  it('an lzo tree compacts with the native writer; verify reads every image natively', async (t) => {
    if (!needRoot(t)) return;
    const f = await initTree(
      t,
      undefined,
      ['--compression', 'lzo'],
      '[defaults]\ncompact-after = 50\n',
    );
    for (let i = 1; i <= 2; i++) {
      await f.ok('start', 't');
      for (const d of [f.tree, f.model]) {
        await fsp.writeFile(join(d, `new-${i}.txt`), `file ${i}\n`.repeat(100 * i));
        await fsp.rm(join(d, 'a.txt'), { force: true });
        await fsp.mkdir(join(d, 'cat-one', `pkg${i}`), { recursive: true });
        await fsp.writeFile(join(d, 'cat-one', `pkg${i}`, 'Manifest'), `DIST ${i}\n`);
      }
      await f.ok('stop', 't');
    }
    const before = parseJson<VerifyJson>(await f.ok('verify', 't', '--json'));
    const images = before.trees[0]?.result.images ?? [];
    assert.equal(images.length, 3, 'a base and two layers');
    assert.deepEqual(
      images.map((x) => x.method),
      ['reader', 'reader', 'reader'],
    );

    const c = parseJson<CompactJson>(await f.ok('compact', 't', '--json'));
    assert.equal(c.trees[0]?.result.compacted, true);
    assert.equal(c.trees[0]?.result.method, 'writer', c.trees[0]?.result.methodReason);

    const after = parseJson<VerifyJson>(await f.ok('verify', 't', '--json'));
    const base = after.trees[0]?.result.images ?? [];
    assert.equal(base.length, 1);
    assert.equal(base[0]?.method, 'reader');
    assert.equal(base[0]?.ok, true);
    // No lzo encoder: the writer keeps the blocks and stores its metadata as it is.
    const file = join(f.store, base[0]?.file ?? '');
    const img = await SquashfsImage.open(file);
    assert.equal(img.superblock.compression, 'lzo');
    await img.close();
    assert.deepEqual((await inodeBlocks(file)).compressed, 0);

    await f.ok('start', 't');
    await assertSameTree(f.model, f.tree, 'after compacting the lzo tree');
    await f.ok('stop', 't');
  });
});
