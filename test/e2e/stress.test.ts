/**
 * Model-based stress test: seeded random filesystem operations applied both
 * to the mounted tree and to a plain model dir, interleaved with commit,
 * stop/start, compact, discard and rollback. After every step the tree must
 * equal the model. The model keeps a copy of itself for every generation, so
 * discard (back to the last commit) and rollback (back to an older
 * generation) have something exact to be compared with.
 *
 * A short run always; a long one with SQUASHTREE_STRESS_STEPS=N. A failure
 * prints its seed and the command that replays it (SQUASHTREE_STRESS_SEED=S);
 * SQUASHTREE_STRESS_LOG=FILE keeps every operation of a failed run, and
 * SQUASHTREE_STRESS_ALL=1 adds hard links and compaction while mounted.
 *
 * The model reproduces two documented overlay behaviours instead of hiding
 * them: a directory that is in a lower layer cannot be renamed (EXDEV with
 * redirect_dir=off), so mv moves it entry by entry; and with index=off a
 * hard link to a file that is still in a lower layer is broken when one of
 * its names is copied up.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { needRoot } from '../helpers/env.js';
import { assertSameTree } from '../helpers/tree.js';
import { initTree } from '../helpers/setup.js';
import { runStress } from '../helpers/stress-run.js';

const SHORT_STEPS = 100;
const SHORT_SEED = 3;
const ALL_STEPS = 70;
const ALL_SEED = 20261126;

const envFlag = (name: string): boolean => /^(1|yes|true)$/i.test(process.env[name] ?? '');

describe('model-based stress', { concurrency: false }, () => {
  const seedEnv = Number(process.env.SQUASHTREE_STRESS_SEED ?? '');
  const all = envFlag('SQUASHTREE_STRESS_ALL');
  const opts = { mountedCompact: all, hardlinks: all };

  it(`${SHORT_STEPS} seeded random steps keep the tree equal to its model`, async (t) => {
    if (!needRoot(t)) return;
    await runStress(t, SHORT_STEPS, seedEnv || SHORT_SEED, opts);
  });

  // Every operation, hard links and compaction while mounted included: this seed is the run
  // that found the first bug below (at step 60); it is the main test again once both are fixed.
  it(`${ALL_STEPS} seeded random steps with hard links and compaction while mounted`, async (t) => {
    if (!needRoot(t)) return;
    await runStress(t, ALL_STEPS, seedEnv || ALL_SEED, {
      mountedCompact: true,
      hardlinks: true,
    });
  });

  it('found by the stress run: compact while mounted, then delete what a layer deleted', async (t) => {
    if (!needRoot(t)) return;
    const f = await initTree(t, {
      D: { dir: { big: Buffer.alloc(1_000_000, 1) } },
      keep: 'small\n',
    });
    await f.ok('start', 't');
    await fsp.rm(join(f.tree, 'D', 'big'));
    await f.ok('stop', 't');
    await f.ok('start', 't');
    await f.ok('compact', 't');
    await fsp.rm(join(f.tree, 'D'), { recursive: true });
    await fsp.rm(join(f.model, 'D'), { recursive: true });
    const r = await f.run('stop', 't');
    try {
      assert.equal(r.status, 0, `stop after a mounted compact: ${r.stderr}`);
      await f.ok('start', 't');
      await assertSameTree(f.model, f.tree, 'after the stop');
    } finally {
      // Leave the sandbox clean whatever happened.
      await f.run('stop', 't', '--on-stop', 'discard');
    }
  });

  it('found by the stress run: hard links in two layers, then compact', async (t) => {
    if (!needRoot(t)) return;
    const f = await initTree(t, { a1: 'one\n', a2: { hardlink: 'a1' } });
    await f.ok('start', 't');
    for (const root of [f.tree, f.model]) {
      await fsp.writeFile(join(root, 'b1'), 'two\n');
      await fsp.link(join(root, 'b1'), join(root, 'b2'));
    }
    await f.ok('stop', 't');
    const r = await f.run('compact', 't');
    assert.equal(r.status, 0, `compact: ${r.stderr}`);
    await f.ok('start', 't');
    await assertSameTree(f.model, f.tree, 'after the compaction');
    await f.ok('stop', 't');
  });

  const long = Number(process.env.SQUASHTREE_STRESS_STEPS ?? '');
  it(
    `long run (SQUASHTREE_STRESS_STEPS=${long || 'unset'})`,
    { skip: long > 0 ? false : 'set SQUASHTREE_STRESS_STEPS to run it' },
    async (t) => {
      if (!needRoot(t)) return;
      const seed = seedEnv || (Date.now() % 2_000_000_000) + 1;
      await runStress(t, long, seed, opts);
    },
  );
});
