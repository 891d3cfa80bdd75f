/**
 * The native packer against the kernel, as root: a directory with devices,
 * owners, modes, mtimes, sockets, xattrs of every namespace, hard links,
 * sparse and multi-block files and odd names is packed with every
 * compressor the packer has, then mounted and extracted with unsquashfs:
 * both must equal the directory. From a real overlay upper, a layer packed
 * with its whiteouts must stack on its base as the overlay showed the tree,
 * and a new base written from the base image and the upper (whiteouts and
 * opaque dirs applied) must equal the kernel's overlay of the two.
 */
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { needRoot, sandbox, unmountAllBelow } from '../helpers/env.js';
import { assertSameTree, buildTree, setXattr } from '../helpers/tree.js';
import { SquashfsImage, writeImage, type CompressorName } from '../../src/squashfs/index.js';

const OVERLAY_OPTS = 'redirect_dir=off,index=off,metacopy=off';

function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

function mountImage(img: string, at: string): void {
  execFileSync('mkdir', ['-p', at]);
  sh('mount', ['-t', 'squashfs', '-o', 'loop,ro', img, at]);
}

async function place(t: TestContext): Promise<string> {
  const sb = await sandbox(t, 'st-pack-e2e-');
  t.after(() => {
    unmountAllBelow(sb.dir);
  });
  return sb.dir;
}

async function makeTree(root: string): Promise<void> {
  const big = Buffer.alloc(3 * 131072 + 777);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7919) % 251;
  await buildTree(root, {
    'empty-file': '',
    'one-byte': 'x',
    'block-exact': Buffer.alloc(131072, 0x41),
    'multi-block': big,
    'with-xattrs': {
      file: 'attrs',
      xattrs: { 'user.colour': 'blue', 'trusted.secret': 's', 'security.label': 'l' },
    },
    owned: { file: 'owned', uid: 1234, gid: 5678, mode: 0o4750 },
    nobody: { file: 'nobody', uid: 65534, gid: 65534, mode: 0o2644 },
    'no-perms': { file: 'np', mode: 0o000 },
    link1: 'shared by three names',
    link2: { hardlink: 'link1' },
    sub: { dir: { link3: { hardlink: '../link1' }, keep: 'keep me' }, mode: 0o1777 },
    sym: { symlink: 'multi-block' },
    'long-sym': { symlink: 'a/'.repeat(900) + 'end' },
    fifo: { fifo: true },
    'empty-dir': { dir: {} },
    'name with spaces\tand tab': 'odd',
    'latin1-\xff\xfe': 'bytes',
    ['n'.repeat(255)]: 'long name',
    'xattr-dir': { dir: { f: 'f' }, xattrs: { 'user.dir': 'yes' } },
    deep: { dir: { a: { dir: { b: { dir: { c: { dir: { d: 'deep file' } } } } } } } },
  });
  execFileSync('mknod', [join(root, 'chr'), 'c', '1', '3']);
  execFileSync('mknod', [join(root, 'blk'), 'b', '7', '200']);
  execFileSync('mknod', [join(root, 'big-minor'), 'c', '300', '70000']);
  setXattr(join(root, 'sym'), 'trusted.on-link', 'the link, not its target');
  spawnSync('python3', [
    '-c',
    'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])',
    join(root, 'sock'),
  ]);
  const fh = await fsp.open(join(root, 'sparse'), 'w');
  await fh.write(Buffer.from('middle'), 0, 6, 600000);
  await fh.truncate(1 << 20);
  await fh.close();
  await fsp.utimes(join(root, 'one-byte'), 1000000000, 1000000000);
  await fsp.utimes(join(root, 'deep'), 0, 0);
  await fsp.mkdir(join(root, 'many'));
  for (let i = 0; i < 1500; i++) await fsp.writeFile(join(root, 'many', `entry-${i}`), `${i}`);
}

describe('squashfs packer against the kernel', () => {
  for (const comp of ['gzip', 'lz4', 'zstd', 'xz'] as const) {
    it(`packs devices, owners, sockets, xattrs, links and odd names as the kernel and unsquashfs read them (${comp})`, async (t) => {
      if (!needRoot(t)) return;
      const dir = await place(t);
      const src = join(dir, 'src');
      await makeTree(src);
      const img = join(dir, 'packed.sqfs');
      const r = await writeImage([{ dir: src }], img, {
        compression: { name: comp as CompressorName },
        keepWhiteouts: true,
        verify: true,
      });
      assert.ok(r.verified && r.packedFiles > 1500);
      sh('unsquashfs', ['-s', img]);
      const m = join(dir, 'mnt');
      mountImage(img, m);
      await assertSameTree(src, m, `${comp}: the mounted image`, { mtime: true });
      const x = join(dir, 'x');
      sh('unsquashfs', ['-q', '-no-progress', '-d', x, img]);
      await assertSameTree(src, x, `${comp}: unsquashfs`, { mtime: true });
      const sock = await fsp.lstat(join(m, 'sock'));
      assert.ok(sock.isSocket(), 'a socket stays a socket');
      const dev = await fsp.lstat(join(m, 'big-minor'));
      assert.equal(dev.rdev, (await fsp.lstat(join(src, 'big-minor'))).rdev);
    });
  }

  it('a layer from a real upper stacks on its base, and a new base from both reads as the overlay', async (t) => {
    if (!needRoot(t)) return;
    const dir = await place(t);
    const src = join(dir, 'src');
    await makeTree(src);
    const base = join(dir, 'base.sqfs');
    sh('mksquashfs', [src, base, '-noappend', '-quiet', '-no-progress', '-xattrs']);
    // Changes through a real overlay (the upper on a tmpfs, as squashtree keeps it).
    const lo = join(dir, 'lo');
    mountImage(base, lo);
    const tmpfs = join(dir, 'tmpfs');
    await fsp.mkdir(tmpfs);
    sh('mount', ['-t', 'tmpfs', 'tmpfs', tmpfs]);
    await fsp.mkdir(join(tmpfs, 'u'));
    await fsp.mkdir(join(tmpfs, 'w'));
    const merged = join(dir, 'merged');
    await fsp.mkdir(merged);
    sh('mount', [
      '-t',
      'overlay',
      'overlay',
      '-o',
      `lowerdir=${lo},upperdir=${join(tmpfs, 'u')},workdir=${join(tmpfs, 'w')},${OVERLAY_OPTS}`,
      merged,
    ]);
    await fsp.rm(join(merged, 'sub/keep'));
    await fsp.rm(join(merged, 'deep'), { recursive: true });
    await fsp.appendFile(join(merged, 'link2'), ' (changed)');
    await fsp.chmod(join(merged, 'one-byte'), 0o600);
    await fsp.lchown(join(merged, 'owned'), 42, 43);
    setXattr(join(merged, 'empty-file'), 'user.added', 'later');
    await fsp.writeFile(join(merged, 'new-file'), Buffer.alloc(300000, 0x42));
    for (let i = 0; i < 1500; i += 3) await fsp.rm(join(merged, 'many', `entry-${i}`));
    await fsp.writeFile(join(merged, 'many', 'entry-1'), 'rewritten');
    const want = join(dir, 'want');
    sh('cp', ['-a', merged, want]);
    // An opaque dir: only the new base (whiteouts applied) may take it from the xattr.
    await fsp.rm(join(merged, 'xattr-dir'), { recursive: true });
    await buildTree(join(merged, 'xattr-dir'), { g: 'new g' });
    const wantBase = join(dir, 'want-base');
    sh('cp', ['-a', merged, wantBase]);
    sh('umount', [merged]);
    const upper = join(tmpfs, 'u');

    // The new base: the image below and the captured upper, as the kernel's overlay of both.
    const newBase = join(dir, 'new-base.sqfs');
    const r = await writeImage([base, { dir: upper }], newBase, { verify: true });
    assert.ok(r.copiedBytes > 0 && r.packedFiles > 0);
    const nb = join(dir, 'nb');
    mountImage(newBase, nb);
    await assertSameTree(wantBase, nb, 'new base vs the overlay', { mtime: true, live: true });
    const gone = await fsp.readdir(join(nb, 'xattr-dir'));
    assert.deepEqual(gone, ['g'], 'the opaque dir hides what was below it');
    const img = await SquashfsImage.open(newBase);
    try {
      assert.equal((await img.lookup('link1')).number, (await img.lookup('sub/link3')).number);
    } finally {
      await img.close();
    }

    // A layer of the upper without its opaque dir (the layer form writes opacity out as whiteouts).
    await fsp.rm(join(upper, 'xattr-dir'), { recursive: true });
    const layer = join(dir, 'layer.sqfs');
    await writeImage([{ dir: upper }], layer, {
      keepWhiteouts: true,
      verify: true,
      compression: { name: 'gzip' },
    });
    const ly = join(dir, 'ly');
    mountImage(layer, ly);
    const view = join(dir, 'view');
    await fsp.mkdir(view);
    sh('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${ly}:${lo},${OVERLAY_OPTS}`, view]);
    await assertSameTree(want, view, 'layer on base vs the overlay', { mtime: true, live: true });
  });
});
