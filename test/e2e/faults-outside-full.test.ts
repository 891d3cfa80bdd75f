/**
 * Faults that come from outside squashtree: a full store and a full upper.
 * Whatever happens, the last committed generation stays intact and mountable,
 * pending changes stay pending, and the next command leaves no temp file,
 * stray mount or loop device behind.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp, openSync, writeSync, closeSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { needRoot } from '../helpers/env.js';
import { assertSameTree } from '../helpers/tree.js';
import { initTree, leftovers, SMALL } from '../helpers/setup.js';
import {
  assertClean,
  assertNoStack,
  fillTo,
  runtimeOf,
  strayMounts,
  treeStatus,
} from '../helpers/reliability.js';
import {
  errorCode,
  errorLine,
  treeOnSmallStore,
  writeBoth,
  orphanImages,
  assertStillMounted,
} from '../helpers/outside-faults.js';

describe('faults from outside: a full store or upper', { concurrency: false }, () => {
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
});
