/**
 * Integrations as real as this machine allows: generated scripts pass sh -n
 * and shellcheck, units pass systemd-analyze verify, the OpenRC script's
 * start and stop run (sourced with ebegin/eend defined) against a real tree,
 * the portage hook runs exactly as portage runs it, and portage's own rsync
 * steps show the hard-link trap and its fix.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, promises as fsp } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { needRoot, mountsBelow } from '../helpers/env.js';
import { cli } from '../helpers/cli.js';
import { initTree, parseJson, type StatusJson } from '../helpers/setup.js';
import { generateRepo } from '../../src/corpus/portage.js';
import { PORTAGE_RSYNC } from '../helpers/portage.js';

const has = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

async function generation(f: {
  ok: (...a: string[]) => Promise<{ stdout: string }>;
}): Promise<number> {
  return (
    parseJson<StatusJson>((await f.ok('status', '--json')) as never).trees[0]?.generation ?? -1
  );
}

describe('integrations', { concurrency: false }, () => {
  it('install writes every target with a marker, checks pass, uninstall removes only its files', async (t) => {
    if (!needRoot(t)) return;
    const f = await initTree(t);
    const root = join(f.sb.dir, 'root');
    for (const target of ['openrc', 'systemd', 'portage', 'cron']) {
      const r = await f.run('install', target, '--root', root, '--yes');
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /created /);
    }
    const scripts = ['etc/init.d/squashtree', 'etc/portage/repo.postsync.d/squashtree'].map((p) =>
      join(root, p),
    );
    for (const s of scripts) {
      assert.equal(spawnSync('sh', ['-n', s]).status, 0, `sh -n ${s}`);
      assert.ok(((await fsp.stat(s)).mode & 0o111) !== 0, `${s} is executable`);
    }
    if (has('shellcheck')) {
      const r = spawnSync('shellcheck', ['-s', 'sh', '-e', 'SC2034,SC2317', ...scripts], {
        encoding: 'utf8',
      });
      assert.equal(r.status, 0, r.stdout);
    } else t.diagnostic('shellcheck not installed: skipped');
    if (has('systemd-analyze')) {
      const units = [
        'squashtree.service',
        'squashtree-commit.service',
        'squashtree-commit.timer',
      ].map((u) => join(root, 'etc/systemd/system', u));
      const r = spawnSync('systemd-analyze', ['verify', '--man=no', ...units], {
        encoding: 'utf8',
      });
      assert.equal(r.status, 0, r.stdout + r.stderr);
    } else t.diagnostic('systemd-analyze not installed: skipped');
    // A file squashtree did not write is neither replaced nor removed.
    const foreign = join(root, 'etc/cron.d/squashtree');
    await fsp.writeFile(foreign, '# mine\n');
    const refused = await f.run('install', 'cron', '--root', root);
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /E_FOREIGN_FILE/);
    assert.match(refused.stderr, /--force/);
    const un = await f.run('uninstall', 'cron', '--root', root);
    assert.match(un.stdout, /kept .*not written by squashtree/);
    assert.equal(await fsp.readFile(foreign, 'utf8'), '# mine\n');
    await f.ok('install', 'cron', '--root', root, '--force');
    for (const target of ['openrc', 'systemd', 'portage', 'cron'])
      await f.ok('uninstall', target, '--root', root);
    for (const s of scripts) assert.equal(existsSync(s), false);
  });

  it('the OpenRC script starts and stops a real tree (sourced with ebegin/eend)', async (t) => {
    if (!needRoot(t)) return;
    const f = await initTree(t);
    const root = join(f.sb.dir, 'root');
    await f.ok('install', 'openrc', '--root', root);
    const script = join(root, 'etc/init.d/squashtree');
    const shim = `ebegin() { echo "* $*"; }; eend() { return "$1"; }; . ${script}; depend() { :; };`;
    let r = spawnSync('sh', ['-c', `${shim} start`], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.ok(mountsBelow(f.tree).length > 0, 'mounted by the init script');
    await fsp.writeFile(join(f.tree, 'from-openrc'), 'x\n');
    r = spawnSync('sh', ['-c', `${shim} commit`], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    r = spawnSync('sh', ['-c', `${shim} stop`], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.deepEqual(mountsBelow(f.tree), []);
    await f.ok('start', 't');
    assert.equal(await fsp.readFile(join(f.tree, 'from-openrc'), 'utf8'), 'x\n');
    await f.ok('stop', 't');
  });

  it('the portage hook commits only its tree, ignores other repositories, fails only when the commit fails', async (t) => {
    if (!needRoot(t)) return;
    const f = await initTree(t);
    const root = join(f.sb.dir, 'root');
    await f.ok('install', 'portage', '--root', root);
    const hook = join(root, 'etc/portage/repo.postsync.d/squashtree');
    await f.ok('start', 't');
    const g0 = await generation(f);
    await fsp.writeFile(join(f.tree, 'synced'), 'new\n');
    // Portage runs each hook with NAME SYNC-URI LOCATION and a sparse environment.
    const env = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', PORTAGE_REPO_NAME: 'guru' };
    let r = spawnSync(hook, ['other', 'rsync://x/other', '/var/db/repos/other'], {
      env,
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(await generation(f), g0, 'another repository is not our business');
    r = spawnSync(hook, ['guru', 'rsync://127.0.0.1/guru', `${f.tree}/`], {
      env,
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /committed generation/);
    assert.equal(await generation(f), g0 + 1);
    // A commit that fails makes the hook fail, and says why.
    await fsp.writeFile(join(f.tree, 'more'), 'x\n');
    const bin = join(f.sb.dir, 'bin');
    await fsp.mkdir(bin);
    await fsp.writeFile(
      join(bin, 'mksquashfs'),
      '#!/bin/sh\necho "FATAL ERROR: no space left" >&2\nexit 1\n',
      { mode: 0o755 },
    );
    r = spawnSync(hook, ['guru', 'rsync://127.0.0.1/guru', f.tree], {
      env: { ...env, PATH: `${bin}:${env.PATH}` },
      encoding: 'utf8',
    });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /mksquashfs/);
    await f.ok('stop', 't');
  });

  it('squashtree run holds the lock, commits when the command succeeds and returns its status', async (t) => {
    if (!needRoot(t)) return;
    const f = await initTree(t);
    const g0 = await generation(f);
    // The command runs inside the tree's lock: a commit from inside it uses the inherited descriptor.
    const inner = `echo run > ${f.tree}/from-run && ${process.execPath} ${join(process.cwd(), 'bin/squashtree.js')} --config ${f.sb.config} --state-dir ${f.sb.state} --wait 0 status t >/dev/null`;
    const r = await f.run('run', 't', '--', 'sh', '-c', inner);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(await generation(f), g0 + 1);
    const failed = await f.run(
      'run',
      't',
      '--',
      'sh',
      '-c',
      `echo nope > ${f.tree}/from-failed; exit 7`,
    );
    assert.equal(failed.status, 7);
    assert.equal(await generation(f), g0 + 1, 'nothing committed after a failure');
    await f.ok('stop', 't', '--on-stop', 'discard');
  });

  it("portage's hard-link quarantine copies the whole tree into the upper; sync-allow-hardlinks = no does not", async (t) => {
    if (!needRoot(t)) return;
    if (!has('rsync')) {
      t.skip('rsync not installed');
      return;
    }
    const f = await initTree(t, {});
    // Replace the tiny fixture with a generated repository and a "tomorrow" copy.
    await f.ok('stop', 't');
    const src = join(f.sb.dir, 'snapshot');
    const stats = await generateRepo(src, { categories: 6, packagesPerCategory: 25, seed: 5 });
    assert.ok(stats.files > 500);
    await f.ok('start', 't');
    const opts = PORTAGE_RSYNC;
    execFileSync('rsync', [...opts, `${src}/`, `${f.tree}/`]);
    await f.ok('stop', 't');
    await f.ok('start', 't');
    await fsp.appendFile(join(src, 'metadata/timestamp.chk'), 'next day\n');
    const upperFiles = (): number =>
      Number(
        execFileSync('sh', ['-c', `find ${f.sb.state}/t/upper/data -type f | wc -l`], {
          encoding: 'utf8',
        }).trim(),
      );
    // Portage with sync-allow-hardlinks = yes: link-dest quarantine, download, commit back.
    const q = join(f.tree, '.tmp-unverified-download-quarantine');
    const ex = [
      '--exclude=/distfiles',
      '--exclude=/local',
      '--exclude=/lost+found',
      '--exclude=/packages',
      '--exclude',
      '/.tmp-unverified-download-quarantine',
    ];
    execFileSync('rsync', ['-a', '--link-dest', f.tree, ...ex, `${f.tree}/`, `${q}/`]);
    execFileSync('rsync', [...opts, `${src}/`, `${q}/`]);
    execFileSync('rsync', ['-a', '--delete', ...ex, `${q}/`, `${f.tree}/`]);
    execFileSync('rm', ['-rf', q]);
    const withLinks = upperFiles();
    await f.ok('discard', 't', '--yes');
    // sync-allow-hardlinks = no: rsync straight into the tree.
    execFileSync('rsync', [...opts, `${src}/`, `${f.tree}/`]);
    const without = upperFiles();
    t.diagnostic(
      `upper files after a one-file sync: ${withLinks} with hard links, ${without} without`,
    );
    assert.ok(
      withLinks >= stats.files * 0.9,
      `the quarantine copied up ${withLinks} of ${stats.files} files`,
    );
    assert.ok(without <= 2, `without hard links only the changed file goes up (${without})`);
    await f.ok('stop', 't', '--on-stop', 'discard');
  });

  it('doctor warns about the hard-link trap and DISTDIR inside the tree; install portage --yes fixes the first', async (t) => {
    if (!needRoot(t)) return;
    const f = await initTree(t);
    const root = join(f.sb.dir, 'root');
    await fsp.mkdir(join(root, 'etc/portage/repos.conf'), { recursive: true });
    await fsp.writeFile(
      join(root, 'etc/portage/repos.conf/guru.conf'),
      `[guru]\nlocation = ${f.tree}\nsync-type = rsync\n`,
    );
    await fsp.writeFile(join(root, 'etc/portage/make.conf'), `DISTDIR="${f.tree}/distfiles"\n`);
    const doctor = (): ReturnType<typeof cli> =>
      cli(['--config', f.sb.config, '--state-dir', f.sb.state, 'doctor'], {
        env: { PORTAGE_CONFIGROOT: root },
      });
    let d = await doctor();
    assert.match(d.stdout, /sync-allow-hardlinks = yes/);
    assert.match(d.stdout, /DISTDIR=.* lies inside the tree/);
    const noTty = await f.run('install', 'portage', '--root', root);
    assert.match(noTty.stdout, /would write .*zz-squashtree\.conf \(not written/);
    assert.equal(existsSync(join(root, 'etc/portage/repos.conf/zz-squashtree.conf')), false);
    await f.ok('install', 'portage', '--root', root, '--yes');
    d = await doctor();
    assert.doesNotMatch(d.stdout, /sync-allow-hardlinks = yes/);
    await f.ok('uninstall', 'portage', '--root', root);
    assert.equal(existsSync(join(root, 'etc/portage/repos.conf/zz-squashtree.conf')), false);
  });

  it('completion scripts and the man page come from the help text', async () => {
    const bash = await cli(['completion', 'bash']);
    assert.equal(bash.status, 0);
    assert.equal(spawnSync('bash', ['-n'], { input: bash.stdout }).status, 0);
    assert.match(bash.stdout, /commit/);
    const zsh = await cli(['completion', 'zsh']);
    assert.match(zsh.stdout, /#compdef squashtree/);
    const man = await cli(['man']);
    assert.match(man.stdout, /^\.TH SQUASHTREE 8/);
    for (const c of ['init', 'commit', 'rollback', 'install'])
      assert.match(man.stdout, new RegExp(`\\.B ${c}`));
  });
});
