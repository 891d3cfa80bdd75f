/**
 * Faults that come from outside squashtree: a full store, a full upper, a
 * writer that keeps writing while commit runs, processes that hold the tree,
 * SIGTERM and SIGINT in the middle of packing, and several invocations at
 * once. Whatever happens, the last committed generation stays intact and
 * mountable, pending changes stay pending, and the next command leaves no
 * temp file, stray mount or loop device behind.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp, openSync, writeSync, closeSync } from 'node:fs';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { needRoot, sandbox, type Sandbox } from '../helpers/env.js';
import { cli, sq, sqOk, type CliResult } from '../helpers/cli.js';
import { assertSameTree, buildTree } from '../helpers/tree.js';
import { initTree, leftovers, SMALL, type TreeFixture } from '../helpers/setup.js';
import {
  assertClean,
  assertNoStack,
  fillTo,
  loopsFor,
  mountTable,
  runtimeOf,
  sleep,
  smallExt4,
  spawnCli,
  strayMounts,
  treeStatus,
} from '../helpers/reliability.js';
import { Random } from '../../src/corpus/random.js';
import { listLoops } from '../../src/mount/loop.js';
import { stopGroups } from '../helpers/processes.js';

/** The error code a failed CLI run printed ("error E_X: ..."). */
function errorCode(r: CliResult): string {
  return /^error (E_[A-Z_]+):/m.exec(r.stderr)?.[1] ?? '(none)';
}

/** The "error E_X: message" line of a failed run. */
function errorLine(r: CliResult): string {
  return (
    /^error E_.*$/m.exec(r.stderr)?.[0] ?? r.stderr.split('\n').find((l) => /error/.test(l)) ?? ''
  );
}

/** A tree whose store lives on a small ext4 filesystem of its own. */
async function treeOnSmallStore(
  t: Parameters<typeof needRoot>[0],
  megabytes: number,
  toml: string,
  inodes?: number,
): Promise<TreeFixture & { storefs: string; filler: string }> {
  const sb = await sandbox(t);
  const storefs = smallExt4(sb, megabytes, inodes);
  const tree = join(sb.dir, 'tree');
  const model = join(sb.dir, 'model');
  await buildTree(tree, SMALL);
  await buildTree(model, SMALL);
  await fsp.writeFile(sb.config, toml);
  const ok = sqOk(sb);
  const store = join(storefs, 'store');
  await ok('init', 't', '--dir', tree, '--store', store);
  return {
    sb,
    tree,
    model,
    store,
    ok,
    run: sq(sb),
    storefs,
    filler: join(storefs, 'filler'),
  };
}

async function writeBoth(f: TreeFixture, rel: string, data: Buffer | string): Promise<void> {
  await fsp.writeFile(join(f.tree, rel), data);
  await fsp.writeFile(join(f.model, rel), data);
}

/**
 * Image files in the store that no generation of the manifest names, nor the
 * mounted session stands on (the store keeps those while the session lasts).
 */
async function orphanImages(store: string, sb?: Sandbox): Promise<string[]> {
  const m = JSON.parse(await fsp.readFile(join(store, 'manifest.json'), 'utf8')) as {
    generations: { images: string[] }[];
  };
  const named = new Set(m.generations.flatMap((g) => g.images));
  if (sb) {
    const session = await fsp
      .readFile(join(runtimeOf(sb).runtime, 'session.json'), 'utf8')
      .then((t) => JSON.parse(t) as { lower: string[] })
      .catch(() => ({ lower: [] }));
    for (const f of session.lower) named.add(f);
  }
  return (await fsp.readdir(store)).filter((n) => n.endsWith('.sqfs') && !named.has(n));
}

function assertStillMounted(sb: Sandbox, tree: string, what: string): void {
  const table = mountTable(sb.dir);
  const { upper } = runtimeOf(sb);
  assert.ok(
    table.some((m) => m.point === tree && m.fstype === 'overlay'),
    `${what}: the overlay is gone: ${JSON.stringify(table)}`,
  );
  assert.ok(
    table.some((m) => m.point === upper && m.fstype === 'tmpfs'),
    `${what}: the tmpfs upper was unmounted: ${JSON.stringify(table)}`,
  );
}

describe('faults from outside', { concurrency: false }, () => {
  it('a full store fails commit, stop and compact with a clear error; nothing is lost', async (t) => {
    if (!needRoot(t)) return;
    const f = await treeOnSmallStore(t, 8, '[defaults]\nkeep = 1\n');
    await f.ok('start', 't');
    await writeBoth(f, 'big1', randomBytes(3_000_000));
    await writeBoth(f, 'small', 'pending\n');
    const before = await treeStatus(f);
    await fillTo(f.storefs, f.filler, 400);

    const r = await f.run('commit', 't');
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assertNoStack(r, 'commit on a full store');
    t.diagnostic(`full store, commit: ${errorLine(r)}`);
    assert.match(r.stderr, /^error E_[A-Z_]+:/m);
    assert.match(r.stderr, /No space left on device/);
    assert.match(r.stderr, /hint: .*free space/);
    let st = await treeStatus(f);
    assert.equal(st.generation, before.generation, 'the previous generation stays current');
    assert.equal(st.pending.files, before.pending.files, 'the changes stay pending');
    assert.deepEqual(await leftovers(f.store), [], 'the failed commit removed its temp image');
    assert.deepEqual(strayMounts(f.sb), []);
    await assertSameTree(f.model, f.tree, 'the tree after a failed commit', { live: true });

    // stop commits first; when that fails nothing is unmounted.
    const s = await f.run('stop', 't');
    assert.equal(s.status, 1);
    assertNoStack(s, 'stop on a full store');
    assertStillMounted(f.sb, f.tree, 'after a stop whose commit failed');
    assert.equal((await treeStatus(f)).pending.files, before.pending.files);

    await fsp.rm(f.filler);
    await f.ok('commit', 't');
    st = await treeStatus(f);
    assert.equal(st.generation, before.generation + 1);
    assert.equal(st.pending.files, 0);
    assert.deepEqual(await leftovers(f.store), []);
    await f.ok('stop', 't');
    await f.ok('start', 't');
    await assertSameTree(f.model, f.tree, 'committed after the space came back');
    await f.ok('stop', 't');

    // compact of the stopped stack (base + layer) into a new base that does not fit.
    const gen = (await treeStatus(f)).generation;
    assert.equal((await treeStatus(f)).layers, 2);
    await fillTo(f.storefs, f.filler, 400);
    const c = await f.run('compact', 't');
    assert.equal(c.status, 1, c.stdout + c.stderr);
    assertNoStack(c, 'compact on a full store');
    t.diagnostic(`full store, compact: ${errorLine(c)}`);
    assert.match(c.stderr, /No space left on device/);
    assert.equal((await treeStatus(f)).generation, gen);
    assert.deepEqual(strayMounts(f.sb), [], 'compact unmounted its scratch stack');
    await fsp.rm(f.filler);
    await f.ok('start', 't');
    await assertSameTree(f.model, f.tree, 'after a failed compact');
    await f.ok('stop', 't');
    await assertClean(f.sb, f.store, 'after the next command');
    const done = await f.ok('compact', 't', '--json');
    assert.match(done.stdout, /"compacted": true/);
    await f.ok('start', 't');
    await assertSameTree(f.model, f.tree, 'after the compaction');
    await f.ok('stop', 't');
    await assertClean(f.sb, f.store, 'at the end');
  });

  it('a store that fills up at every KiB around the new layer: each commit succeeds or fails with a code', async (t) => {
    if (!needRoot(t)) return;
    const f = await treeOnSmallStore(t, 8, '[defaults]\nkeep = 0\n');
    await f.ok('start', 't');
    let n = 0;
    const outcomes: string[] = [];
    const bad: string[] = [];
    // One commit with `leave` KiB free; returns true when mksquashfs itself ran out of space.
    const probe = async (leave: number): Promise<boolean> => {
      await writeBoth(f, 'big', randomBytes(1_500_000));
      await writeBoth(f, 'counter', `${n++}\n`);
      await fillTo(f.storefs, f.filler, leave);
      const r = await f.run('commit', 't');
      await fsp.rm(f.filler, { force: true });
      // Commits stack: fold the layer into a base again, so the store holds as much before each probe.
      await f.ok('compact', 't');
      const what = r.status === 0 ? 'ok' : errorCode(r);
      outcomes.push(`${leave} KiB: ${what}`);
      if (r.status !== 0 && (/internal error/.test(r.stderr) || what === '(none)'))
        bad.push(`${leave} KiB free: ${r.stderr.split('\n').slice(0, 2).join(' ')}`);
      return r.status !== 0 && /mksquashfs/.test(r.stderr);
    };
    let lo = 800; // mksquashfs fails (the layer is ~1.5 MB)
    let hi = 2800; // mksquashfs fits
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (await probe(mid)) lo = mid;
      else hi = mid;
    }
    for (let leave = hi - 1; leave <= hi + 4; leave++) await probe(leave);
    t.diagnostic(`store-full scan around ${hi} KiB: ${outcomes.join('; ')}`);
    await f.ok('commit', 't');
    assert.deepEqual(await orphanImages(f.store, f.sb), [], 'an image no generation names');
    await f.ok('stop', 't');
    await f.ok('start', 't');
    await assertSameTree(f.model, f.tree, 'after the scan');
    await f.ok('stop', 't');
    assert.deepEqual(bad, [], 'commits that failed without a coded error');
  });

  // Found here: ENOSPC while writing the manifest escaped as "internal error" with a stack
  // (the scan above, and this rollback). Fixed meanwhile (43f5008: E_SYSTEM); these keep it fixed.
  it('rollback with a store that has no room for the new manifest fails with a code', async (t) => {
    if (!needRoot(t)) return;
    const f = await treeOnSmallStore(t, 8, '');
    await f.ok('start', 't');
    await writeBoth(f, 'second', 'generation 2\n');
    await f.ok('stop', 't');
    await fillTo(f.storefs, f.filler, 0);
    const r = await f.run('rollback', 't');
    await fsp.rm(f.filler);
    assert.equal((await treeStatus(f)).generation, 2, 'the manifest was not replaced');
    assert.equal(r.status, 1);
    assertNoStack(r, 'rollback on a full store');
    assert.match(r.stderr, /^error E_[A-Z_]+:/m);
  });

  it('a commit whose manifest cannot be written leaves no image that no generation names', async (t) => {
    if (!needRoot(t)) return;
    const f = await treeOnSmallStore(t, 8, '', 64);
    await f.ok('start', 't');
    await writeBoth(f, 'layer.txt', 'a change to commit\n');
    // Use up the inodes but one: the temp image gets it, the temp manifest finds none.
    const spare = join(f.storefs, 'spare');
    await fsp.mkdir(spare);
    for (let i = 0; ; i++) {
      try {
        await fsp.writeFile(join(spare, String(i)), '');
      } catch (e) {
        if ((e as { code?: string }).code !== 'ENOSPC') throw e;
        await fsp.rm(join(spare, '0'));
        break;
      }
    }
    const before = (await treeStatus(f)).generation;
    const r = await f.run('commit', 't');
    assertNoStack(r, 'commit without an inode for the manifest');
    assert.equal(r.status, 1, r.stdout + r.stderr);
    t.diagnostic(`no inode for the manifest: ${errorLine(r)}`);
    await fsp.rm(spare, { recursive: true });
    assert.equal((await treeStatus(f)).generation, before, 'no new generation');
    await f.ok('stop', 't', '--on-stop', 'discard');
    assert.deepEqual(await orphanImages(f.store), [], 'an image no generation names');
  });

  it('a full tmpfs upper (bytes, then inodes) is reported; what is there commits and survives', async (t) => {
    if (!needRoot(t)) return;
    const f = await initTree(t, SMALL, [], '[defaults]\ntmpfs-size = "4M"\n');
    const { upper } = runtimeOf(f.sb);
    await f.ok('start', 't');
    await writeBoth(f, 'before-full.txt', 'written while there was room\n');
    // Write until the upper is full; the model gets exactly what landed.
    const fd = openSync(join(f.tree, 'filler.bin'), 'w');
    let enospc = false;
    const chunk = randomBytes(64 * 1024);
    for (let i = 0; i < 200 && !enospc; i++) {
      try {
        writeSync(fd, chunk);
      } catch (e) {
        if ((e as { code?: string }).code !== 'ENOSPC') throw e;
        enospc = true;
      }
    }
    closeSync(fd);
    assert.ok(enospc, 'a 4M upper ran out of space');
    await fsp.writeFile(
      join(f.model, 'filler.bin'),
      await fsp.readFile(join(f.tree, 'filler.bin')),
    );
    let st = await treeStatus(f);
    assert.equal(
      st.upper?.full,
      true,
      `status says the upper is full: ${JSON.stringify(st.upper)}`,
    );
    assert.match((await f.ok('status', 't')).stdout, /FULL/);
    const doc = await f.run('doctor');
    assert.match(doc.stdout, /tmpfs upper.*FULL/, doc.stdout);
    const gen = st.generation;
    await f.ok('commit', 't');
    assert.equal((await treeStatus(f)).generation, gen + 1, 'a full upper still commits');
    await f.ok('stop', 't');
    await f.ok('start', 't');
    await assertSameTree(f.model, f.tree, 'after a commit of a full upper');

    // Inodes: shrink the fresh upper's inode limit to a few more than it uses.
    const s = await fsp.statfs(upper);
    const used = s.files - s.ffree;
    execFileSync('mount', ['-o', `remount,nr_inodes=${used + 12}`, upper]);
    let created = 0;
    let noInodes = false;
    for (let i = 0; i < 100 && !noInodes; i++) {
      try {
        await fsp.writeFile(join(f.tree, `inode-${i}`), `${i}\n`);
        await fsp.writeFile(join(f.model, `inode-${i}`), `${i}\n`);
        created++;
      } catch (e) {
        if ((e as { code?: string }).code !== 'ENOSPC') throw e;
        noInodes = true;
        // A failed create may leave an empty file behind; the model follows the tree.
        try {
          const left = await fsp.readFile(join(f.tree, `inode-${i}`));
          await fsp.writeFile(join(f.model, `inode-${i}`), left);
        } catch {
          // nothing was created
        }
      }
    }
    assert.ok(noInodes, `the upper ran out of inodes after ${created} files`);
    st = await treeStatus(f);
    assert.equal(st.upper?.full, true, `inodes: ${JSON.stringify(st.upper)}`);
    assert.match((await f.run('doctor')).stdout, /tmpfs upper.*FULL/);
    // Deleting a lower file needs a whiteout, which needs an inode.
    const rm = await fsp.rm(join(f.tree, 'a.txt')).then(
      () => 'ok',
      (e: unknown) => (e as { code?: string }).code ?? 'error',
    );
    if (rm === 'ok') await fsp.rm(join(f.model, 'a.txt'));
    t.diagnostic(`no free inodes: ${created} files created, rm of a lower file: ${rm}`);
    await f.ok('commit', 't');
    await f.ok('stop', 't');
    await f.ok('start', 't');
    await assertSameTree(f.model, f.tree, 'after a commit of an upper without free inodes');
    await f.ok('stop', 't');
    await assertClean(f.sb, f.store, 'at the end');
  });

  it('a writer active during commit: each commit publishes whole records or fails with E_CAPTURE', async (t) => {
    if (!needRoot(t)) return;
    await writerDuringCommits(t, 'in-place');
  });

  it('a writer that replaces files by rename (temp file, then rename) during commit', async (t) => {
    if (!needRoot(t)) return;
    await writerDuringCommits(t, 'rename');
  });

  it('stop while a process holds a file open, maps one or has its cwd inside: nothing lost, the holder named, the upper stays', async (t) => {
    if (!needRoot(t)) return;
    const f = await initTree(t);
    await f.ok('start', 't');
    const holders = [
      {
        what: 'an open file being written',
        argv: [
          'python3',
          '-c',
          "import sys\nf=open(sys.argv[1],'w'); f.write('part1\\n'); f.flush(); print('ready', flush=True)\nsys.stdin.readline(); f.write('part2\\n'); f.close()",
          join(f.tree, 'held.txt'),
        ],
        cwd: f.sb.dir,
        after: async () => {
          await fsp.writeFile(join(f.model, 'held.txt'), 'part1\npart2\n');
        },
      },
      {
        what: 'a mapped file (descriptor closed)',
        argv: [
          'python3',
          '-c',
          "import sys, mmap\nfd=open(sys.argv[1],'rb'); m=mmap.mmap(fd.fileno(), 0, prot=mmap.PROT_READ); fd.close(); print('ready', flush=True)\nsys.stdin.readline()",
          join(f.tree, 'a.txt'),
        ],
        cwd: f.sb.dir,
        after: () => Promise.resolve(),
      },
      {
        what: 'a cwd inside the tree',
        argv: ['sh', '-c', 'echo ready; read x'],
        cwd: join(f.tree, 'cat-one', 'pkg'),
        after: () => Promise.resolve(),
      },
    ];
    for (const [i, h] of holders.entries()) {
      await writeBoth(f, `pending-${i}`, `written before stop ${i}\n`);
      const [cmd, ...args] = h.argv;
      const p = spawn(cmd ?? '', args, { cwd: h.cwd, stdio: ['pipe', 'pipe', 'inherit'] });
      t.after(() => p.kill('SIGKILL'));
      const gone = new Promise<void>((r) => {
        p.on('exit', () => {
          r();
        });
      });
      await new Promise<void>((r) => {
        p.stdout.once('data', () => {
          r();
        });
      });
      const gen = (await treeStatus(f)).generation;
      const r = await f.run('stop', 't');
      assert.equal(r.status, 1, `${h.what}: stop fails`);
      assertNoStack(r, h.what);
      assert.match(r.stderr, /E_BUSY/);
      assert.match(
        r.stderr,
        new RegExp(`pid ${p.pid ?? 0} \\([^\\n]*${cmd ?? ''}`),
        `${h.what}: holder named`,
      );
      assert.match(r.stderr, /your changes are committed/);
      assertStillMounted(f.sb, f.tree, h.what);
      assert.equal(
        (await treeStatus(f)).generation,
        gen + 1,
        `${h.what}: committed before failing`,
      );
      p.stdin.end('go\n');
      await gone;
      await h.after();
      await f.ok('stop', 't');
      await assertClean(f.sb, f.store, `${h.what}: after the holder left`);
      await f.ok('start', 't');
      await assertSameTree(f.model, f.tree, `${h.what}: after stop and start`);
    }
    await f.ok('stop', 't');
  });

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
});

/**
 * Commits while a writer runs (three against a writer that never pauses,
 * three against one that writes in bursts): each commit succeeds or fails
 * with E_CAPTURE; every generation published meanwhile holds only states the
 * writer left its files in; once it stops, a commit succeeds.
 */
async function writerDuringCommits(
  t: Parameters<typeof needRoot>[0],
  mode: 'in-place' | 'rename',
): Promise<void> {
  const f = await initTree(t, SMALL, [], '[defaults]\nkeep = 50\n');
  await f.ok('start', 't');
  const wdir = join(f.tree, 'w');
  await fsp.mkdir(wdir);
  const stopFile = join(f.sb.dir, 'writer-stop');
  const hotFile = join(f.sb.dir, 'writer-hot');
  await fsp.writeFile(hotFile, '');
  const writer = spawn(process.execPath, ['-e', WRITER, wdir, stopFile, hotFile, mode], {
    stdio: 'inherit',
  });
  const exited = new Promise<number | null>((r) => writer.on('exit', r));
  const results: string[] = [];
  const genBefore = (await treeStatus(f)).generation;
  try {
    await sleep(300);
    for (let i = 0; i < 6; i++) {
      if (i === 3) await fsp.rm(hotFile);
      const r = await f.run('commit', 't');
      const phase = i < 3 ? 'hot' : 'bursts';
      results.push(`${phase}: ${r.status === 0 ? 'ok' : errorCode(r)}`);
      assertNoStack(r, `commit ${i} with a writer`);
      if (r.status !== 0) {
        assert.equal(r.status, 1);
        assert.match(r.stderr, /E_CAPTURE/, `a failed commit says E_CAPTURE: ${r.stderr}`);
        assert.match(r.stderr, /hint: nothing was committed/);
      }
      assert.deepEqual(await leftovers(f.store), []);
      assert.deepEqual(strayMounts(f.sb), []);
    }
  } finally {
    await fsp.writeFile(stopFile, '');
    t.diagnostic(`${mode} writer, commits while writing: ${results.join(', ')}`);
  }
  assert.equal(await exited, 0, 'the writer ran without errors');
  // A commit once the writer is done always succeeds.
  await f.ok('commit', 't');
  const st = await treeStatus(f);
  const published = st.generations.filter((g) => g.generation > genBefore);
  assert.ok(published.length >= 1);
  // Every generation published while the writer ran holds only whole records.
  const manifest = JSON.parse(await fsp.readFile(join(f.store, 'manifest.json'), 'utf8')) as {
    generations: { generation: number; images: string[] }[];
  };
  const check = join(f.sb.dir, 'check');
  await fsp.mkdir(check);
  let files = 0;
  for (const g of manifest.generations.filter((x) => x.generation > genBefore)) {
    const layer = g.images[g.images.length - 1] ?? '';
    execFileSync('mount', ['-t', 'squashfs', '-o', 'loop,ro', join(f.store, layer), check]);
    try {
      files += await checkRecords(join(check, 'w'), `generation ${g.generation} (${layer})`);
    } finally {
      execFileSync('umount', [check]);
    }
  }
  t.diagnostic(`${published.length} generations, ${files} writer files checked`);
  const expected = join(f.sb.dir, 'expected-w');
  execFileSync('cp', ['-a', wdir, expected]);
  await f.ok('stop', 't');
  await f.ok('start', 't');
  await checkRecords(wdir, 'after stop and start');
  await assertSameTree(expected, wdir, 'the writer files after stop and start');
  await f.ok('stop', 't');
  await assertClean(f.sb, f.store, 'at the end');
}

/**
 * The writer: appends whole records to logs, rewrites fixed-size records in
 * place and replaces a file by rename, in bursts with pauses, until a stop
 * file appears. Every state it leaves a file in is checkable by checkRecords.
 */
const REC = 96 * 1024;
const WRITER = `
const fs = require('node:fs');
const path = require('node:path');
const [dir, stopFile, hotFile, mode] = process.argv.slice(1);
const REC = ${REC};
const record = (tag, seq) => {
  const head = tag + seq + ':';
  const tail = ':' + seq + '\\n';
  const fill = String.fromCharCode(97 + (seq % 26)).repeat(REC - head.length - tail.length);
  return Buffer.from(head + fill + tail);
};
let seq = 0;
const fds = [0, 1].map((i) => fs.openSync(path.join(dir, 'inplace-' + i + '.dat'), 'w'));
for (const fd of fds) fs.writeSync(fd, record('r', 0), 0, REC, 0);
const logs = [0, 1, 2].map((i) => fs.openSync(path.join(dir, 'log-' + i + '.txt'), 'a'));
const logSeq = [0, 0, 0];
function burst() {
  for (let k = 0; k < 25; k++) {
    seq++;
    const i = seq % 3;
    fs.writeSync(logs[i], 'L' + logSeq[i]++ + ' ' + 'x'.repeat(40 + (seq % 50)) + '\\n');
    if (seq % 4 === 0) fs.writeSync(fds[seq % 2], record('r', seq), 0, REC, 0);
    if (mode === 'rename' && k === 0) {
      // Many short-lived temp names: a copy of the upper that lists them finds them gone.
      for (let j = 0; j < 60; j++) fs.writeFileSync(path.join(dir, '.churn-' + j + '.tmp'), 'c' + seq + '\\n');
      for (let j = 0; j < 60; j++)
        fs.renameSync(path.join(dir, '.churn-' + j + '.tmp'), path.join(dir, 'churn-' + j + '.dat'));
    }
    if (mode === 'rename' && seq % 2 === 0) {
      // As rsync and portage do: a temp file, renamed over the real one.
      const tmp = path.join(dir, '.atomic-' + (seq % 10) + '.tmp');
      fs.writeFileSync(tmp, record('t', seq));
      fs.renameSync(tmp, path.join(dir, 'atomic-' + (seq % 10) + '.dat'));
    }
  }
}
(function loop() {
  if (fs.existsSync(stopFile)) {
    for (const fd of [...fds, ...logs]) fs.closeSync(fd);
    process.exit(0);
  }
  burst();
  // Hot: no pause at all; otherwise bursts with pauses a capture can fall into.
  setTimeout(loop, fs.existsSync(hotFile) ? 0 : Math.floor(Math.random() * 250));
})();
`;

/** Each writer file in dir must be a state the writer left it in; returns how many were checked. */
async function checkRecords(dir: string, what: string): Promise<number> {
  let n = 0;
  for (const name of await fsp.readdir(dir)) {
    const data = await fsp.readFile(join(dir, name));
    n++;
    if (name.startsWith('log-')) {
      const text = data.toString('latin1');
      assert.ok(text === '' || text.endsWith('\n'), `${what}: ${name} ends in a torn record`);
      const lines = text.split('\n').slice(0, -1);
      lines.forEach((l, i) => {
        assert.match(l, /^L\d+ x{40,89}$/, `${what}: ${name} line ${i} is torn`);
        assert.equal(l.slice(1, l.indexOf(' ')), String(i), `${what}: ${name} lost a record`);
      });
    } else if (name.startsWith('atomic-') || name.startsWith('inplace-')) {
      assert.equal(data.length, REC, `${what}: ${name} has ${data.length} bytes`);
      const text = data.toString('latin1');
      const m = /^([rt])(\d+):([a-z])+:(\d+)\n$/.exec(text);
      assert.ok(m, `${what}: ${name} is not one record`);
      const seq = Number(m[2]);
      assert.equal(m[4], m[2], `${what}: ${name} mixes records ${m[2]} and ${m[4]}`);
      const fill = String.fromCharCode(97 + (seq % 26));
      assert.ok(
        text
          .slice(text.indexOf(':') + 1, text.lastIndexOf(':'))
          .split('')
          .every((ch) => ch === fill),
        `${what}: ${name} holds a torn record`,
      );
    } else if (name.startsWith('churn-')) {
      assert.match(data.toString('latin1'), /^c\d+\n$/, `${what}: ${name} is torn`);
    } else if (!/^\.(atomic-\d|churn-\d+)\.tmp$/.test(name)) {
      assert.fail(`${what}: unexpected file ${name}`);
    }
  }
  return n;
}
