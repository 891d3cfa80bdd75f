/**
 * Dead bytes in fragment blocks across merges (fragment-dead.ts): a block a
 * merge copies whole keeps the tails of files it no longer shows, and the
 * next merge must still see them as dead, even though no inode of its input
 * names them; a tail two files share counts once; and a merge whose blocks
 * are each mostly alive still repacks when together they carry more dead
 * bytes than the budget. Runs as any user: mksquashfs packs the trees,
 * whiteouts are pseudo character devices, the writer writes files in a
 * temp dir.
 */
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeMergedImage } from '../../src/squashfs/index.js';
import { layerOf } from '../helpers/layer-dir.js';
import { noise } from '../helpers/tree.js';

const haveTools = spawnSync('mksquashfs', ['-version']).status !== null;
const FILES = 400;

function pack(src: string, out: string, pseudo: string[] = []): void {
  const p = pseudo.flatMap((d) => ['-p', d]);
  const r = spawnSync('mksquashfs', [src, out, '-noappend', '-quiet', '-no-progress', ...p], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`mksquashfs ${src}: ${r.stderr}`);
}

async function tmp(t: TestContext): Promise<string> {
  const dir = await fsp.mkdtemp(join(tmpdir(), 'st-dead-'));
  t.after(() => fsp.rm(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * FILES tails of 200 bytes each (one fragment block), 40 files with one
 * shared tail, and with `big` a file of incompressible blocks; without the
 * files `gone` drops.
 */
async function tree(root: string, big: boolean, gone: (i: number) => boolean): Promise<void> {
  await fsp.mkdir(join(root, 'small'), { recursive: true });
  await fsp.mkdir(join(root, 'same'), { recursive: true });
  for (let i = 0; i < FILES; i++) {
    if (gone(i)) continue;
    const body = `file ${i} `.padEnd(200, 'abcdefghijklmnop'.charAt(i % 16));
    await fsp.writeFile(join(root, 'small', `f${i}`), body);
  }
  for (let i = 0; i < 40; i++)
    await fsp.writeFile(join(root, 'same', `d${i}`), 'shared '.repeat(28));
  if (big) await fsp.writeFile(join(root, 'big'), noise(3 * 1024 * 1024, 0x9e3779b9));
}

/** Merges `images` into dir/name; returns the writer's report. */
async function merge(dir: string, name: string, images: string[]) {
  return writeMergedImage(images, join(dir, name), { verify: true });
}

describe('dead bytes in fragment blocks', { skip: !haveTools && 'mksquashfs is missing' }, () => {
  it('sees the dead tails an earlier merge kept, and counts a shared tail once', async (t) => {
    const dir = await tmp(t);
    const [a, b, c] = ['a', 'b', 'c'].map((n) => join(dir, n));
    // b drops 1 in 16 of the tails (6%), c another 1 in 16: each alone is under the 10% rule.
    await tree(a ?? '', true, () => false);
    await tree(b ?? '', true, (i) => i % 16 === 0);
    await tree(c ?? '', true, (i) => i % 16 === 0 || i % 16 === 8);
    pack(a ?? '', join(dir, 'a.sqfs'));
    pack(join(dir, 'l1'), join(dir, 'l1.sqfs'), await layerOf(a ?? '', b ?? '', join(dir, 'l1')));

    const first = await merge(dir, 'm1.sqfs', [join(dir, 'a.sqfs'), join(dir, 'l1.sqfs')]);
    assert.equal(first.repackedFragments, 0, 'a block 6% dead in a large image is copied whole');
    assert.ok(first.wastedBytes > 0, 'and its dead bytes are counted');

    pack(join(dir, 'l2'), join(dir, 'l2.sqfs'), await layerOf(b ?? '', c ?? '', join(dir, 'l2')));
    const second = await merge(dir, 'm2.sqfs', [join(dir, 'm1.sqfs'), join(dir, 'l2.sqfs')]);
    // The block is now 12.5% dead: 6% that m1 names no file for, 6% that l2 deletes.
    assert.equal(second.repackedFragments, 1, 'the block is repacked');
    assert.equal(second.wastedBytes, 0, 'and no dead bytes are left');
    const fresh = join(dir, 'c.sqfs');
    pack(c ?? '', fresh);
    const ratio = second.bytes / (await fsp.stat(fresh)).size;
    assert.ok(ratio < 1.01, `two merges stay within 1% of a fresh image (${ratio.toFixed(4)})`);
  });

  it('repacks blocks each mostly alive when together they pass the budget', async (t) => {
    const dir = await tmp(t);
    const [a, b] = ['a', 'b'].map((n) => join(dir, n));
    // No large file: the block's dead 6% is most of what the image would waste.
    await tree(a ?? '', false, () => false);
    await tree(b ?? '', false, (i) => i % 16 === 0);
    pack(a ?? '', join(dir, 'a.sqfs'));
    pack(join(dir, 'l1'), join(dir, 'l1.sqfs'), await layerOf(a ?? '', b ?? '', join(dir, 'l1')));
    const r = await merge(dir, 'm1.sqfs', [join(dir, 'a.sqfs'), join(dir, 'l1.sqfs')]);
    assert.equal(r.repackedFragments, 1, 'the block is repacked');
    assert.equal(r.wastedBytes, 0);
  });
});
