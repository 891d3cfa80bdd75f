/**
 * SIGKILL at named points inside init, start, commit, compact and stop. After
 * each kill the next start must mount the last committed generation plus
 * every uncommitted change (a tmpfs upper survives a killed process), and
 * once that run is done no temp file or stray loop device is left.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { needRoot } from '../helpers/env.js';
import { cli } from '../helpers/cli.js';
import { assertSameTree } from '../helpers/tree.js';
import { initTree, leftovers, parseJson, type StatusJson } from '../helpers/setup.js';
import type { FaultPoint } from '../../src/lifecycle/faults.js';

const ACK = { SQUASHTREE_TEST_FAULT_ACK: 'kill-me-i-am-a-test' };

function loopsFor(dir: string): string[] {
  return execFileSync('losetup', ['-a'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.includes(dir));
}

function mountedImages(dir: string): number {
  return execFileSync('findmnt', ['-rn', '-o', 'TARGET,FSTYPE'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.startsWith(dir) && l.endsWith('squashfs')).length;
}

const CASES: { point: FaultPoint; command: string[] }[] = [
  { point: 'commit:after-capture', command: ['commit'] },
  { point: 'commit:after-pack', command: ['commit'] },
  { point: 'commit:after-publish', command: ['commit'] },
  { point: 'commit:after-manifest', command: ['commit'] },
  { point: 'commit:after-session', command: ['commit'] },
  { point: 'stop:after-commit', command: ['stop'] },
  { point: 'stop:after-overlay-umount', command: ['stop'] },
  { point: 'stop:after-upper-umount', command: ['stop'] },
];

describe('crash at a fault point', { concurrency: false }, () => {
  for (const c of CASES) {
    it(`${c.point}: the next start has every change, nothing is left over`, async (t) => {
      if (!needRoot(t)) return;
      const f = await initTree(t);
      await f.ok('start', 't');
      for (const root of [f.tree, f.model]) {
        await fsp.writeFile(join(root, 'new.txt'), 'uncommitted\n');
        await fsp.rm(join(root, 'a.txt'));
      }
      const killed = await cli(
        ['--config', f.sb.config, '--state-dir', f.sb.state, ...c.command, 't'],
        {
          env: { ...ACK, SQUASHTREE_TEST_FAULT: c.point },
        },
      );
      assert.notEqual(killed.status, 0, `${c.point} did not kill: ${killed.stderr}`);
      const status = parseJson<StatusJson>(await f.ok('status', '--json'));
      assert.ok(status.trees[0]);
      await f.ok('start', 't');
      await assertSameTree(f.model, f.tree, `after a kill at ${c.point}`);
      await f.ok('stop', 't');
      assert.deepEqual(await leftovers(f.store), [], 'temp files left in the store');
      assert.deepEqual(loopsFor(f.sb.dir), [], 'loop devices left attached');
      await f.ok('start', 't');
      await assertSameTree(f.model, f.tree, `committed after a kill at ${c.point}`);
      assert.equal(mountedImages(f.sb.dir), loopsFor(f.sb.dir).length);
      await f.ok('stop', 't');
    });
  }

  it('compact:after-pack and compact:after-manifest keep a mountable generation', async (t) => {
    if (!needRoot(t)) return;
    const f = await initTree(t);
    for (let i = 0; i < 3; i++) {
      await f.ok('start', 't');
      for (const root of [f.tree, f.model]) await fsp.writeFile(join(root, `f${i}`), `${i}\n`);
      await f.ok('stop', 't');
    }
    for (const point of ['compact:after-pack', 'compact:after-manifest'] as const) {
      const killed = await cli(
        ['--config', f.sb.config, '--state-dir', f.sb.state, 'compact', 't'],
        {
          env: { ...ACK, SQUASHTREE_TEST_FAULT: point },
        },
      );
      assert.notEqual(killed.status, 0);
      await f.ok('start', 't');
      await assertSameTree(f.model, f.tree, `after a kill at ${point}`);
      await f.ok('stop', 't');
      assert.deepEqual(await leftovers(f.store), []);
      assert.deepEqual(loopsFor(f.sb.dir), []);
    }
  });

  it('start:after-images, after-upper and after-overlay: the next start recovers', async (t) => {
    if (!needRoot(t)) return;
    const f = await initTree(t);
    for (const point of [
      'start:after-images',
      'start:after-upper',
      'start:after-overlay',
    ] as const) {
      const killed = await cli(['--config', f.sb.config, '--state-dir', f.sb.state, 'start', 't'], {
        env: { ...ACK, SQUASHTREE_TEST_FAULT: point },
      });
      assert.notEqual(killed.status, 0);
      await f.ok('start', 't');
      await assertSameTree(f.model, f.tree, `after a kill at ${point}`);
      await f.ok('stop', 't');
      assert.deepEqual(loopsFor(f.sb.dir), [], `loops left after ${point}`);
    }
  });

  it('init killed after the image: init runs again; after the manifest: init adopts the store', async (t) => {
    if (!needRoot(t)) return;
    const f = await initTree(t);
    const dir2 = join(f.sb.dir, 'tree2');
    execFileSync('cp', ['-a', f.model, dir2]);
    const args = [
      '--config',
      f.sb.config,
      '--state-dir',
      f.sb.state,
      'init',
      'u',
      '--dir',
      dir2,
      '--store',
      f.sb.store('u'),
    ];
    const k1 = await cli(args, { env: { ...ACK, SQUASHTREE_TEST_FAULT: 'init:after-image' } });
    assert.notEqual(k1.status, 0);
    await f.ok('init', 'u', '--dir', dir2, '--store', f.sb.store('u'));
    assert.deepEqual(await leftovers(f.sb.store('u')), []);
    const dir3 = join(f.sb.dir, 'tree3');
    execFileSync('cp', ['-a', f.model, dir3]);
    const args3 = [
      '--config',
      f.sb.config,
      '--state-dir',
      f.sb.state,
      'init',
      'w',
      '--dir',
      dir3,
      '--store',
      f.sb.store('w'),
    ];
    const k2 = await cli(args3, { env: { ...ACK, SQUASHTREE_TEST_FAULT: 'init:after-manifest' } });
    assert.notEqual(k2.status, 0);
    // The manifest was written, the config entry not: init again adopts the finished store
    // (issue 14.6; it used to refuse and say "remove the store and run init again").
    const again = await cli(args3);
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /adopted the store/);
    await assertSameTree(f.model, dir3, 'the source dir is untouched', { mtime: true });
  });
});
