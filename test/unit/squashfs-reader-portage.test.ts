/**
 * The native SquashFS reader against unsquashfs on a 13k-file portage tree
 * (src/corpus/portage.ts). Needs root, as squashfs-reader.test.ts.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SquashfsImage } from '../../src/squashfs/index.js';
import { generateRepo } from '../../src/corpus/portage.js';
import { mksquashfs } from '../helpers/awkward-tree.js';
import { unsquashfsListing, readerListing } from '../helpers/squashfs-views.js';

const isRoot = process.geteuid?.() === 0;

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
