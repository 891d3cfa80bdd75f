/**
 * Sparse files (issue 14.9): a 16 GiB sparse file made a commit of a 4 KiB
 * layer take 58 s, because the copy of the upper went to the store's disk
 * (its apparent size did not fit the RAM staging), where mksquashfs and the
 * check read every hole through the page cache. The copy keeps the holes
 * and is staged by what the file allocates; the checks compare bytes, and
 * a hole that holds data after all is still found.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { mountsBelow, needRoot, sandbox } from '../helpers/env.js';
import { cli } from '../helpers/cli.js';
import { initTree } from '../helpers/setup.js';
import { compareTrees } from '../../src/image/compare.js';
import { matchImage } from '../../src/image/match.js';
import { SquashfsImage } from '../../src/squashfs/index.js';

const GiB = 2 ** 30;
const ACK = { SQUASHTREE_TEST_FAULT_ACK: 'kill-me-i-am-a-test' };

/** Bigger than the RAM staging took by apparent size (a quarter of MemAvailable). */
function beyondStagingLimit(): number {
  const kb = Number(/^MemAvailable:\s+(\d+)/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1]);
  return Math.max(4, Math.ceil((kb * 1024) / 4 / GiB) + 1) * GiB;
}

async function sparseFile(path: string, size: number, data: [number, string][]): Promise<void> {
  const fh = await fsp.open(path, 'w');
  try {
    await fh.truncate(size);
    for (const [at, text] of data) await fh.write(Buffer.from(text), 0, text.length, at);
  } finally {
    await fh.close();
  }
}

describe('sparse files', { concurrency: false }, () => {
  it('a commit copies a sparse file with its holes, staged in RAM by what it allocates', async (t) => {
    if (!needRoot(t)) return;
    const f = await initTree(t);
    await f.ok('start', 't');
    const size = beyondStagingLimit();
    const file = join(f.tree, 'disk.img');
    await sparseFile(file, size, [
      [0, 'head'],
      [size / 2 + 12345, 'middle'],
      [size - 4, 'tail'],
    ]);
    t.diagnostic(`sparse file of ${size / GiB} GiB`);
    // Held at the point after the copy: where it went, and what it takes there.
    const held = await cli(['--config', f.sb.config, '--state-dir', f.sb.state, 'commit', 't'], {
      env: { ...ACK, SQUASHTREE_TEST_FAULT: 'commit:after-capture' },
    });
    assert.notEqual(held.status, 0);
    const stage = join(f.sb.state, 't', 'stage');
    assert.ok(mountsBelow(stage).includes(stage), 'the copy is on the RAM staging tmpfs');
    const inStore = (await fsp.readdir(f.store)).filter((n) => n.startsWith('.stage-'));
    assert.deepEqual(inStore, [], 'no copy on the store disk');
    const copy = await fsp.stat(join(stage, 'upper', 'disk.img'));
    assert.equal(copy.size, size);
    assert.ok(copy.blocks * 512 <= 1 << 20, `the copy allocates ${copy.blocks * 512} bytes`);
    // The next commit takes it from there.
    const r = await f.ok('commit', 't', '--json');
    const layer = (JSON.parse(r.stdout) as { trees: { result: { layerBytes: number } }[] }).trees[0]
      ?.result.layerBytes;
    assert.ok(layer !== undefined && layer < 1 << 20, `layer of ${layer} bytes`);
    await f.ok('stop', 't', '--no-compact');
    await f.ok('start', 't');
    const st = await fsp.stat(file);
    assert.equal(st.size, size);
    const fh = await fsp.open(file, 'r');
    const buf = Buffer.alloc(6);
    await fh.read(buf, 0, 6, size / 2 + 12345);
    await fh.close();
    assert.equal(buf.toString(), 'middle');
    await f.ok('stop', 't');
  });

  it('the image checks find data where the image has a hole', async (t) => {
    if (!needRoot(t)) return;
    const sb = await sandbox(t);
    const src = join(sb.dir, 'src');
    await fsp.mkdir(src);
    await sparseFile(join(src, 'sparse'), 64 << 20, [[1 << 20, 'data']]);
    const image = join(sb.dir, 'i.sqfs');
    execFileSync('mksquashfs', [src, image, '-noappend', '-quiet', '-no-progress']);
    const check = async (): Promise<{ match: string[]; mount: string[] }> => {
      const img = await SquashfsImage.open(image);
      const m = await matchImage(img, src).finally(() => img.close());
      const mnt = join(sb.dir, 'mnt');
      await fsp.mkdir(mnt, { recursive: true });
      execFileSync('mount', ['-t', 'squashfs', '-o', 'loop,ro', image, mnt]);
      try {
        const c = await compareTrees(src, mnt, { contents: true, ignoreMtime: true });
        return {
          match: m.differences.map((d) => d.what),
          mount: c.differences.map((d) => d.what),
        };
      } finally {
        execFileSync('umount', [mnt]);
      }
    };
    assert.deepEqual(await check(), { match: [], mount: [] });
    // One byte in the middle of a hole the image stores as sparse blocks.
    const fh = await fsp.open(join(src, 'sparse'), 'r+');
    const mtime = (await fh.stat()).mtime;
    await fh.write(Buffer.from('x'), 0, 1, 40 << 20);
    await fh.close();
    await fsp.utimes(join(src, 'sparse'), mtime, mtime);
    assert.deepEqual(await check(), { match: ['content differs'], mount: ['content differs'] });
    // A source of holes only is known to be zeros without reading it: the image must be zeros.
    await fsp.rm(join(src, 'sparse'));
    await sparseFile(join(src, 'sparse'), 64 << 20, []);
    await fsp.utimes(join(src, 'sparse'), mtime, mtime);
    assert.equal((await fsp.stat(join(src, 'sparse'))).blocks, 0);
    assert.deepEqual(await check(), { match: ['content differs'], mount: ['content differs'] });
    execFileSync('mksquashfs', [src, image, '-noappend', '-quiet', '-no-progress']);
    assert.deepEqual(await check(), { match: [], mount: [] });
  });
});
