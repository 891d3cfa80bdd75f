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
import { assertSameTree, setXattr, type Spec } from '../helpers/tree.js';
import { Twin } from '../helpers/twin.js';
import { initTree, leftovers, parseJson, type StatusJson } from '../helpers/setup.js';
import type { FaultPoint } from '../../src/faults.js';

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
  { point: 'commit:after-verify', command: ['commit'] },
  { point: 'commit:after-publish', command: ['commit'] },
  { point: 'commit:after-snapshot', command: ['commit'] },
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

const STACKED: Spec = {
  'a.txt': 'alpha\n',
  'cat-one': { dir: { pkg: { dir: { 'pkg-1.ebuild': 'EAPI=8\n', Manifest: 'DIST x 1\n' } } } },
  replaced: { dir: { x: 'x\n', sub: { dir: { y: 'y\n' } } } },
  link: { symlink: 'a.txt' },
};

/** Paths in a layer image (unsquashfs -l): what a commit packed. */
function layerPaths(image: string): string[] {
  return execFileSync('unsquashfs', ['-l', '-d', '', image], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.startsWith('/'));
}

interface CommitJson {
  trees: { result: { committed: boolean; generation: number; mode?: string } }[];
}

/**
 * A session that committed once and then changed again in every way a layer
 * must stack: an entry committed and deleted, one created and deleted in
 * between, a dir removed and recreated (with what the first commit put in
 * it), a rename, a hard link, an xattr.
 */
async function stackedSession(t: Parameters<typeof needRoot>[0]) {
  const f = await initTree(t, STACKED, [], '[defaults]\ncompact-after = 50\n');
  const tw = new Twin(f.tree, f.model);
  await f.ok('start', 't');
  await tw.write('keep1.txt', 'committed once, untouched since\n');
  await tw.mkdir('sess');
  await tw.write('sess/created', 'committed, then deleted\n');
  await tw.write('r1.txt', 'renamed later\n');
  await tw.write('replaced/first', 'the first commit put it here\n');
  await f.ok('commit', 't');
  await tw.rm('sess/created');
  await tw.write('flash', 'created and deleted between commits\n');
  await tw.rm('flash');
  await tw.rm('replaced');
  await tw.mkdir('replaced');
  await tw.write('replaced/new', 'recreated\n');
  await tw.mv('r1.txt', 'r1-moved.txt');
  await tw.link('a.txt', 'hard-a');
  await tw.both((r) => {
    setXattr(join(r, 'cat-one/pkg/Manifest'), 'user.k', 'v');
  });
  const diff = (await f.ok('diff', 't')).stdout;
  return { f, diff };
}

describe('crash during a stacked commit', { concurrency: false }, () => {
  const BEFORE_MANIFEST: FaultPoint[] = [
    'commit:after-capture',
    'commit:after-pack',
    'commit:after-verify',
    'commit:after-publish',
    'commit:after-snapshot',
  ];
  // gc:after-manifest: faults-outside-signals.test.ts (it needs a generation to drop).
  const AFTER_MANIFEST: FaultPoint[] = ['commit:after-manifest', 'commit:after-session'];
  for (const point of [...BEFORE_MANIFEST, ...AFTER_MANIFEST]) {
    it(`${point}: the next commit neither loses nor repeats a change`, async (t) => {
      if (!needRoot(t)) return;
      const { f, diff } = await stackedSession(t);
      assert.match(diff, /^D sess\/created$/m, 'a committed entry deleted');
      assert.match(diff, /^D replaced\/first$/m, 'what the first commit put in a recreated dir');
      assert.match(diff, /^D replaced\/sub\/y$/m, 'what the base has in it');
      assert.doesNotMatch(diff, /keep1|flash/, 'nothing committed or gone before');
      const killed = await cli(
        ['--config', f.sb.config, '--state-dir', f.sb.state, 'commit', 't'],
        {
          env: { ...ACK, SQUASHTREE_TEST_FAULT: point },
        },
      );
      assert.notEqual(killed.status, 0, `${point} did not kill: ${killed.stderr}`);
      const published = AFTER_MANIFEST.includes(point);
      assert.equal((await f.ok('diff', 't')).stdout, published ? '' : diff, 'what is pending');
      const again = parseJson<CommitJson>(await f.ok('commit', 't', '--json')).trees[0]?.result;
      assert.equal(again?.committed, !published, `the commit after a kill at ${point}`);
      if (!published) assert.equal(again?.mode, 'stacked');
      const layer = layerPaths(join(f.store, 'g000003-layer.sqfs'));
      for (const p of ['/r1-moved.txt', '/replaced/new', '/sess/created', '/replaced/first'])
        assert.ok(layer.includes(p), `the layer has ${p}: ${layer.join(' ')}`);
      assert.ok(!layer.some((p) => /keep1|flash|pkg-1\.ebuild/.test(p)), layer.join(' '));
      const st = parseJson<StatusJson>(await f.ok('status', '--json')).trees[0];
      assert.deepEqual([st?.generation, st?.layers, st?.pending.files], [3, 3, 0]);
      await f.ok('stop', 't');
      await f.ok('start', 't');
      await assertSameTree(f.model, f.tree, `after a kill at ${point}`);
      await f.ok('stop', 't');
      assert.deepEqual(await leftovers(f.store), [], 'temp files left in the store');
      assert.deepEqual(loopsFor(f.sb.dir), [], 'loop devices left attached');
    });
  }

  for (const point of ['compact:after-snapshot', 'compact:after-manifest'] as const) {
    it(`${point} while mounted: the next commit stacks on what the manifest names`, async (t) => {
      if (!needRoot(t)) return;
      const { f, diff } = await stackedSession(t);
      const killed = await cli(
        ['--config', f.sb.config, '--state-dir', f.sb.state, 'compact', 't'],
        { env: { ...ACK, SQUASHTREE_TEST_FAULT: point } },
      );
      assert.notEqual(killed.status, 0, `${point} did not kill: ${killed.stderr}`);
      assert.equal((await f.ok('diff', 't')).stdout, diff, 'the compaction took nothing pending');
      const r = parseJson<CommitJson>(await f.ok('commit', 't', '--json')).trees[0]?.result;
      assert.equal(r?.mode, 'stacked');
      const st = parseJson<StatusJson>(await f.ok('status', '--json')).trees[0];
      const compacted = point === 'compact:after-manifest';
      assert.equal(st?.layers, compacted ? 2 : 3, 'on the new base, or on base + layer');
      assert.equal(st?.pending.files, 0);
      await f.ok('stop', 't');
      await f.ok('start', 't');
      await assertSameTree(f.model, f.tree, `after a kill at ${point}`);
      await f.ok('stop', 't');
      assert.deepEqual(await leftovers(f.store), []);
      assert.deepEqual(loopsFor(f.sb.dir), []);
    });
  }
});
