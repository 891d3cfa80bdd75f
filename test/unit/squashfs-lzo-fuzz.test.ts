/**
 * Fuzz the LZO1X decoder with real blocks: the inode-table and fragment
 * blocks of mksquashfs lzo images (lzo1x_1 and lzo1x_999, 4 KiB and 1 MiB
 * blocks) are cut short at every length (or, for big blocks, at 300) and
 * mutated 20,000 times (bit flips, bytes overwritten, ranges dropped,
 * repeated or spliced from another block, garbage appended, a smaller
 * limit). The only acceptable outcomes are a result within the limit and an
 * LzoError (never a TypeError or RangeError from a bad index). Deterministic:
 * SQUASHFS_LZO_FUZZ_SEED and SQUASHFS_LZO_FUZZ_ITERATIONS run other campaigns.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Random } from '../../src/corpus/random.js';
import { generateRepo } from '../../src/corpus/portage.js';
import { SquashfsImage } from '../../src/squashfs/index.js';
import { LzoError, lzo1xDecompress } from '../../src/squashfs/lzo.js';

const SEED = Number(process.env.SQUASHFS_LZO_FUZZ_SEED ?? 0x1a0_5eed);
const ITERATIONS = Number(process.env.SQUASHFS_LZO_FUZZ_ITERATIONS ?? 20_000);

interface Block {
  name: string;
  raw: Buffer;
  limit: number;
  /** What it decodes to, as the reader read it. */
  plain: Buffer;
}

function mksquashfs(src: string, out: string, args: string[]): void {
  const r = spawnSync(
    'mksquashfs',
    [src, out, '-noappend', '-quiet', '-no-progress', '-comp', 'lzo', ...args],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`mksquashfs ${args.join(' ')}: ${r.stderr}`);
}

/** The compressed blocks of the inode table and every compressed fragment block. */
async function blocksOf(image: string, name: string): Promise<Block[]> {
  const img = await SquashfsImage.open(image);
  const out: Block[] = [];
  try {
    const sb = img.superblock;
    for (let pos = sb.inodeTableStart; pos < sb.directoryTableStart;) {
      const h = (await img.readRaw(pos, 2)).readUInt16LE(0);
      const size = h & 0x7fff;
      const raw = await img.readRaw(pos + 2, size);
      if (!(h & 0x8000)) {
        out.push({
          name: `${name} inode block at ${pos}`,
          raw,
          limit: 8192,
          plain: Buffer.alloc(0),
        });
      }
      pos += 2 + size;
    }
    const frags = await img.fragmentEntries();
    for (const [i, f] of frags.entries()) {
      if (f.word & 0x1000000) continue;
      out.push({
        name: `${name} fragment ${i}`,
        raw: await img.readRaw(f.start, f.word & 0xffffff),
        limit: sb.blockSize,
        plain: await img.fragmentData(i),
      });
    }
  } finally {
    await img.close();
  }
  for (const b of out) if (b.plain.length === 0) b.plain = lzo1xDecompress(b.raw, b.limit);
  return out;
}

function mutate(blocks: readonly Block[], r: Random): { raw: Buffer; limit: number; desc: string } {
  const b = r.pick(blocks);
  let raw = Buffer.from(b.raw);
  let limit = b.limit;
  const descs: string[] = [b.name];
  const at = (): number => r.int(0, Math.max(0, raw.length - 1));
  for (let k = r.int(1, 3); k > 0; k--) {
    const kind = r.int(0, 8);
    if (kind === 0) {
      const p = at();
      raw[p] = (raw[p] ?? 0) ^ (1 << r.int(0, 7));
      descs.push(`flip @${p}`);
    } else if (kind === 1) {
      const p = at();
      raw[p] = r.pick([0x00, 0x01, 0x10, 0x11, 0x20, 0x40, 0x7f, 0x80, 0xff]);
      descs.push(`byte @${p}`);
    } else if (kind === 2) {
      const n = r.int(0, raw.length);
      raw = raw.subarray(0, n);
      descs.push(`cut to ${n}`);
    } else if (kind === 3) {
      const p = at();
      const n = r.int(1, 64);
      raw = Buffer.concat([raw.subarray(0, p), raw.subarray(p + n)]);
      descs.push(`drop ${n} @${p}`);
    } else if (kind === 4) {
      const p = at();
      const n = r.int(1, 64);
      raw = Buffer.concat([raw.subarray(0, p + n), raw.subarray(p)]);
      descs.push(`repeat ${n} @${p}`);
    } else if (kind === 5) {
      const other = r.pick(blocks).raw;
      const p = at();
      raw = Buffer.concat([raw.subarray(0, p), other.subarray(r.int(0, other.length - 1))]);
      descs.push(`splice @${p}`);
    } else if (kind === 6) {
      const junk = Buffer.from(Array.from({ length: r.int(1, 16) }, () => r.int(0, 255)));
      raw = Buffer.concat([raw, junk]);
      descs.push(`append ${junk.length}`);
    } else if (kind === 7) {
      const p = at();
      for (let i = p; i < Math.min(raw.length, p + r.int(1, 32)); i++) raw[i] = r.int(0, 255);
      descs.push(`scribble @${p}`);
    } else {
      limit = r.int(0, limit);
      descs.push(`limit ${limit}`);
    }
  }
  return { raw, limit, desc: descs.join(', ') };
}

describe('lzo1x decoder fuzz', () => {
  let dir = '';
  const blocks: Block[] = [];

  before(async () => {
    dir = await fsp.mkdtemp(join(tmpdir(), 'squashfs-lzo-fuzz-'));
    const src = join(dir, 'src');
    await generateRepo(src, { categories: 6, packagesPerCategory: 12, seed: 14 });
    const r = new Random(15);
    // Half-compressible data: long literal runs between matches.
    const mixed = Buffer.alloc(300_000);
    for (let i = 0; i < mixed.length; i++) mixed[i] = i % 512 < 256 ? r.int(0, 255) : i % 7;
    await fsp.writeFile(join(src, 'mixed.bin'), mixed);
    for (const [alg, bs] of [
      ['lzo1x_1', '4K'],
      ['lzo1x_999', '4K'],
      ['lzo1x_999', '1M'],
    ] as const) {
      const image = join(dir, `${alg}-${bs}.sqfs`);
      mksquashfs(src, image, ['-Xalgorithm', alg, '-b', bs]);
      blocks.push(...(await blocksOf(image, `${alg} -b ${bs}`)));
    }
  });
  after(async () => {
    if (dir) await fsp.rm(dir, { recursive: true, force: true });
  });

  it('the real blocks decode to what the reader reads', () => {
    assert.ok(blocks.length >= 20, `${blocks.length} blocks`);
    assert.ok(
      blocks.some((b) => b.limit === 1 << 20 && b.raw.length > 100_000),
      'a 1 MiB block',
    );
    for (const b of blocks) assert.ok(lzo1xDecompress(b.raw, b.limit).equals(b.plain), b.name);
  });

  it('refuses every block cut short, with an LzoError', () => {
    let cuts = 0;
    for (const b of blocks) {
      const n = b.raw.length;
      const step = Math.max(1, Math.floor(n / 300));
      for (let len = 0; len < n; len += step) {
        assert.throws(
          () => lzo1xDecompress(b.raw.subarray(0, len), b.limit),
          LzoError,
          `${b.name} cut to ${len}`,
        );
        cuts++;
      }
    }
    assert.ok(cuts > 5000, `${cuts} cuts`);
  });

  it(`survives ${ITERATIONS} mutated blocks with a bounded result or LzoError only`, (t) => {
    let ok = 0;
    let refused = 0;
    const failures: string[] = [];
    for (let i = 0; i < ITERATIONS; i++) {
      const m = mutate(blocks, new Random(SEED + i));
      try {
        const out = lzo1xDecompress(m.raw, m.limit);
        if (out.length > m.limit) failures.push(`${i} (${m.desc}): ${out.length} > ${m.limit}`);
        ok++;
      } catch (e) {
        if (e instanceof LzoError) refused++;
        else if (failures.length < 20) failures.push(`${i} (${m.desc}): ${String(e)}`);
      }
    }
    t.diagnostic(`${ITERATIONS} mutants: ${ok} decoded, ${refused} LzoError`);
    assert.deepEqual(failures, []);
    assert.equal(ok + refused, ITERATIONS);
    assert.ok(refused > ITERATIONS / 2, 'most mutants are caught');
  });

  it('random bytes decode within the limit or give an LzoError', () => {
    const r = new Random(SEED);
    for (let i = 0; i < 5000; i++) {
      const raw = Buffer.from(Array.from({ length: r.int(0, 200) }, () => r.int(0, 255)));
      const limit = r.int(0, 9000);
      try {
        assert.ok(lzo1xDecompress(raw, limit).length <= limit);
      } catch (e) {
        assert.ok(e instanceof LzoError, String(e));
      }
    }
  });
});
