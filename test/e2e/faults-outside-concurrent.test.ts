/**
 * Faults that come from outside squashtree: other programs attaching loop
 * devices meanwhile, and several invocations on one tree at once. Each ends in
 * a defined way and nothing is left behind.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { needRoot, sandbox } from '../helpers/env.js';
import { assertSameTree, buildTree } from '../helpers/tree.js';
import { initTree } from '../helpers/setup.js';
import {
  assertClean,
  assertNoStack,
  loopsFor,
  mountTable,
  treeStatus,
} from '../helpers/reliability.js';
import { Random } from '../../src/corpus/random.js';
import { listLoops } from '../../src/mount/loop.js';
import { stopGroups } from '../helpers/processes.js';
import { errorCode, writeBoth } from '../helpers/outside-faults.js';

describe(
  'faults from outside: other programs and invocations at once',
  { concurrency: false },
  () => {
    // Found here: listLoops let ENODEV (a loop device being detached while its sysfs entry was read)
    // escape, once in the middle of a stop. Fixed meanwhile (0779f36); this keeps it fixed.
    it('loop devices that other programs attach and detach meanwhile do not break listing ours', async (t) => {
      if (!needRoot(t)) return;
      const sb = await sandbox(t);
      const src = join(sb.dir, 'src');
      await buildTree(src, { x: 'x\n' });
      const img = join(sb.dir, 'churn.sqfs');
      execFileSync('mksquashfs', [src, img, '-noappend', '-quiet', '-no-progress']);
      const mnts = [1, 2, 3].map((i) => join(sb.dir, `m${i}`));
      for (const m of mnts) await fsp.mkdir(m);
      // Autoclear loops, as every squashtree image mount makes (mount -o loop, then umount),
      // and loops attached and detached by hand. Each loop runs in a process group of its own, so
      // the teardown stops its mount or losetup too, not only the shell.
      const churners = [
        ...mnts.map((m) => `while :; do mount -o loop,ro ${img} ${m} && umount ${m}; done`),
        ...[1, 2].map(() => `while :; do d=$(losetup -f --show ${img}) && losetup -d $d; done`),
      ].map((script) => spawn('sh', ['-c', script], { stdio: 'ignore', detached: true }));
      let stopped = false;
      const stopChurn = async (): Promise<void> => {
        if (stopped) return;
        stopped = true;
        await stopGroups(churners.map((c) => c.pid ?? 0));
        // Whatever the killed commands had attached or mounted by then.
        for (const m of mnts) {
          while (mountTable(m).length > 0) execFileSync('umount', [m]);
        }
        for (const l of loopsFor(sb.dir)) {
          const dev = l.split(':')[0] ?? '';
          if (dev) execFileSync('losetup', ['-d', dev]);
        }
      };
      t.after(stopChurn);
      const until = performance.now() + 8000;
      let lists = 0;
      let failure = '';
      while (performance.now() < until && !failure) {
        try {
          await listLoops();
          lists++;
        } catch (e) {
          failure = String(e);
        }
      }
      await stopChurn();
      assert.deepEqual(loopsFor(sb.dir), [], 'the churn left no loop device attached');
      t.diagnostic(`${lists} listings${failure ? `, then: ${failure}` : ', no failure'}`);
      assert.equal(failure, '', `listLoops failed after ${lists} listings`);
    });

    it('two, then ten concurrent invocations on one tree each end in a defined way', async (t) => {
      if (!needRoot(t)) return;
      const f = await initTree(t);
      const rng = new Random(4242);
      await f.ok('start', 't');
      const MIX = [
        ['commit'],
        ['stop'],
        ['start'],
        ['status'],
        ['commit'],
        ['start'],
        ['stop'],
        ['status', '--json'],
        ['--wait', '0', 'commit'],
        ['--wait', '0', 'stop'],
        ['--wait', '0', 'start'],
      ];
      const summary: string[] = [];
      for (const [round, n] of [2, 10].entries()) {
        if (!(await treeStatus(f)).mounted) await f.ok('start', 't');
        for (let i = 0; i < 3; i++)
          await writeBoth(f, `r${round}-${i}`, `round ${round} file ${i}\n`);
        const picked =
          n === 2 ? [['commit'], ['stop']] : Array.from({ length: n }, () => rng.pick(MIX));
        const runs = await Promise.all(
          picked.map((args) => {
            const full = args.includes('status') ? args : [...args, 't'];
            return f.run(...full).then((r) => ({ args: full, r }));
          }),
        );
        for (const { args, r } of runs) {
          assertNoStack(r, args.join(' '));
          const nowait = args[0] === '--wait';
          if (r.status === 0) continue;
          assert.ok(
            nowait && r.status === 1 && /E_LOCKED/.test(r.stderr),
            `${args.join(' ')} exited ${r.status}: ${r.stderr}`,
          );
        }
        summary.push(
          `${n}: ${runs.map(({ args, r }) => `${args.filter((a) => a !== 't').join(' ')}=${r.status === 0 ? 0 : errorCode(r)}`).join(', ')}`,
        );
        const st = await treeStatus(f);
        if (!st.mounted) await f.ok('start', 't');
        await assertSameTree(f.model, f.tree, `after ${n} concurrent invocations`, {
          live: st.mounted,
        });
        await f.ok('stop', 't');
        await assertClean(f.sb, f.store, `after ${n} concurrent invocations`);
        await f.ok('start', 't');
        await assertSameTree(f.model, f.tree, `after ${n} concurrent invocations, stop and start`);
      }
      await f.ok('stop', 't');
      assert.deepEqual(loopsFor(f.sb.dir), []);
      t.diagnostic(summary.join('\n'));
    });
  },
);
