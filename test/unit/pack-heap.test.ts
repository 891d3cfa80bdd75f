/**
 * The heap policy of merges (src/pack/heap.ts): held, V8's young generation
 * keeps its size however much survives a scavenge; released, it grows
 * again; and collectNow() runs a full collection. Each is read from V8's
 * own figures, never from timings.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { getHeapSpaceStatistics } from 'node:v8';
import { collectNow, holdYoungGeneration, releaseYoungGeneration } from '../../src/pack/heap.js';

const MAX_NEW_SPACE = 32 << 20; // 2 x 16 MiB semi-spaces on 64-bit: it cannot grow past this

function newSpace(): number {
  return getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
}

/** Many scavenges, each with much still alive: what makes V8 grow the young generation. */
function churn(): void {
  let alive: { n: number; list: number[] }[] = [];
  for (let i = 0; i < 3_000_000; i++) {
    alive.push({ n: i, list: [i] });
    if (alive.length > 40_000) alive = [];
  }
}

describe('merge heap policy', () => {
  it('holds the young generation, lets it grow when released, and collects on demand', async (t) => {
    holdYoungGeneration();
    const held = newSpace();
    churn();
    assert.equal(newSpace(), held, 'the held young generation did not grow');
    releaseYoungGeneration();
    if (held >= MAX_NEW_SPACE) {
      t.diagnostic('the young generation was already at its largest; growth not checked');
    } else {
      churn();
      assert.ok(newSpace() > held, `released, it grows (${held} -> ${newSpace()} bytes)`);
    }
    holdYoungGeneration();

    // A WeakRef's target lives to the end of the job that made it: wait one turn.
    const ref = ((): WeakRef<object> => new WeakRef({ big: new Array<number>(1000).fill(1) }))();
    await new Promise((resolve) => setImmediate(resolve));
    collectNow();
    assert.equal(ref.deref(), undefined, 'a full collection freed an unreachable object');
    collectNow(); // the second call reuses the collector
  });
});
