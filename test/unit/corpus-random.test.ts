/** The seeded PRNG behind the corpus: same seed, same numbers, everywhere. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Random } from '../../src/corpus/random.js';

/** mulberry32 as published, written independently of the module under test. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const draw = (r: Random, n: number): number[] => Array.from({ length: n }, () => r.next());

describe('Random', () => {
  it('gives the same sequence for the same seed', () => {
    assert.deepEqual(draw(new Random(1234), 100), draw(new Random(1234), 100));
  });

  it('gives different sequences for different seeds', () => {
    assert.notDeepEqual(draw(new Random(1), 10), draw(new Random(2), 10));
  });

  it('pins the numbers for a seed, so a corpus is the same on every machine', () => {
    assert.deepEqual(
      draw(new Random(42), 3),
      [0.6011037519201636, 0.44829055899754167, 0.8524657934904099],
    );
    assert.equal(new Random(0).next(), 0.26642920868471265);
  });

  it('is mulberry32', () => {
    for (const seed of [0, 1, 42, 0xdeadbeef, 2 ** 32 - 1]) {
      const ref = mulberry32(seed);
      const r = new Random(seed);
      for (let i = 0; i < 1000; i++) assert.equal(r.next(), ref(), `seed ${seed}, draw ${i}`);
    }
  });

  it('reduces the seed to 32 bits', () => {
    assert.deepEqual(draw(new Random(-1), 5), draw(new Random(2 ** 32 - 1), 5));
    assert.deepEqual(draw(new Random(2 ** 32 + 7), 5), draw(new Random(7), 5));
  });

  it('stays in [0, 1)', () => {
    const r = new Random(99);
    for (let i = 0; i < 10000; i++) {
      const x = r.next();
      assert.ok(x >= 0 && x < 1, String(x));
    }
  });

  it('int(lo, hi) covers both ends and nothing outside', () => {
    const r = new Random(7);
    const seen = new Set<number>();
    for (let i = 0; i < 2000; i++) {
      const n = r.int(3, 8);
      assert.ok(Number.isInteger(n) && n >= 3 && n <= 8, String(n));
      seen.add(n);
    }
    assert.deepEqual([...seen].sort(), [3, 4, 5, 6, 7, 8]);
    assert.equal(new Random(1).int(5, 5), 5);
  });

  it('pick() returns every item and only items', () => {
    const r = new Random(11);
    const items = ['a', 'b', 'c', 'd'] as const;
    const seen = new Set<string>();
    for (let i = 0; i < 500; i++) {
      const x = r.pick(items);
      assert.ok(items.includes(x));
      seen.add(x);
    }
    assert.equal(seen.size, items.length);
  });

  it('chance(0) never and chance(1) always', () => {
    const r = new Random(5);
    for (let i = 0; i < 1000; i++) {
      assert.equal(r.chance(0), false);
      assert.equal(r.chance(1), true);
    }
  });

  it('chance(p) comes up about p of the time', () => {
    const r = new Random(123);
    let hits = 0;
    for (let i = 0; i < 10000; i++) if (r.chance(0.3)) hits++;
    assert.ok(hits > 2700 && hits < 3300, String(hits));
  });

  it('hex(n) gives n lowercase hex digits', () => {
    const r = new Random(3);
    for (const n of [0, 1, 7, 8, 9, 40, 64]) {
      const h = r.hex(n);
      assert.equal(h.length, n);
      assert.match(h, /^[0-9a-f]*$/);
    }
  });

  it('hex() is deterministic too', () => {
    assert.equal(new Random(8).hex(64), new Random(8).hex(64));
    assert.notEqual(new Random(8).hex(64), new Random(9).hex(64));
  });

  it('advances one draw per call whatever the method', () => {
    const a = new Random(77);
    const b = new Random(77);
    a.int(0, 10);
    a.pick([1, 2]);
    a.chance(0.5);
    b.next();
    b.next();
    b.next();
    assert.equal(a.next(), b.next());
  });
});
