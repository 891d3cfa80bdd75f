/**
 * A stress run (stress.test.ts): seeded random file operations interleaved
 * with commit, stop/start, compact, discard and rollback, the tree compared
 * with its model after every step.
 */
import assert from 'node:assert/strict';
import { promises as fsp, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { needRoot } from './env.js';
import { assertSameTree } from './tree.js';
import { initTree, parseJson } from './setup.js';
import { Xattrs, assertClean, assertSameTreeWith, loopsFor, treeStatus } from './reliability.js';
import { withGeneration } from './generation.js';
import { Random } from '../../src/corpus/random.js';
import { displayPath } from '../../src/fs/paths.js';
import { START, type Ctx, copyTree, snapshot, fileOp } from './stress-model.js';

export interface CommitJson {
  trees: { result: { committed: boolean; generation: number; mode?: string } }[];
}
export interface StopJson {
  trees: {
    result: {
      wasMounted: boolean;
      commit?: { committed: boolean; generation: number };
      compact?: { compacted: boolean; generation: number };
    };
  }[];
}
export interface CompactJson {
  trees: { result: { compacted: boolean; generation: number } }[];
}
export interface DiscardJson {
  trees: { result: { discarded: boolean } }[];
}

/** One lifecycle operation; returns its description and how to compare afterwards. */
export async function lifecycleOp(c: Ctx): Promise<[string, 'live' | 'strict' | 'none']> {
  const { f, rng } = c;
  if (c.mounted) {
    const kind = rng.pick([
      'commit',
      'commit',
      'commit',
      'stop',
      'stop',
      c.mountedCompact ? 'compact' : 'commit',
      'discard',
    ] as const);
    if (kind === 'commit') {
      const r = parseJson<CommitJson>(await f.ok('commit', 't', '--json')).trees[0]?.result;
      assert.ok(r);
      if (r.committed) {
        // Commits stack within a session, and the new generation alone shows the tree.
        assert.equal(r.mode, 'stacked', 'the commit stacked on the session');
        await withGeneration(f.store, join(f.sb.dir, 'gen-view'), (view) =>
          assertSameTreeWith(c.x, c.f.model, view, `generation ${r.generation}, mounted alone`),
        );
        await snapshot(c, r.generation, c.f.model);
        c.committed = c.gens.get(r.generation) ?? '';
      }
      return [`commit -> ${r.committed ? `generation ${r.generation}` : 'nothing'}`, 'live'];
    }
    if (kind === 'stop') {
      const r = parseJson<StopJson>(await f.ok('stop', 't', '--json')).trees[0]?.result;
      assert.ok(r?.wasMounted);
      if (r.commit?.committed) await snapshot(c, r.commit.generation, c.f.model);
      if (r.compact?.compacted) await snapshot(c, r.compact.generation, c.f.model);
      const gen = (await treeStatus(f)).generation;
      if (!c.gens.has(gen)) await snapshot(c, gen, c.f.model);
      c.committed = c.gens.get(gen) ?? '';
      c.mounted = false;
      await assertClean(f.sb, f.store, 'after stop');
      return [
        `stop (commit: ${r.commit?.committed ? r.commit.generation : '-'}, auto-compact: ${r.compact?.compacted ? r.compact.generation : '-'})`,
        'none',
      ];
    }
    if (kind === 'compact') {
      const r = parseJson<CompactJson>(await f.ok('compact', 't', '--json')).trees[0]?.result;
      assert.ok(r);
      // A mounted compaction packs the committed images: the pending changes are not in it.
      if (r.compacted) await snapshot(c, r.generation, c.committed);
      return [`compact (mounted) -> ${r.compacted ? r.generation : 'nothing'}`, 'live'];
    }
    const r = parseJson<DiscardJson>(await f.ok('discard', '--yes', 't', '--json')).trees[0]
      ?.result;
    assert.ok(r);
    if (r.discarded) await copyTree(c.committed, c.f.model);
    return [
      `discard -> ${r.discarded ? 'discarded' : 'nothing pending'}`,
      r.discarded ? 'strict' : 'live',
    ];
  }
  const kind = rng.pick(['start', 'start', 'start', 'rollback', 'compact'] as const);
  if (kind === 'start') {
    await f.ok('start', 't');
    c.mounted = true;
    return ['start', 'strict'];
  }
  if (kind === 'compact') {
    const r = parseJson<CompactJson>(await f.ok('compact', 't', '--json')).trees[0]?.result;
    assert.ok(r);
    if (r.compacted) {
      await snapshot(c, r.generation, c.committed);
      c.committed = c.gens.get(r.generation) ?? '';
    }
    await assertClean(f.sb, f.store, 'after a stopped compact');
    return [`compact (stopped) -> ${r.compacted ? r.generation : 'nothing'}`, 'none'];
  }
  const st = await treeStatus(f);
  const listed = st.generations.map((g) => g.generation);
  const older = listed.filter((g) => g < st.generation);
  const newest = Math.max(...listed);
  if (newest > st.generation && rng.chance(0.3)) {
    await f.ok('rollback', '--to', String(newest), 't');
    await copyTree(
      c.gens.get(newest) ?? assert.fail(`no model for generation ${newest}`),
      c.f.model,
    );
    c.committed = c.gens.get(newest) ?? '';
    return [`rollback --to ${newest} (forward)`, 'none'];
  }
  if (older.length === 0) {
    const r = await f.run('rollback', 't');
    assert.equal(r.status, 1, 'rollback without an older generation fails');
    assert.match(r.stderr, /E_NO_GENERATION/);
    return ['rollback: no older generation (E_NO_GENERATION)', 'none'];
  }
  const target = Math.max(...older);
  await f.ok('rollback', 't');
  const after = (await treeStatus(f)).generation;
  assert.equal(after, target, 'rollback goes to the newest older generation');
  const snap = c.gens.get(target);
  assert.ok(snap, `no model for generation ${target}`);
  await copyTree(snap, c.f.model);
  c.committed = snap;
  return [`rollback ${st.generation} -> ${target}`, 'none'];
}

export async function runStress(
  t: Parameters<typeof needRoot>[0],
  steps: number,
  seed: number,
  opts: { mountedCompact: boolean; hardlinks: boolean },
): Promise<void> {
  const { mountedCompact, hardlinks } = opts;
  const started = performance.now();
  t.diagnostic(
    `stress: seed ${seed}, ${steps} steps${mountedCompact ? ', compact while mounted' : ''}${hardlinks ? ', hard links' : ''}`,
  );
  const f = await initTree(t, START, [], '[defaults]\nkeep = 3\ncompact-after = 3\n');
  const snaps = join(f.sb.dir, 'snaps');
  await fsp.mkdir(snaps);
  const c: Ctx = {
    f,
    mountedCompact,
    hardlinks,
    rng: new Random(seed),
    x: new Xattrs(),
    snaps,
    gens: new Map(),
    committed: '',
    mounted: false,
    log: [],
  };
  t.after(() => {
    c.x.close();
  });
  await snapshot(c, 1, f.model);
  c.committed = c.gens.get(1) ?? '';
  await f.ok('start', 't');
  c.mounted = true;
  const counts: Record<string, number> = {};
  const ms: Record<string, number> = { lifecycle: 0, fileops: 0, compare: 0 };
  const timed = async <T>(key: string, fn: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      ms[key] = (ms[key] ?? 0) + performance.now() - t0;
    }
  };
  const fail = (i: number, what: string, e: unknown): never => {
    const msg = e instanceof Error ? e.message : String(e);
    const logFile = process.env.SQUASHTREE_STRESS_LOG;
    if (logFile) writeFileSync(logFile, `${c.log.join('\n')}\n${msg}\n`);
    throw new Error(
      `stress failed: seed ${seed}, step ${i} of ${steps}: ${what}\n` +
        `replay: SQUASHTREE_STRESS_SEED=${seed} SQUASHTREE_STRESS_STEPS=${steps}${mountedCompact && hardlinks ? ' SQUASHTREE_STRESS_ALL=1' : ''} node scripts/run-tests.mjs test/e2e/stress.test.ts\n` +
        (logFile
          ? `every operation: ${logFile}\n`
          : 'to keep every operation, set SQUASHTREE_STRESS_LOG=FILE\n') +
        `last operations:\n  ${c.log.slice(-15).join('\n  ')}\n${msg}`,
    );
  };
  for (let i = 1; i <= steps; i++) {
    let what = '?';
    try {
      let check: 'live' | 'strict' | 'none';
      if (!c.mounted || c.rng.chance(0.2)) {
        what = c.mounted ? 'a lifecycle operation (mounted)' : 'a lifecycle operation (stopped)';
        [what, check] = await timed('lifecycle', () => lifecycleOp(c));
        const key = what.split(' ')[0] ?? what;
        counts[key] = (counts[key] ?? 0) + 1;
        if (/auto-compact: \d/.test(what))
          counts['auto-compact'] = (counts['auto-compact'] ?? 0) + 1;
      } else {
        what = 'a file operation';
        what = await timed('fileops', () => fileOp(c));
        check = 'live';
        counts.fileops = (counts.fileops ?? 0) + 1;
      }
      c.log.push(`${i}: ${displayPath(what)}`);
      if (check !== 'none') {
        const live = check === 'live';
        const msg = `seed ${seed} step ${i} (${displayPath(what)})`;
        await timed('compare', () =>
          live
            ? assertSameTreeWith(c.x, c.f.model, c.f.tree, msg, { live })
            : assertSameTree(c.f.model, c.f.tree, msg),
        );
      }
    } catch (e) {
      fail(i, what, e);
    }
  }
  try {
    if (c.mounted) {
      await f.ok('stop', 't');
      c.mounted = false;
    }
    await assertClean(f.sb, f.store, 'after the last stop');
    const v = await f.run('verify', 't');
    assert.equal(v.status, 0, `verify after the run: ${v.stdout}${v.stderr}`);
    await f.ok('start', 't');
    await assertSameTree(c.f.model, c.f.tree, `seed ${seed}: final start`);
    await f.ok('stop', 't');
    assert.deepEqual(loopsFor(f.sb.dir), []);
  } catch (e) {
    fail(steps + 1, 'final check', e);
  }
  const secs = ((performance.now() - started) / 1000).toFixed(1);
  const spent = Object.entries(ms).map(([k, v]) => `${k} ${(v / 1000).toFixed(1)} s`);
  t.diagnostic(
    `stress: seed ${seed}, ${steps} steps in ${secs} s (${spent.join(', ')}): ${JSON.stringify(counts)}`,
  );
}
