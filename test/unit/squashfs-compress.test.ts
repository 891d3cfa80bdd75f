/**
 * The writer's metadata compressors: every block they make decodes to the
 * input again, and LZ4 blocks keep the format's end rules (the kernel's
 * decoder rejects blocks that do not; that is how this encoder came to be).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { inflateSync } from 'node:zlib';
import lz4 from 'lz4js';
import { spawnSync } from 'node:child_process';
import { lz4Block, metadataCompressor, prepareEncoders } from '../../src/squashfs/compress.js';
import { makeDecompressor } from '../../src/squashfs/decompress.js';
import { xzEncode } from '../../src/squashfs/xz-encode.js';

function samples(): Buffer[] {
  const out: Buffer[] = [
    Buffer.alloc(0),
    Buffer.from('a'),
    Buffer.alloc(13, 0x61),
    Buffer.alloc(8192),
  ];
  let x = 12345;
  const rnd = (): number => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 16;
  for (let k = 0; k < 200; k++) {
    const n = 1 + (rnd() % 8192);
    const b = Buffer.alloc(n);
    const alphabet = 1 + (rnd() % 40);
    for (let i = 0; i < n; i++)
      b[i] = rnd() % 4 === 0 && i > 20 ? (b[i - 1 - (rnd() % 20)] ?? 0) : rnd() % alphabet;
    out.push(b);
  }
  return out;
}

/** Walk an LZ4 block's sequences; returns where the last match ends relative to the end. */
function lastMatchGap(block: Buffer, outLen: number): number {
  let ip = 0;
  let op = 0;
  let gap = Infinity;
  while (ip < block.length) {
    const token = block[ip++] ?? 0;
    let lit = token >> 4;
    if (lit === 15) for (let b = 255; b === 255; lit += b) b = block[ip++] ?? 0;
    ip += lit;
    op += lit;
    if (ip >= block.length) break;
    ip += 2;
    let ml = (token & 15) + 4;
    if ((token & 15) === 15) for (let b = 255; b === 255; ml += b) b = block[ip++] ?? 0;
    const start = op;
    op += ml;
    gap = Math.min(gap, outLen - start);
    assert.ok(outLen - op >= 5, 'the last 5 bytes are literals');
  }
  return gap;
}

describe('metadata compressors', () => {
  it('xz blocks are xz streams that xz-embedded and xz(1) decode to their input', async () => {
    const xz = metadataCompressor('xz');
    const dec = makeDecompressor('xz');
    let compressed = 0;
    for (const s of samples()) {
      if (s.length === 0) continue;
      const c = xzEncode(s);
      assert.ok((await dec.decompress(c, 65536)).equals(s));
      if (xz.compress(s)) compressed++;
    }
    assert.ok(compressed > 100, `most samples compress (${compressed})`);
    const text = Buffer.from('squashtree '.repeat(700));
    const r = spawnSync('xz', ['-dc'], { input: xzEncode(text) });
    if (r.error) return; // no xz(1) here
    assert.equal(r.status, 0, r.stderr.toString());
    assert.ok(r.stdout.equals(text));
  });

  it('xz blocks over 64 KiB are several LZMA2 chunks that both decoders read back', async () => {
    const dec = makeDecompressor('xz');
    // Matches that reach back across chunks, incompressible stretches, sizes off the chunk size.
    const parts = samples();
    const big = Buffer.concat([...parts, ...parts, Buffer.from('tail '.repeat(3000))]);
    for (const n of [65537, 131072, 200_001, 1 << 20]) {
      const s = Buffer.alloc(n);
      for (let i = 0; i < n; i += big.length) big.copy(s, i, 0, Math.min(big.length, n - i));
      const c = xzEncode(s);
      assert.ok((await dec.decompress(c, n)).equals(s), `${n} bytes`);
      const r = spawnSync('xz', ['-dc'], { input: c, maxBuffer: 4 << 20 });
      if (r.error) continue; // no xz(1) here
      assert.equal(r.status, 0, r.stderr.toString());
      assert.ok(r.stdout.equals(s), `${n} bytes through xz(1)`);
    }
    assert.throws(() => xzEncode(Buffer.alloc((1 << 20) + 1)));
  });

  it('xz blocks of records (repeat distances, short reps, lazy matches) decode to their input', async () => {
    const dec = makeDecompressor('xz');
    // Inode-table-like records: fixed layout, counters, runs of equal bytes at the same distances.
    for (const [n, width] of [
      [8192, 32],
      [65536, 24],
      [131072, 40],
      [300_000, 17],
    ] as const) {
      const s = Buffer.alloc(n);
      for (let i = 0; i + width <= n; i += width) {
        s.writeUInt32LE((i / width) >>> 0, i);
        s.writeUInt16LE(0o644, i + 4);
        s.write('ebuild', i + 8, 'latin1');
        if ((i / width) % 7 === 0) s[i + 14] = (i >>> 8) & 0xff;
      }
      const c = xzEncode(s);
      assert.ok(c.length < n / 4, `${n} bytes of records compress (${c.length})`);
      assert.ok((await dec.decompress(c, n)).equals(s), `${n} bytes`);
      const r = spawnSync('xz', ['-dc'], { input: c, maxBuffer: 4 << 20 });
      if (r.error) continue; // no xz(1) here
      assert.equal(r.status, 0, r.stderr.toString());
      assert.ok(r.stdout.equals(s), `${n} bytes through xz(1)`);
    }
  });

  it('lz4 blocks decode to their input and keep the end rules', () => {
    const table = new Int32Array(4096);
    const dst = Buffer.alloc(8192 + 128);
    for (const s of samples()) {
      const n = lz4Block(s, dst, table);
      const back = Buffer.alloc(s.length);
      const end = lz4.decompressBlock(dst, back, 0, n, 0);
      assert.equal(end, s.length);
      assert.ok(back.equals(s));
      assert.ok(
        lastMatchGap(dst.subarray(0, n), s.length) >= 12,
        'the last match starts 12 bytes before the end',
      );
    }
  });

  it('gzip blocks are zlib streams; lzo, and zstd until its encoder is loaded, store blocks as they are', async () => {
    const gz = metadataCompressor('gzip', { level: 9 });
    for (const s of samples()) {
      const c = gz.compress(s);
      if (c) assert.ok(inflateSync(c).equals(s));
    }
    for (const name of ['zstd', 'lzo'] as const) {
      const m = metadataCompressor(name);
      assert.equal(m.compresses, false);
      assert.equal(m.compress(Buffer.alloc(100)), null);
    }
    // Loaded, zstd makes frames the reader's decoder reads back.
    await prepareEncoders('zstd');
    const z = metadataCompressor('zstd', { level: 15 });
    assert.equal(z.compresses, true);
    const decoder = makeDecompressor('zstd');
    for (const s of samples()) {
      const c = z.compress(s);
      if (c) assert.ok((await decoder.decompress(c, 8192)).equals(s));
    }
  });
});
