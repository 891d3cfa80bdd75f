/**
 * The SquashFS writer against the kernel: a base with tricky content
 * (hard links, xattrs, devices, sparse and multi-block files, empty dirs,
 * odd names, owners) and two layers committed from a real overlay upper
 * (whiteouts, opaque dirs, a dir replaced by a file and back, a hard link
 * broken by copy-up, metadata-only changes) are merged by the writer. The
 * result must mount, extract with unsquashfs, and equal the kernel's own
 * read-only overlay of the same images, for every compressor.
 */
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { needRoot, sandbox } from '../helpers/env.js';
import { assertSameTree, buildTree, setXattr } from '../helpers/tree.js';
import { writeMergedImage } from '../../src/squashfs/writer.js';
import { verifyMergedImage } from '../../src/squashfs/verify-merge.js';
import {
  ImageTables,
  SquashfsImage,
  SquashfsWriteError,
  diffTopLayer,
} from '../../src/squashfs/index.js';

function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

function pack(src: string, out: string, comp: string): void {
  sh('mksquashfs', [src, out, '-comp', comp, '-noappend', '-quiet', '-no-progress', '-xattrs']);
}

const OVERLAY_OPTS = 'redirect_dir=off,index=off,metacopy=off';

/** Mount `images` (bottom first) read-only through loop devices under dir; returns the lower dirs, top first. */
function mountImages(dir: string, images: readonly string[]): string[] {
  return images
    .map((img, i) => {
      const m = join(dir, `lower${i}`);
      execFileSync('mkdir', ['-p', m]);
      sh('mount', ['-t', 'squashfs', '-o', 'loop,ro,nodev,nosuid', img, m]);
      return m;
    })
    .reverse();
}

/** A writable overlay over the images, with its upper in a tmpfs; returns [merged, upper]. */
function writableOverlay(dir: string, images: readonly string[]): [string, string] {
  const lowers = mountImages(join(dir, 'lo'), images);
  const tmp = join(dir, 'tmpfs');
  execFileSync('mkdir', ['-p', tmp]);
  sh('mount', ['-t', 'tmpfs', 'tmpfs', tmp]);
  execFileSync('mkdir', ['-p', join(tmp, 'u'), join(tmp, 'w'), join(dir, 'merged')]);
  sh('mount', [
    '-t',
    'overlay',
    'overlay',
    '-o',
    `lowerdir=${lowers.join(':')},upperdir=${join(tmp, 'u')},workdir=${join(tmp, 'w')},${OVERLAY_OPTS}`,
    join(dir, 'merged'),
  ]);
  return [join(dir, 'merged'), join(tmp, 'u')];
}

function unmountBelow(dir: string): void {
  const points = execFileSync('cat', ['/proc/self/mountinfo'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((p) => p.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const p of points) sh('umount', [p]);
}

async function makeBase(root: string): Promise<void> {
  const big = Buffer.alloc(3 * 131072 + 777);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7919) % 251;
  await buildTree(root, {
    'empty-file': '',
    'one-byte': 'x',
    'block-exact': Buffer.alloc(131072, 0x41),
    'multi-block': big,
    'with-xattrs': { file: 'attrs', xattrs: { 'user.colour': 'blue', 'trusted.secret': 's' } },
    owned: { file: 'owned', uid: 1234, gid: 5678, mode: 0o4750 },
    'no-perms': { file: 'np', mode: 0o000 },
    link1: 'shared by three names',
    link2: { hardlink: 'link1' },
    sub: { dir: { link3: { hardlink: '../link1' }, keep: 'keep me', gone: 'delete me' } },
    sym: { symlink: 'multi-block' },
    'long-sym': { symlink: 'a/'.repeat(900) + 'end' },
    fifo: { fifo: true },
    'empty-dir': { dir: {} },
    'name with spaces\tand tab': 'odd',
    'latin1-\xff\xfe': 'bytes',
    ['n'.repeat(255)]: 'long name',
    doomed: { dir: { a: 'a', b: { dir: { c: 'c' } } } },
    replaced: { dir: { x: 'x' } },
    'becomes-dir': 'file for now',
    'xattr-dir': { dir: { f: 'f' }, xattrs: { 'user.dir': 'yes' } },
    deep: { dir: { a: { dir: { b: { dir: { c: { dir: { d: 'deep file' } } } } } } } },
  });
  execFileSync('mknod', [join(root, 'chr'), 'c', '1', '3']);
  execFileSync('mknod', [join(root, 'blk'), 'b', '7', '200']);
  // Sparse: 1 MiB with data only in the middle.
  const fh = await fsp.open(join(root, 'sparse'), 'w');
  await fh.write(Buffer.from('middle'), 0, 6, 600000);
  await fh.truncate(1 << 20);
  await fh.close();
  await fsp.utimes(join(root, 'one-byte'), 1000000000, 1000000000);
  // A big dir: listings over several metadata blocks and several headers.
  await fsp.mkdir(join(root, 'many'));
  for (let i = 0; i < 1500; i++) await fsp.writeFile(join(root, 'many', `entry-${i}`), `${i}`);
}

/** First round of changes, made through a real overlay. */
async function changeOne(m: string): Promise<void> {
  await fsp.rm(join(m, 'sub/gone'));
  await fsp.rm(join(m, 'doomed'), { recursive: true });
  await fsp.rm(join(m, 'replaced'), { recursive: true });
  await buildTree(join(m, 'replaced'), { y: 'new y' }); // an opaque dir
  await fsp.rm(join(m, 'becomes-dir'));
  await buildTree(join(m, 'becomes-dir'), { inside: 'now a dir' });
  await fsp.appendFile(join(m, 'link2'), ' (changed)'); // copy-up breaks the link
  await fsp.chmod(join(m, 'one-byte'), 0o600);
  await fsp.lchown(join(m, 'sub/keep'), 42, 43);
  setXattr(join(m, 'sub/keep'), 'user.added', 'later');
  await fsp.writeFile(join(m, 'new-file'), 'added in layer 1');
  await fsp.link(join(m, 'new-file'), join(m, 'new-link'));
  for (let i = 0; i < 1500; i += 3) await fsp.rm(join(m, 'many', `entry-${i}`));
  await fsp.writeFile(join(m, 'many', 'entry-1'), 'rewritten');
  await fsp.writeFile(join(m, 'multi-block'), Buffer.alloc(200000, 0x42));
}

/** Second round, on base + layer 1. */
async function changeTwo(m: string): Promise<void> {
  await fsp.rm(join(m, 'becomes-dir'), { recursive: true });
  await fsp.writeFile(join(m, 'becomes-dir'), 'a file again');
  await fsp.rm(join(m, 'new-link'));
  await fsp.writeFile(join(m, 'doomed'), 'back as a file');
  await fsp.rm(join(m, 'replaced/y'));
  await fsp.mkdir(join(m, 'replaced/z'));
  await fsp.rm(join(m, 'xattr-dir/f'));
  await fsp.writeFile(join(m, 'deep/a/b/c/e'), 'beside d');
  await fsp.symlink('becomes-dir', join(m, 'sym2'));
}

async function buildStack(
  t: TestContext,
  comp: string,
): Promise<{ dir: string; images: string[] }> {
  const sb = await sandbox(t, 'st-writer-');
  const dir = sb.dir;
  t.after(() => {
    unmountBelow(dir);
  });
  await makeBase(join(dir, 'tree'));
  const images = [join(dir, 'base.sqfs')];
  pack(join(dir, 'tree'), images[0] ?? '', comp);
  for (const [i, change] of [changeOne, changeTwo].entries()) {
    const round = join(dir, `round${i}`);
    const [merged, upper] = writableOverlay(round, images);
    await change(merged);
    const layer = join(dir, `layer${i + 1}.sqfs`);
    pack(upper, layer, comp);
    unmountBelow(round);
    images.push(layer);
  }
  return { dir, images };
}

/** Mount the merged image and the kernel's overlay of the inputs; compare; unmount. */
async function assertMatchesOverlay(
  dir: string,
  images: string[],
  out: string,
  stackChecks = true,
): Promise<void> {
  const view = join(dir, 'check');
  const lowers = mountImages(join(view, 'in'), images);
  const overlay = join(view, 'overlay');
  const mine = join(view, 'mine');
  execFileSync('mkdir', ['-p', overlay, mine]);
  try {
    sh('mount', [
      '-t',
      'overlay',
      'overlay',
      '-o',
      `lowerdir=${lowers.join(':')},${OVERLAY_OPTS}`,
      overlay,
    ]);
    sh('mount', ['-t', 'squashfs', '-o', 'loop,ro', out, mine]);
    // Hard links are compared inside the image (the overlay reports per-layer inodes).
    await assertSameTree(overlay, mine, 'writer output vs overlay', { mtime: true, live: true });
    if (!stackChecks) return;
    const st1 = await fsp.stat(join(mine, 'link1'));
    const st3 = await fsp.stat(join(mine, 'sub/link3'));
    assert.equal(st1.ino, st3.ino, 'link1 and sub/link3 stay one inode');
    assert.equal(st1.nlink, 2, 'link2 was broken off by copy-up');
    assert.notEqual((await fsp.stat(join(mine, 'link2'))).ino, st1.ino);
    assert.equal((await fsp.stat(join(mine, 'new-file'))).nlink, 1, 'new-link was deleted');
    const sp = await fsp.stat(join(mine, 'sparse'));
    assert.equal(sp.size, 1 << 20);
  } finally {
    unmountBelow(view);
  }
  // unsquashfs reads it all, and what it extracts equals the mount.
  const ex = join(dir, 'extracted');
  sh('unsquashfs', ['-q', '-no-progress', '-d', ex, out]);
  execFileSync('mkdir', ['-p', mine]);
  sh('mount', ['-t', 'squashfs', '-o', 'loop,ro', out, mine]);
  try {
    await assertSameTree(mine, ex, 'unsquashfs extraction', { mtime: true });
  } finally {
    unmountBelow(view);
  }
}

describe('squashfs writer: merging a stack of images', () => {
  for (const comp of ['gzip', 'xz', 'lz4', 'zstd']) {
    it(`writes an image equal to the overlay of base + 2 layers (${comp})`, async (t) => {
      if (!needRoot(t)) return;
      const { dir, images } = await buildStack(t, comp);
      const out = join(dir, 'merged.sqfs');
      const r = await writeMergedImage(images, out, { verify: true });
      assert.equal(r.metadataCompressed, true);
      assert.ok(r.verified && r.verified.entries > 1000);
      await assertMatchesOverlay(dir, images, out);
      // The reader sees the same through its own, independent path.
      const img = await SquashfsImage.open(out);
      try {
        assert.equal(img.superblock.compression, comp);
        const st = await img.stat(await img.lookup('sub/keep'));
        assert.deepEqual([st.uid, st.gid], [42, 43]);
        assert.ok(st.xattrs.every((x) => !x.name.toString().startsWith('trusted.overlay.')));
      } finally {
        await img.close();
      }
      // A merge of the merged image with nothing else is the same image again.
      const again = join(dir, 'again.sqfs');
      await writeMergedImage([out], again, { verify: true });
      await verifyMergedImage(images, again);
    });
  }

  it('lists what the top layer changes in the images below it', async (t) => {
    if (!needRoot(t)) return;
    const { images } = await buildStack(t, 'gzip');
    const opened = await Promise.all(images.map((p) => SquashfsImage.open(p)));
    try {
      const tables = await Promise.all(opened.map((i) => ImageTables.load(i)));
      const lines = (await diffTopLayer(tables)).map(
        (c) => `${c.kind} ${c.path.toString('latin1')} ${c.type}`,
      );
      // Path order; a replaced entry's old subtree is deleted before the new one is added.
      assert.deepEqual(lines, [
        'D becomes-dir dir',
        'D becomes-dir/inside file',
        'A becomes-dir file',
        'A deep/a/b/c/e file',
        'A doomed file',
        'D new-link file',
        'D replaced/y file',
        'A replaced/z dir',
        'A sym2 symlink',
        'D xattr-dir/f file',
      ]);
    } finally {
      await Promise.all(opened.map((i) => i.close()));
    }
  });

  for (const comp of ['gzip', 'lz4']) {
    it(`repacks the live tails of fragment blocks that are mostly dead (${comp})`, async (t) => {
      if (!needRoot(t)) return;
      const sb = await sandbox(t, 'st-writer-');
      t.after(() => {
        unmountBelow(sb.dir);
      });
      const files: Record<string, string> = {};
      for (let i = 0; i < 400; i++) files[`f${i}`] = `small file ${i} `.repeat(1 + (i % 40));
      await buildTree(join(sb.dir, 'tree'), { small: { dir: files }, big: 'x'.repeat(300000) });
      const base = join(sb.dir, 'base.sqfs');
      pack(join(sb.dir, 'tree'), base, comp);
      const [merged, upper] = writableOverlay(join(sb.dir, 'r'), [base]);
      for (let i = 0; i < 400; i++) if (i % 10 !== 0) await fsp.rm(join(merged, 'small', `f${i}`));
      await fsp.writeFile(join(merged, 'small', 'f0'), 'rewritten');
      const layer = join(sb.dir, 'layer.sqfs');
      pack(upper, layer, comp);
      unmountBelow(join(sb.dir, 'r'));
      const out = join(sb.dir, 'out.sqfs');
      const r = await writeMergedImage([base, layer], out, { verify: true });
      assert.ok(r.repackedFragments > 0, 'a mostly dead fragment block was repacked');
      assert.ok(r.bytes < (await fsp.stat(base)).size, 'the dead tails are gone');
      await assertMatchesOverlay(sb.dir, [base, layer], out, false);
    });
  }

  it('refuses images with different compressors, and leaves no output', async (t) => {
    if (!needRoot(t)) return;
    const sb = await sandbox(t, 'st-writer-');
    await buildTree(join(sb.dir, 'a'), { f: 'a' });
    pack(join(sb.dir, 'a'), join(sb.dir, 'a.sqfs'), 'gzip');
    pack(join(sb.dir, 'a'), join(sb.dir, 'b.sqfs'), 'xz');
    const out = join(sb.dir, 'out.sqfs');
    await assert.rejects(
      writeMergedImage([join(sb.dir, 'a.sqfs'), join(sb.dir, 'b.sqfs')], out),
      (e: unknown) => e instanceof SquashfsWriteError && e.code === 'incompatible',
    );
    await assert.rejects(fsp.stat(out), { code: 'ENOENT' });
  });

  it('catches an output that differs from its inputs', async (t) => {
    if (!needRoot(t)) return;
    const sb = await sandbox(t, 'st-writer-');
    await buildTree(join(sb.dir, 'a'), { f: 'a', g: 'g' });
    await buildTree(join(sb.dir, 'b'), { f: 'a', g: 'G' });
    pack(join(sb.dir, 'a'), join(sb.dir, 'a.sqfs'), 'gzip');
    pack(join(sb.dir, 'b'), join(sb.dir, 'b.sqfs'), 'gzip');
    await assert.rejects(
      verifyMergedImage([join(sb.dir, 'a.sqfs')], join(sb.dir, 'b.sqfs')),
      (e: unknown) =>
        e instanceof SquashfsWriteError &&
        e.code === 'verify' &&
        /differs from the merged inputs/.test(e.message),
    );
  });
});
