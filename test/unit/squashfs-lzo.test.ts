/**
 * The LZO1X decoder on streams built by hand, one per instruction form and
 * state (each checked against the bytes the format says it makes), and on
 * hostile streams: truncated, over its limit, reaching before the output's
 * start, an end marker of the wrong length, bytes after the end, the
 * kernel's LZO-RLE. Pure logic: no root, no images (the images are in
 * test/e2e/lzo.test.ts, the fuzz in squashfs-lzo-fuzz.test.ts).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LzoError, lzo1xDecompress } from '../../src/squashfs/lzo.js';

const END = [0x11, 0x00, 0x00];
const bytes = (n: number, f: (i: number) => number): number[] =>
  Array.from({ length: n }, (_, i) => f(i) & 0xff);
/** Distinct-looking literals, so a copy from the wrong distance shows. */
const lit = (n: number, salt = 0): number[] => bytes(n, (i) => (i * 7 + salt * 13 + 1) % 251);
const decode = (stream: number[], limit = 1 << 20): Buffer =>
  lzo1xDecompress(Uint8Array.from(stream), limit);
/** What copying len bytes from dist back appends to out (overlap repeats the pattern). */
function copied(out: number[], dist: number, len: number): number[] {
  const r = [...out];
  for (let i = 0; i < len; i++) r.push(r[r.length - dist] ?? -1);
  return r;
}
/** A first instruction that emits n literals (n >= 4): 0000LLLL or 0000 + zero bytes + remainder. */
function literalRun(data: number[]): number[] {
  const n = data.length - 3;
  if (n <= 15) return [n, ...data];
  let rest = n - 15;
  const zeros: number[] = [];
  while (rest > 255) {
    zeros.push(0);
    rest -= 255;
  }
  return [0, ...zeros, rest, ...data];
}
const rejects = (stream: number[], re: RegExp, limit?: number): void => {
  assert.throws(
    () => decode(stream, limit),
    (e) => e instanceof LzoError && re.test(e.message),
  );
};

describe('lzo1x decoder: each instruction', () => {
  it('a first byte above 17 copies that many literals less 17', () => {
    assert.deepEqual([...decode([17 + 5, ...lit(5), ...END])], lit(5));
    assert.deepEqual([...decode([255, ...lit(238), ...END])], lit(238));
    // 18..20 leave state 1..3; 21 and up a literal run (state 4).
    assert.deepEqual([...decode([18, 9, ...END])], [9]);
  });

  it('0000DDSS after 1-3 literals copies 2 bytes within 1 KiB', () => {
    // 3 literals, then D=2 H=0: distance 3, 2 bytes; S=1: one literal after.
    const out = copied(lit(3), 3, 2);
    out.push(0x55);
    assert.deepEqual([...decode([20, ...lit(3), (2 << 2) | 1, 0, 0x55, ...END])], out);
  });

  it('0000DDSS after a literal run copies 3 bytes from 2049-3072 back', () => {
    const data = lit(3000);
    // distance = (H << 2) + D + 2049 = (100 << 2) + 3 + 2049 = 2452; S=2: two literals.
    const out = [...copied(data, 2452, 3), 1, 2];
    assert.deepEqual([...decode([...literalRun(data), (3 << 2) | 2, 100, 1, 2, ...END])], out);
  });

  it('0000LLLL after no literals is a run of 4 or more, with 255 per zero byte', () => {
    for (const n of [4, 18, 19, 273, 274, 1000]) {
      const data = lit(n, n);
      // A match with S=0 first, so the run is not the stream's first instruction.
      const head = [17 + 4, ...lit(4), 0x40 | (0 << 2) | 0, 0]; // 3 bytes from distance 1, S=0
      const out = [...copied(lit(4), 1, 3), ...data];
      assert.deepEqual([...decode([...head, ...literalRun(data), ...END])], out, `run of ${n}`);
    }
  });

  it('01LDDDSS and 1LLDDDSS copy 3-8 bytes within 2 KiB', () => {
    const data = lit(2100);
    for (const len of [3, 4, 5, 6, 7, 8]) {
      for (const dist of [1, 2, 8, 9, 2048]) {
        const h = (dist - 1) >> 3;
        const d = (dist - 1) & 7;
        const op = len <= 4 ? 0x40 | ((len - 3) << 5) : 0x80 | ((len - 5) << 5);
        const out = copied(data, dist, len);
        const got = decode([...literalRun(data), op | (d << 2), h, ...END]);
        assert.deepEqual([...got], out, `len ${len} dist ${dist}`);
      }
    }
  });

  it('001LLLLL copies within 16 KiB, long lengths and overlapping runs included', () => {
    const data = lit(17000);
    for (const [dist, len] of [
      [1, 3],
      [1, 33],
      [1, 34],
      [2, 300],
      [5, 1000],
      [16384, 40],
      [700, 600],
    ] as const) {
      const code = len - 2 <= 31 ? [0x20 | (len - 2)] : longCode(0x20, 31, len - 2);
      const d = (dist - 1) << 2;
      const out = copied(data, dist, len);
      const got = decode([...literalRun(data), ...code, d & 0xff, d >> 8, ...END]);
      assert.deepEqual([...got], out, `len ${len} dist ${dist}`);
    }
  });

  it('0001HLLL copies from 16-48 KiB back; the S bits of its distance add literals', () => {
    const data = lit(50000);
    for (const [dist, len] of [
      [16385, 3],
      [16386, 9],
      [32768, 12],
      [49151, 300],
    ] as const) {
      const far = dist - 16384;
      const hi = far >> 14;
      const d = (far & 0x3fff) << 2;
      const code =
        len - 2 <= 7 ? [0x10 | (hi << 3) | (len - 2)] : longCode(0x10 | (hi << 3), 7, len - 2);
      const out = [...copied(data, dist, len), 0xaa, 0xbb, 0xcc];
      const got = decode([
        ...literalRun(data),
        ...code,
        (d | 3) & 0xff,
        d >> 8,
        0xaa,
        0xbb,
        0xcc,
        ...END,
      ]);
      assert.deepEqual([...got], out, `len ${len} dist ${dist}`);
    }
  });

  it('the end marker alone is an empty block; its S bits are ignored, as the kernel does', () => {
    assert.equal(decode(END).length, 0);
    assert.deepEqual([...decode([21, ...lit(4), 0x11, 0x03, 0x00])], lit(4));
  });
});

/** A length in the opcode's bits, or (when it does not fit) 0 then 255s as zero bytes. */
function longCode(op: number, bits: number, n: number): number[] {
  let rest = n - bits;
  const zeros: number[] = [];
  while (rest > 255) {
    zeros.push(0);
    rest -= 255;
  }
  return [op, ...zeros, rest];
}

describe('lzo1x decoder: hostile streams', () => {
  it('refuses an empty block and one that ends inside an instruction', () => {
    rejects([], /empty block/);
    rejects([21, ...lit(4)], /ends inside an instruction/);
    rejects([21, ...lit(4), 0x20], /ends inside an instruction/);
    rejects([21, ...lit(4), 0x20, 0x00], /ends inside an instruction/);
    rejects([21, ...lit(4), 0x11, 0x00], /ends inside an instruction/);
    rejects([0, 0, 0, 0], /ends inside an instruction/); // a length of zero bytes only
  });

  it('refuses literals the block does not hold', () => {
    rejects([255, ...lit(10)], /238 literals, but 10 bytes are left/);
    rejects([0, 0, 0, 5], /literals, but 0 bytes are left/);
  });

  it('refuses a match before the start of the output', () => {
    rejects([21, ...lit(4), 0x40 | (4 << 2), 0], /a match 5 bytes back, but only 4 are written/);
    rejects([21, ...lit(4), 0x20 | 1, 0xfc, 0xff], /16384 bytes back/);
    rejects([21, ...lit(4), 0x11, 0x04, 0x00], /16385 bytes back/);
    rejects([0x10, 0x01, 0x04, 0x00], /ends inside|bytes back/);
  });

  it('refuses output past the limit, for literals and for matches', () => {
    rejects([21, ...lit(4), ...END], /limit of 3/, 3);
    rejects([21, ...lit(4), 0x20, 0, 250, 0, 0, ...END], /passes|pass the block's limit/, 100);
    assert.equal(decode([21, ...lit(4), 0x20 | 20, 0, 0, ...END], 26).length, 26);
  });

  it('refuses an end marker of another length, and bytes after the end', () => {
    rejects([21, ...lit(4), 0x12, 0x00, 0x00], /end marker with length 4/);
    rejects([21, ...lit(4), ...END, 0], /1 bytes follow the end/);
  });

  it('refuses the kernel-only LZO-RLE bitstream', () => {
    rejects([17, 1, 21, ...lit(4), ...END], /LZO-RLE bitstream \(version 1\)/);
  });

  it('stays linear on a block of zeros (a length that never ends)', () => {
    const zeros = new Array<number>(1 << 20).fill(0);
    rejects(zeros, /ends inside an instruction/);
    // A length of 255 x 4000 literals: refused before any copy, by the limit.
    rejects([0, ...new Array<number>(4000).fill(0), 1], /literals, but 0 bytes are left/);
  });
});
