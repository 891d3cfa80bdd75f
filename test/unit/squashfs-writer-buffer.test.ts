/**
 * The SquashFS writer into memory, as any user: a base and a layer packed by
 * mksquashfs (whiteouts as pseudo character devices 0/0, which need no
 * root) are merged into a BufferOutput; the result must read back, through
 * the native reader and through unsquashfs, as the tree the overlay of the
 * two would show. Nothing is mounted.
 */
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildTree, type Spec } from '../helpers/tree.js';
import {
  BufferOutput,
  BufferSource,
  SquashfsImage,
  type ByteSource,
  SquashfsWriteError,
  writeMergedImage,
} from '../../src/squashfs/index.js';

const haveTools = ['mksquashfs', 'unsquashfs'].every(
  (c) => spawnSync(c, ['-version']).status !== null,
);

function sh(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
}

async function tmp(t: TestContext): Promise<string> {
  const dir = await fsp.mkdtemp(join(tmpdir(), 'st-wbuf-'));
  t.after(() => fsp.rm(dir, { recursive: true, force: true }));
  return dir;
}

function pack(src: string, out: string, pseudo: string[] = [], comp = 'gzip'): void {
  const p = pseudo.flatMap((d) => ['-p', d]);
  sh('mksquashfs', [src, out, '-comp', comp, '-noappend', '-quiet', '-no-progress', ...p]);
}

const big = Buffer.alloc(3 * 131072 + 555);
for (let i = 0; i < big.length; i++) big[i] = (i * 31 + (i >> 9)) % 253;

function many(n: number, prefix: string): Spec {
  const out: Spec = {};
  for (let i = 0; i < n; i++) out[`${prefix}-${i}`] = `${prefix} ${i}\n`;
  return out;
}

const BASE: Spec = {
  'empty-file': '',
  small: 'small',
  big,
  'block-exact': Buffer.alloc(131072, 0x61),
  sym: { symlink: 'small' },
  link1: 'two names',
  link2: { hardlink: 'link1' },
  // First reached inside a directory that sorts before the other name.
  'a-dir': { dir: { inner: 'linked from the root' } },
  'z-name': { hardlink: 'a-dir/inner' },
  doomed: 'deleted by the layer',
  olddir: { dir: { a: 'a', b: { dir: { c: 'c' } } } },
  changed: 'old content',
  'empty-dir': { dir: {} },
  many: { dir: many(1500, 'entry') },
  deep: { dir: { a: { dir: { b: { dir: { f: 'deep' } } } } } },
};

const LAYER: Spec = {
  changed: 'new content, longer than the old',
  added: 'added by the layer',
  newdir: { dir: { x: 'x', y: { symlink: '../added' } } },
  many: { dir: { 'entry-7': 'rewritten', 'entry-new': 'new' } },
  deep: { dir: { a: { dir: { g: 'beside b' } } } },
};
const WHITEOUTS = ['doomed', 'olddir', 'many/entry-3'].map((p) => `${p} c 0 0 0 0 0`);

/** The tree the overlay of LAYER on BASE shows. */
function expected(): Spec {
  const m = structuredClone(BASE) as Record<string, unknown>;
  delete m.doomed;
  delete m.olddir;
  m.changed = LAYER.changed;
  m.added = LAYER.added;
  m.newdir = LAYER.newdir;
  const entries = many(1500, 'entry');
  delete entries['entry-3'];
  entries['entry-7'] = 'rewritten';
  entries['entry-new'] = 'new';
  m.many = { dir: entries };
  m.deep = { dir: { a: { dir: { b: { dir: { f: 'deep' } }, g: 'beside b' } } } };
  m.big = big;
  m['block-exact'] = Buffer.alloc(131072, 0x61);
  return m as Spec;
}

/** path -> "type size sha256|target" for every entry below root, read from the filesystem. */
async function listDisk(root: string, rel = ''): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const name of (await fsp.readdir(join(root, rel))).sort()) {
    const p = rel ? `${rel}/${name}` : name;
    const st = await fsp.lstat(join(root, p));
    if (st.isDirectory()) {
      out.set(p, 'dir');
      for (const [k, v] of await listDisk(root, p)) out.set(k, v);
    } else if (st.isSymbolicLink()) {
      out.set(p, `symlink ${await fsp.readlink(join(root, p))}`);
    } else {
      const h = createHash('sha256')
        .update(await fsp.readFile(join(root, p)))
        .digest('hex');
      out.set(p, `file ${st.size} ${h}`);
    }
  }
  return out;
}

async function listImage(bytes: Buffer): Promise<Map<string, string>> {
  const img = await SquashfsImage.fromBuffer(bytes);
  const out = new Map<string, string>();
  try {
    for await (const e of img.walk()) {
      const p = e.path.toString('utf8');
      if (e.inode.kind === 'dir') out.set(p, 'dir');
      else if (e.inode.kind === 'symlink') out.set(p, `symlink ${e.inode.target.toString()}`);
      else if (e.inode.kind === 'file') {
        const data = await img.readFileAll(e.inode);
        out.set(p, `file ${data.length} ${createHash('sha256').update(data).digest('hex')}`);
      } else out.set(p, e.inode.kind);
    }
  } finally {
    await img.close();
  }
  return out;
}

describe(
  'squashfs writer into a buffer (no root, no mount)',
  { skip: !haveTools && 'needs squashfs-tools' },
  () => {
    it('merges a base and a layer as the overlay shows them, read back by the reader and unsquashfs', async (t) => {
      const dir = await tmp(t);
      await buildTree(join(dir, 'base'), BASE);
      await buildTree(join(dir, 'layer'), LAYER);
      await buildTree(join(dir, 'want'), expected());
      pack(join(dir, 'base'), join(dir, 'base.sqfs'));
      pack(join(dir, 'layer'), join(dir, 'layer.sqfs'), WHITEOUTS);
      const out = new BufferOutput();
      const r = await writeMergedImage([join(dir, 'base.sqfs'), join(dir, 'layer.sqfs')], out, {
        verify: true,
      });
      assert.equal(r.bytes, out.bytes.length);
      assert.equal(r.bytes % 4096, 0);
      assert.ok(r.verified && r.verified.entries > 1500);
      const want = await listDisk(join(dir, 'want'));
      assert.deepEqual(await listImage(out.bytes), want);
      // unsquashfs reads the same bytes the same way.
      await fsp.writeFile(join(dir, 'merged.sqfs'), out.bytes);
      sh('unsquashfs', ['-q', '-no-progress', '-d', join(dir, 'x'), join(dir, 'merged.sqfs')]);
      assert.deepEqual(await listDisk(join(dir, 'x')), want);
      const img = await SquashfsImage.fromBuffer(out.bytes);
      try {
        const l1 = await img.lookup('link1');
        const l2 = await img.lookup('link2');
        assert.equal(l1.number, l2.number, 'a hard link stays one inode');
        assert.equal(l1.nlink, 2);
      } finally {
        await img.close();
      }
    });

    it('rewrites one layer keeping its whiteouts, from bytes in memory to bytes in memory', async (t) => {
      const dir = await tmp(t);
      await buildTree(join(dir, 'layer'), LAYER);
      pack(join(dir, 'layer'), join(dir, 'layer.sqfs'), WHITEOUTS, 'lz4');
      const layer = await fsp.readFile(join(dir, 'layer.sqfs'));
      const out = new BufferOutput();
      await writeMergedImage([layer], out, { keepWhiteouts: true, verify: true });
      const got = await listImage(out.bytes);
      assert.deepEqual(got, await listImage(layer));
      assert.equal(got.get('doomed'), 'chardev');
      const img = await SquashfsImage.fromBuffer(out.bytes);
      assert.equal(img.superblock.compression, 'lz4');
      await img.close();
    });

    it('its check reads the image back: a byte that differs from its inputs fails the merge', async (t) => {
      const dir = await tmp(t);
      await buildTree(join(dir, 'base'), BASE);
      pack(join(dir, 'base'), join(dir, 'base.sqfs'));
      // The check reads what the output holds: here a copy with one data byte flipped.
      class Flipped extends BufferOutput {
        override source(): Promise<ByteSource> {
          const b = Buffer.from(this.bytes);
          b[200] = (b[200] ?? 0) ^ 1;
          return Promise.resolve(new BufferSource(b));
        }
      }
      await assert.rejects(
        writeMergedImage([join(dir, 'base.sqfs')], new Flipped(), { verify: true }),
        (e: unknown) => e instanceof SquashfsWriteError && e.code === 'verify',
      );
    });

    it('never overwrites an existing file, and leaves it as it was', async (t) => {
      const dir = await tmp(t);
      await buildTree(join(dir, 'base'), { f: 'f' });
      pack(join(dir, 'base'), join(dir, 'base.sqfs'));
      await fsp.writeFile(join(dir, 'taken'), 'not an image');
      await assert.rejects(writeMergedImage([join(dir, 'base.sqfs')], join(dir, 'taken')), {
        code: 'EEXIST',
      });
      assert.equal(await fsp.readFile(join(dir, 'taken'), 'utf8'), 'not an image');
      await assert.rejects(
        writeMergedImage([], new BufferOutput()),
        (e: unknown) => e instanceof SquashfsWriteError && e.code === 'incompatible',
      );
    });
  },
);
