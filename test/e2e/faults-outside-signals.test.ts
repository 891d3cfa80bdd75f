/**
 * Faults that come from outside squashtree: SIGTERM, SIGINT and SIGKILL in
 * the middle of packing, rollback and garbage collection. The last committed
 * generation stays intact and the next command leaves nothing behind.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { needRoot } from '../helpers/env.js';
import { cli, type CliResult } from '../helpers/cli.js';
import { assertSameTree } from '../helpers/tree.js';
import { initTree, leftovers, SMALL } from '../helpers/setup.js';
import {
  assertClean,
  assertNoStack,
  sleep,
  spawnCli,
  strayMounts,
  treeStatus,
} from '../helpers/reliability.js';
import { errorLine, writeBoth, orphanImages } from '../helpers/outside-faults.js';

describe('faults from outside: signals', { concurrency: false }, () => {
  it('SIGTERM and SIGINT during a long commit or compact: the generation stays intact, nothing is left', async (t) => {
    if (!needRoot(t)) return;
    const f = await initTree(t, { ...SMALL, 'r0.bin': randomBytes(12_000_000) });
    await f.ok('start', 't');
    await writeBoth(f, 'r1.bin', randomBytes(32_000_000));
    const tried: string[] = [];
    const interrupt = async (
      args: string[],
      phase: RegExp,
      sig: NodeJS.Signals,
      delayMs: number,
      group: boolean,
    ): Promise<CliResult> => {
      const before = await treeStatus(f);
      const c = spawnCli(f.sb, args, group);
      const reached = await c.waitFor(phase);
      await sleep(delayMs);
      const pid = c.child.pid ?? 0;
      try {
        process.kill(group ? -pid : pid, sig);
      } catch {
        // it already finished
      }
      const r = await c.done;
      const what = `${args[0] ?? ''} + ${group ? 'group ' : ''}${sig} ${delayMs} ms into ${String(phase)}`;
      // What the interrupted run itself left, before any other command cleaned up.
      const left = [...(await leftovers(f.store)), ...strayMounts(f.sb)];
      tried.push(
        `${what}: exit ${r.status}${r.status ? ` ${errorLine(r)}` : ''}${reached ? '' : ' (phase not reached)'}; left behind: ${left.length ? left.join(', ') : 'nothing'}`,
      );
      assertNoStack(r, what);
      // Killed by the signal itself (128) only once the command had finished, printed its
      // result and given up its handlers: a compaction by the writer can be that quick.
      const finished = r.status === 128 && r.stdout.trim() !== '';
      if (r.status !== 0 && !finished) assert.match(r.stderr, /^error E_[A-Z_]+:/m, what);
      const after = await treeStatus(f);
      assert.ok(
        after.generation === before.generation || after.generation === before.generation + 1,
        `${what}: generation ${before.generation} -> ${after.generation}`,
      );
      const v = await f.run('verify', 't');
      assert.equal(v.status, 0, `${what}: the current generation verifies: ${v.stdout}`);
      assert.deepEqual(await leftovers(f.store), [], `${what}: temp files after the next command`);
      assert.deepEqual(strayMounts(f.sb), [], `${what}: scratch mounts after the next command`);
      return r;
    };
    const touch = async (): Promise<void> => {
      for (const root of [f.tree, f.model]) await fsp.appendFile(join(root, 'r1.bin'), 'x');
    };
    for (const [sig, delay, group] of [
      ['SIGTERM', 300, false],
      ['SIGINT', 300, true],
      ['SIGINT', 20, false],
    ] as const) {
      await touch();
      await interrupt(['commit', 't'], /packing layer/, sig, delay, group);
      await assertSameTree(f.model, f.tree, `after ${sig} during commit`, { live: true });
    }
    await f.ok('commit', 't');
    await f.ok('stop', 't');
    await assertClean(f.sb, f.store, 'after the commits');
    for (const [sig, delay, group] of [
      ['SIGTERM', 300, false],
      ['SIGINT', 300, true],
    ] as const) {
      if ((await treeStatus(f)).layers < 2) {
        await f.ok('start', 't');
        await touch();
        await f.ok('stop', 't');
      }
      await interrupt(['compact', 't'], /compacting \d+ images/, sig, delay, group);
      await f.ok('start', 't');
      await assertSameTree(f.model, f.tree, `after ${sig} during compact`);
      await f.ok('stop', 't');
      await assertClean(f.sb, f.store, `after ${sig} during compact`);
    }
    t.diagnostic(tried.join('\n'));
  });

  it('SIGKILL at the two fault points crash.test.ts leaves out: rollback and garbage collection', async (t) => {
    if (!needRoot(t)) return;
    const ACK = { SQUASHTREE_TEST_FAULT_ACK: 'kill-me-i-am-a-test' };
    const toml = (keep: number): string => `[defaults]\nkeep = ${keep}\ncompact-after = 10\n`;
    const f = await initTree(t, SMALL, [], toml(1));
    const args = (...a: string[]): string[] => [
      '--config',
      f.sb.config,
      '--state-dir',
      f.sb.state,
      ...a,
    ];
    const setKeep = async (keep: number): Promise<void> => {
      const text = await fsp.readFile(f.sb.config, 'utf8');
      await fsp.writeFile(f.sb.config, text.replace(/^keep = \d+$/m, `keep = ${keep}`));
    };
    // Commits stack, so a commit collects an image only once a generation it drops held one the
    // new one does not: generation 3's layer, after a rollback to generation 2.
    await f.ok('start', 't');
    await writeBoth(f, 'one', '1\n');
    await f.ok('commit', 't');
    await writeBoth(f, 'two', '2\n');
    await f.ok('commit', 't');
    await f.ok('stop', 't');
    await f.ok('rollback', 't');
    await fsp.rm(join(f.model, 'two'));
    await f.ok('start', 't');
    await setKeep(0);
    await writeBoth(f, 'three', '3\n');
    const gc = await cli(args('commit', 't'), {
      env: { ...ACK, SQUASHTREE_TEST_FAULT: 'gc:after-manifest' },
    });
    assert.notEqual(gc.status, 0, 'killed at gc:after-manifest');
    const orphans = await orphanImages(f.store, f.sb);
    t.diagnostic(
      `killed at gc:after-manifest: images no generation names: ${orphans.join(', ') || 'none'}`,
    );
    assert.deepEqual(orphans, ['g000003-layer.sqfs'], 'the killed collection left one image');
    assert.equal((await treeStatus(f)).generation, 4);
    await f.ok('stop', 't');
    await assertClean(f.sb, f.store, 'after a kill at gc:after-manifest');
    await f.ok('start', 't');
    await assertSameTree(f.model, f.tree, 'after a kill at gc:after-manifest');
    // The image the killed collection did not get to delete goes with the next commit's collection.
    await writeBoth(f, 'four', '4\n');
    await f.ok('commit', 't');
    assert.deepEqual(await orphanImages(f.store, f.sb), [], 'collected by the next commit');
    await f.ok('stop', 't');
    await setKeep(1);

    const current = join(f.sb.dir, 'model-current');
    execFileSync('cp', ['-a', f.model, current]);
    const gen = (await treeStatus(f)).generation;
    const rb = await cli(args('rollback', 't'), {
      env: { ...ACK, SQUASHTREE_TEST_FAULT: 'rollback:before-manifest' },
    });
    assert.notEqual(rb.status, 0, 'killed at rollback:before-manifest');
    assert.equal((await treeStatus(f)).generation, gen, 'the manifest was not touched');
    await f.ok('start', 't');
    await assertSameTree(current, f.tree, 'after a kill at rollback:before-manifest');
    await f.ok('stop', 't');
    await assertClean(f.sb, f.store, 'after a kill at rollback:before-manifest');
  });

  it('an interrupted commit says that it was interrupted', async (t) => {
    if (!needRoot(t)) return;
    const f = await initTree(t);
    await f.ok('start', 't');
    await writeBoth(f, 'r1.bin', randomBytes(32_000_000));
    // Held while mksquashfs runs (a test hold point, see faults.ts): the signal always lands mid-pack.
    const c = spawnCli(f.sb, ['commit', 't'], false, {
      SQUASHTREE_TEST_HOLD: 'commit:packing',
      SQUASHTREE_TEST_FAULT_ACK: 'kill-me-i-am-a-test',
    });
    assert.ok(
      await c.waitFor(/squashtree test hold: commit:packing/),
      'the commit reached the hold',
    );
    c.child.kill('SIGTERM');
    const r = await c.done;
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^error E_INTERRUPTED:/m, r.stderr);
    assert.doesNotMatch(r.stderr, /free space/);
  });
});
