/**
 * What packs a commit (pack-method, issue 15 item 1): the native writer by
 * default, mksquashfs when asked or when the writer cannot (saying why), a
 * new base when the change is most of the tree. Each stack is read back
 * through the kernel overlay (stop, start) and compared with a model of the
 * tree.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { needRoot } from '../helpers/env.js';
import type { CliResult } from '../helpers/cli.js';
import { assertSameTree, setXattr, type Spec } from '../helpers/tree.js';
import { initTree, parseJson } from '../helpers/setup.js';
import { Twin } from '../helpers/twin.js';

interface CommitResultJson {
  committed: boolean;
  generation: number;
  layers: number;
  mode?: string;
  packMethod?: string;
  packReason?: string;
  imageKind?: string;
  baseReason?: string;
}
interface CommitJson {
  trees: { result: CommitResultJson }[];
}

const tricky: Spec = {
  README: 'hello\n',
  'dev-cat': {
    dir: {
      'pkg-one': { dir: { 'pkg-one-1.0.ebuild': 'EAPI=8\n', Manifest: 'DIST a 1 SHA512 00\n' } },
      'pkg-two': {
        dir: { 'pkg-two-2.0.ebuild': 'EAPI=8\n', files: { dir: { 'a.patch': '-\n' } } },
      },
    },
  },
  'big.bin': Buffer.alloc(300_000, 7),
  tagged: { file: 'x\n', xattrs: { 'user.origin': 'base' } },
};

/** Changes of every kind an overlay upper can hold, made on the tree and on its model alike. */
async function trickyChanges(tw: Twin): Promise<void> {
  await tw.write('dev-cat/pkg-one/pkg-one-1.1.ebuild', 'EAPI=8\n# bump\n');
  await tw.rm('dev-cat/pkg-one/pkg-one-1.0.ebuild'); // a whiteout
  await tw.rm('dev-cat/pkg-two'); // then made again: an opaque dir
  await tw.mkdir('dev-cat/pkg-two');
  await tw.write('dev-cat/pkg-two/pkg-two-3.0.ebuild', 'EAPI=8\n');
  await tw.link('README', 'README.hard'); // a hard link
  await tw.both((r) => {
    setXattr(join(r, 'tagged'), 'user.origin', 'changed');
    setXattr(join(r, 'README'), 'user.new', 'yes');
    execFileSync('mknod', [join(r, 'null-dev'), 'c', '1', '3']);
    execFileSync('mkfifo', [join(r, 'a-fifo')]);
  });
  // A sparse file: 8 MiB with 4 KiB of data in the middle.
  await tw.both(async (r) => {
    const h = await fsp.open(join(r, 'sparse.img'), 'w');
    try {
      await h.write(Buffer.alloc(4096, 1), 0, 4096, 4 << 20);
      await h.truncate(8 << 20);
    } finally {
      await h.close();
    }
  });
}

const result = (r: CliResult): CommitResultJson | undefined =>
  parseJson<CommitJson>(r).trees[0]?.result;

describe('commit: what packs the image', { concurrency: false }, () => {
  for (const method of ['auto', 'mksquashfs'] as const) {
    it(`pack-method ${method}: every kind of change reads back the same through the kernel`, async (t) => {
      if (!needRoot(t)) return;
      const f = await initTree(
        t,
        tricky,
        [],
        `[defaults]\ncompact-after = 50\npack-method = "${method}"\n`,
      );
      const tw = new Twin(f.tree, f.model);
      await f.ok('start', 't');
      await trickyChanges(tw);
      const r = result(await f.ok('commit', 't', '--json'));
      assert.equal(r?.committed, true);
      assert.equal(r?.packMethod, method === 'auto' ? 'writer' : 'mksquashfs');
      assert.equal(r?.imageKind, 'layer');
      if (method === 'mksquashfs') assert.match(r?.packReason ?? '', /pack-method = "mksquashfs"/);
      else assert.equal(r?.packReason, undefined);
      await assertSameTree(f.model, f.tree, 'live, after the commit', { live: true });
      // A second commit in the session stacks on the first.
      await tw.write('later.txt', 'second commit\n');
      await tw.rm('big.bin');
      const r2 = result(await f.ok('commit', 't', '--json'));
      assert.deepEqual([r2?.mode, r2?.layers, r2?.packMethod], ['stacked', 3, r?.packMethod]);
      await f.ok('stop', 't');
      await f.ok('start', 't');
      await assertSameTree(f.model, f.tree, `the new stack (${method})`);
      await f.ok('stop', 't');
    });
  }

  it('falls back to mksquashfs for a compressor the writer lacks, saying why', async (t) => {
    if (!needRoot(t)) return;
    const f = await initTree(
      t,
      tricky,
      [],
      '[defaults]\ncompact-after = 50\ncompression = "lzo"\n',
    );
    const tw = new Twin(f.tree, f.model);
    await f.ok('start', 't');
    await tw.write('new.txt', 'new\n');
    const out = await f.ok('commit', 't', '--json');
    const r = result(out);
    assert.equal(r?.packMethod, 'mksquashfs');
    assert.match(r?.packReason ?? '', /no lzo encoder/);
    await tw.write('new2.txt', 'new\n');
    const said = await f.ok('commit', 't');
    assert.match(
      said.stdout + said.stderr,
      /with mksquashfs \(the native writer has no lzo encoder\)/,
    );
    await f.ok('stop', 't');
    await f.ok('start', 't');
    await assertSameTree(f.model, f.tree, 'lzo stack');
    await f.ok('stop', 't');
  });

  it('a zstd tree is packed by the writer (its zstd encoder) and reads back through the kernel', async (t) => {
    if (!needRoot(t)) return;
    const f = await initTree(
      t,
      tricky,
      [],
      '[defaults]\ncompact-after = 50\ncompression = "zstd"\n',
    );
    const tw = new Twin(f.tree, f.model);
    await f.ok('start', 't');
    await trickyChanges(tw);
    await tw.write('text.txt', 'compressible '.repeat(20_000));
    const r = result(await f.ok('commit', 't', '--json'));
    assert.deepEqual([r?.packMethod, r?.imageKind], ['writer', 'layer']);
    const sb = execFileSync('unsquashfs', ['-s', join(f.store, 'g000002-layer.sqfs')], {
      encoding: 'utf8',
    });
    assert.match(sb, /Compression zstd/);
    await f.ok('stop', 't');
    await f.ok('start', 't');
    await assertSameTree(f.model, f.tree, 'zstd stack');
    await f.ok('stop', 't');
  });

  it('a change of most of the tree makes a one-image generation; the next commit stacks on it', async (t) => {
    if (!needRoot(t)) return;
    const spec: Spec = { small: 'small\n', deep: { dir: { a: 'a\n' } }, gone: 'x\n' };
    for (let i = 0; i < 6; i++) spec[`blob${i}`] = randomBytes(1 << 20);
    const f = await initTree(t, spec, [], '[defaults]\ncompact-after = 50\n');
    const tw = new Twin(f.tree, f.model);
    await f.ok('start', 't');
    for (let i = 0; i < 4; i++) await tw.write(`blob${i}`, randomBytes(1 << 20));
    await tw.rm('gone');
    await tw.write('deep/b', 'b\n');
    const out = await f.ok('commit', 't', '--json');
    const r = result(out);
    assert.deepEqual([r?.imageKind, r?.layers, r?.packMethod], ['base', 1, 'writer']);
    assert.match(r?.baseReason ?? '', /^a new base: the change is \d+% of the tree$/);
    // What that generation changed: its base against the parent generation.
    const diff = parseJson<{
      trees: { result: { changes: { kind: string; path: string }[]; against?: number } }[];
    }>(await f.ok('diff', 't', '--generation', String(r?.generation), '--json')).trees[0]?.result;
    assert.equal(diff?.against, (r?.generation ?? 0) - 1);
    assert.deepEqual(
      diff?.changes.map((c) => `${c.kind} ${c.path}`),
      ['M blob0', 'M blob1', 'M blob2', 'M blob3', 'A deep/b', 'D gone'],
    );
    const human = await (async () => {
      await tw.write('blob4', randomBytes(1 << 20));
      await tw.write('blob5', randomBytes(1 << 20));
      await tw.write('blob0', randomBytes(1 << 20));
      await tw.write('blob1', randomBytes(1 << 20));
      return f.ok('commit', 't');
    })();
    assert.match(human.stdout + human.stderr, /a new base: the change is \d+% of the tree/);
    assert.match(human.stdout, /in a [\d.]+ MiB new base, 1 image/);
    // A small change next: a layer on the one-image generation.
    await tw.write('deep/c', 'c\n');
    const r3 = result(await f.ok('commit', 't', '--json'));
    assert.deepEqual([r3?.mode, r3?.imageKind, r3?.layers], ['stacked', 'layer', 2]);
    await assertSameTree(f.model, f.tree, 'live', { live: true });
    await f.ok('stop', 't');
    const images = (await fsp.readdir(f.store)).filter((n) => n.endsWith('.sqfs'));
    assert.ok(
      images.some((n) => /base/.test(n) && !n.startsWith('g000001')),
      `a new base: ${images.join(' ')}`,
    );
    await f.ok('start', 't');
    await assertSameTree(f.model, f.tree, 'the new base and its layer');
    await f.ok('stop', 't');
  });
  it('a new base over an image that is no longer as recorded: a layer instead, saying why', async (t) => {
    if (!needRoot(t)) return;
    const spec: Spec = { small: 'small\n' };
    for (let i = 0; i < 4; i++) spec[`blob${i}`] = randomBytes(1 << 20);
    const f = await initTree(t, spec, [], '[defaults]\ncompact-after = 50\n');
    const tw = new Twin(f.tree, f.model);
    await f.ok('start', 't');
    const base = (await fsp.readdir(f.store)).find((n) => n.endsWith('-base.sqfs'));
    assert.ok(base, 'the base image');
    // One byte past its end: the mounted tree reads as before, but the file is not the one recorded.
    const path = join(f.store, base);
    const size = (await fsp.stat(path)).size;
    await fsp.appendFile(path, Buffer.from([1]));
    try {
      for (let i = 0; i < 4; i++) await tw.write(`blob${i}`, randomBytes(1 << 20));
      const out = await f.ok('commit', 't', '--json');
      const r = result(out);
      assert.deepEqual([r?.imageKind, r?.packMethod], ['layer', 'writer']);
      assert.match(out.stderr, /damaged: size .*: packing a layer, not a new base/);
      await assertSameTree(f.model, f.tree, 'live', { live: true });
    } finally {
      await fsp.truncate(path, size);
    }
    await f.ok('stop', 't');
    await f.ok('start', 't');
    await assertSameTree(f.model, f.tree, 'the base and the layer');
    await f.ok('stop', 't');
  });
});
