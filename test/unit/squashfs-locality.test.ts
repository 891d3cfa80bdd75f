/**
 * The layout of what the writer writes, against mksquashfs's of the same
 * tree: how many metadata blocks (and fragment bytes) a cold walk through
 * the kernel's squashfs decompresses, computed from the images alone
 * (kernelWalkCost: the kernel's 8-block metadata and 3-block fragment
 * caches, round-robin). A compacted base (a base and a one-day layer
 * merged) and a rewrite of a fresh image must cost no more than a fresh
 * mksquashfs image for find | xargs stat, ls -lR and tar, and so must the
 * packer's image of the same directory and a new base written from a
 * base image and a directory. Runs as any user:
 * mksquashfs packs the trees, whiteouts are pseudo character devices, the
 * writer writes into memory.
 */
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applySync, generateRepo } from '../../src/corpus/portage.js';
import {
  BufferOutput,
  SquashfsImage,
  writeImage,
  writeMergedImage,
} from '../../src/squashfs/index.js';
import { kernelWalkCost, type WalkCost } from '../../src/squashfs/locality.js';
import { layerOf } from '../helpers/layer-dir.js';

const haveTools = spawnSync('mksquashfs', ['-version']).status !== null;

function sh(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
}

function pack(src: string, out: string, pseudo: string[] = []): void {
  const p = pseudo.flatMap((d) => ['-p', d]);
  sh('mksquashfs', [src, out, '-noappend', '-quiet', '-no-progress', ...p]);
}

/** The pseudo definitions' whiteouts as character devices 0/0 in the layer dir (any user may make them). */
async function mknodWhiteouts(layer: string, pseudo: readonly string[]): Promise<void> {
  for (const p of pseudo) {
    const rel = p.split(' ')[0] ?? '';
    await fsp.mkdir(join(layer, rel, '..'), { recursive: true });
    sh('mknod', [join(layer, rel), 'c', '0', '0']);
  }
}

async function tmp(t: TestContext): Promise<string> {
  const dir = await fsp.mkdtemp(join(tmpdir(), 'st-locality-'));
  t.after(() => fsp.rm(dir, { recursive: true, force: true }));
  return dir;
}

async function cost(bytes: Buffer): Promise<Record<string, WalkCost>> {
  const img = await SquashfsImage.fromBuffer(bytes);
  try {
    return {
      stat: await kernelWalkCost(img, { walk: 'stat' }),
      ls: await kernelWalkCost(img, { walk: 'ls' }),
      read: await kernelWalkCost(img, { walk: 'read' }),
    };
  } finally {
    await img.close();
  }
}

function assertNoWorse(
  mine: Record<string, WalkCost>,
  fresh: Record<string, WalkCost>,
  what: string,
): void {
  for (const walk of ['stat', 'ls', 'read']) {
    const m = mine[walk];
    const f = fresh[walk];
    assert.ok(m && f);
    assert.equal(m.entries, f.entries, `${what}: the same tree (${walk})`);
    assert.ok(
      m.metadataBlocks <= f.metadataBlocks,
      `${what}, ${walk} walk: ${m.metadataBlocks} metadata blocks decompressed, mksquashfs's image ${f.metadataBlocks}`,
    );
  }
  // Every fragment block is decoded once when the tails are read in order.
  const m = mine.read;
  assert.ok(m);
  assert.equal(
    m.fragmentRereads,
    0,
    `${what}, read walk: ${m.fragmentRereads} fragment blocks decoded again after the cache dropped them`,
  );
}

/** A tree with big directories: an md5-cache-like one (5,000 entries) and an include-like one with subdirs. */
async function bigDirs(root: string, seed: number): Promise<void> {
  await fsp.mkdir(join(root, 'md5-cache'), { recursive: true });
  for (let i = 0; i < 5000; i++) {
    const v = (i * 7 + seed) % 13;
    await fsp.writeFile(
      join(root, 'md5-cache', `package-name-${i}-1.${v}`),
      `KEYWORDS=amd64\nSLOT=0\n_md5_=${(i * 2654435761 + seed) >>> 0}\n`,
    );
  }
  for (let d = 0; d < 40; d++) {
    const dir = d % 4 === 0 ? join(root, 'include', `sub${d}`) : join(root, 'include');
    await fsp.mkdir(dir, { recursive: true });
    for (let i = 0; i < 40; i++) {
      await fsp.writeFile(
        join(dir, `header-${d}-${i}.h`),
        `#define H${d}_${i} ${seed}\n`.repeat(1 + (i % 30)),
      );
    }
  }
}

describe(
  'squashfs writer: layout against mksquashfs',
  { skip: !haveTools && 'needs squashfs-tools' },
  () => {
    for (const shape of ['portage', 'big directories'] as const) {
      it(`a compacted base, a rewrite, a packed directory and a new base from one cost a cold walk no more than mksquashfs's image (${shape})`, async (t) => {
        const dir = await tmp(t);
        const a = join(dir, 'a');
        const b = join(dir, 'b');
        if (shape === 'portage') {
          const shapeOf = { categories: 12, packagesPerCategory: 30, seed: 7 };
          const base = await generateRepo(a, shapeOf);
          await generateRepo(b, shapeOf);
          // About a day: 1% of the packages (Gentoo changes ~1,500 of 200,000 files a day).
          await applySync(b, base, 11, 4);
        } else {
          await bigDirs(a, 1);
          await bigDirs(b, 1);
          for (let i = 0; i < 5000; i += 37) {
            await fsp.writeFile(
              join(b, 'md5-cache', `package-name-${i}-1.${(i * 7 + 1) % 13}`),
              `changed ${i}\n`,
            );
          }
          for (let i = 3; i < 5000; i += 97)
            await fsp.rm(join(b, 'md5-cache', `package-name-${i}-1.${(i * 7 + 1) % 13}`));
          for (let i = 0; i < 60; i++)
            await fsp.writeFile(join(b, 'md5-cache', `new-package-${i}-2.0`), `new ${i}\n`);
        }
        const whiteouts = await layerOf(a, b, join(dir, 'layer'));
        pack(a, join(dir, 'a.sqfs'));
        pack(join(dir, 'layer'), join(dir, 'layer.sqfs'), whiteouts);
        pack(b, join(dir, 'b.sqfs'));
        const fresh = await cost(await fsp.readFile(join(dir, 'b.sqfs')));

        const merged = new BufferOutput();
        await writeMergedImage([join(dir, 'a.sqfs'), join(dir, 'layer.sqfs')], merged, {
          verify: true,
        });
        assertNoWorse(await cost(merged.bytes), fresh, 'the compacted base');

        const rewritten = new BufferOutput();
        await writeMergedImage([join(dir, 'b.sqfs')], rewritten, { verify: true });
        assertNoWorse(await cost(rewritten.bytes), fresh, 'the rewrite');

        // The packer: the tree packed from its directory, and a new base from a's image and the layer.
        const packed = new BufferOutput();
        await writeImage([{ dir: b }], packed, { verify: true, compression: { name: 'gzip' } });
        assertNoWorse(await cost(packed.bytes), fresh, 'the packed directory');
        const rebased = new BufferOutput();
        await mknodWhiteouts(join(dir, 'layer'), whiteouts);
        await writeImage([join(dir, 'a.sqfs'), { dir: join(dir, 'layer') }], rebased, {
          verify: true,
        });
        assertNoWorse(
          await cost(rebased.bytes),
          fresh,
          'the new base from an image and a directory',
        );
      });
    }
  },
);
