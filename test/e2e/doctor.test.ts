/**
 * doctor and the engine choice as a new admin and a user without root meet
 * them: what doctor flags (and does not), what it says for a stopped tree,
 * its summary line, a user without $XDG_RUNTIME_DIR, and a user for whom no
 * engine can work (/dev/fuse root-only, as on this machine).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, promises as fsp } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { needRoot, sandbox } from '../helpers/env.js';
import { cli, publicBin } from '../helpers/cli.js';
import { buildTree } from '../helpers/tree.js';
import { initTree } from '../helpers/setup.js';
import { needFuse } from '../helpers/engines.js';
import { makeUser } from '../helpers/user.js';

interface Doctor {
  ok: boolean;
  checks: { check: string; verdict: string; detail: string; fix?: string }[];
}

describe('doctor', { concurrency: false }, () => {
  it("another state dir's squashtree mount is not an old squash_portage mount; a real one is (issue 14.12)", async (t) => {
    if (!needRoot(t)) return;
    const f = await initTree(t);
    await f.ok('start', 't');
    const other = await sandbox(t);
    await fsp.writeFile(other.config, '');
    const run = (): Promise<Doctor> =>
      cli(['--config', other.config, '--state-dir', other.state, '--json', 'doctor']).then(
        (r) => JSON.parse(r.stdout) as Doctor,
      );
    const flagged = (d: Doctor): string[] =>
      d.checks.filter((c) => /squash_portage/.test(c.check)).map((c) => c.detail);
    assert.deepEqual(
      flagged(await run()).filter((d) => d.includes(f.tree)),
      [],
      'a tree of another state dir',
    );
    // The recipe squashtree replaces: an image and an overlay mounted by hand.
    const old = join(other.dir, 'old');
    for (const d of ['src', 'ro', 'up', 'wk', 'repo'])
      await fsp.mkdir(join(old, d), { recursive: true });
    await fsp.writeFile(join(old, 'src', 'x'), 'x\n');
    execFileSync('mksquashfs', [join(old, 'src'), join(old, 'i.sqfs'), '-quiet', '-no-progress']);
    execFileSync('mount', [
      '-t',
      'squashfs',
      '-o',
      'loop,ro',
      join(old, 'i.sqfs'),
      join(old, 'ro'),
    ]);
    execFileSync('mount', [
      '-t',
      'overlay',
      '-o',
      `lowerdir=${join(old, 'ro')},upperdir=${join(old, 'up')},workdir=${join(old, 'wk')}`,
      'overlay',
      join(old, 'repo'),
    ]);
    assert.ok(flagged(await run()).some((d) => d.includes(join(old, 'repo'))));
    await f.ok('stop', 't');
  });

  it('a stopped tree: the tmpfs upper is "not mounted", not the disk below it (issue 14.12)', async (t) => {
    if (!needRoot(t)) return;
    const f = await initTree(t);
    await f.ok('start', 't');
    await f.ok('stop', 't');
    // What a stop may leave: the empty mount point of the upper.
    await fsp.mkdir(join(f.sb.state, 't', 'upper'), { recursive: true });
    const r = await cli(['--config', f.sb.config, '--state-dir', f.sb.state, '--json', 'doctor']);
    const d = JSON.parse(r.stdout) as Doctor;
    const upper = d.checks.find((c) => c.check === 'tree t: tmpfs upper');
    assert.ok(upper, r.stdout);
    assert.match(upper.detail, /not mounted now/);
  });

  it('the summary counts the warnings instead of "all checks passed" (issue 14.12)', async (t) => {
    if (!needRoot(t)) return;
    const sb = await sandbox(t);
    const r = await cli(['--config', join(sb.dir, 'typo.toml'), '--state-dir', sb.state, 'doctor']);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^warn config:/m);
    // Other warnings depend on the machine (fuse tools missing, say): the count must be theirs.
    const warnings = r.stdout.split('\n').filter((l) => l.startsWith('warn ')).length;
    assert.match(r.stdout, new RegExp(`^no check failed; ${warnings} warnings? \\(above\\)$`, 'm'));
    assert.doesNotMatch(r.stdout, /all checks passed/);
  });

  it('a user without $XDG_RUNTIME_DIR gets a report that names it, not a usage error (issue 14.12)', async (t) => {
    if (!needRoot(t)) return;
    const user = await makeUser(t);
    const r = await user.sh(
      `unset XDG_RUNTIME_DIR; exec ${process.execPath} ${publicBin()} --json doctor`,
    );
    assert.equal(r.status, 1, r.stdout + r.stderr);
    const d = JSON.parse(r.stdout) as Doctor;
    const state = d.checks.find((c) => c.check === 'state dir');
    assert.ok(state, r.stdout);
    assert.equal(state.verdict, 'fail');
    assert.match(state.detail, /XDG_RUNTIME_DIR/);
    assert.match(state.fix ?? '', /--state-dir/);
    assert.ok(
      d.checks.some((c) => c.check === 'engine: fuse'),
      'the other checks still ran',
    );
  });

  it('a user for whom no engine works: init names why and the fix, and changes nothing (issue 14.4)', async (t) => {
    if (!needRoot(t) || !needFuse(t)) return;
    const user = await makeUser(t, { devFuseMode: 0o600 });
    const tree = join(user.home, 'tree');
    await buildTree(tree, { README: 'hi\n' });
    execFileSync('chown', ['-R', `${user.uid}:${user.gid}`, tree]);
    const r = await user.sq('init', 't', '--dir', tree);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /E_ENGINE/);
    assert.match(r.stderr, /\/dev\/fuse/);
    assert.match(r.stderr, /needs root/);
    assert.match(r.stderr, /chmod 0?666 \/dev\/fuse/);
    assert.doesNotMatch(r.stderr, /check that the kernel supports squashfs/);
    assert.equal(existsSync(join(user.home, '.config/squashtree/squashtree.toml')), false);
    assert.equal(existsSync(join(user.home, '.local/share/squashtree/t')), false);
    assert.equal(await fsp.readFile(join(tree, 'README'), 'utf8'), 'hi\n');
    // doctor's fix for the fuse engine is the device's mode, not packages already installed.
    const d = JSON.parse((await user.sq('--json', 'doctor')).stdout) as Doctor;
    const fuse = d.checks.find((c) => c.check === 'engine: fuse');
    assert.ok(fuse);
    assert.equal(fuse.verdict, 'fail');
    assert.match(fuse.fix ?? '', /chmod 0?666 \/dev\/fuse/);
    assert.doesNotMatch(fuse.fix ?? '', /apt-get/);
  });
});
