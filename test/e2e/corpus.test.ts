/**
 * The real corpus (../shared/corpus: snapshots of a Gentoo repository a day
 * and a week apart), synced with portage's rsync options into a mounted
 * tree. Skipped, saying so, where the corpus is not present.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, promises as fsp } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { needProgram } from '../helpers/programs.js';
import { needRoot, sandbox } from '../helpers/env.js';
import { sqOk } from '../helpers/cli.js';
import { parseJson, type StatusJson } from '../helpers/setup.js';
import { CORPUS, PORTAGE_RSYNC } from '../helpers/portage.js';

function sameTree(expected: string, actual: string): string {
  const out = execFileSync(
    'rsync',
    ['-n', '-a', '-c', '-O', '--delete', '-i', `${expected}/`, `${actual}/`],
    { encoding: 'utf8' },
  );
  return out
    .split('\n')
    .filter((l) => l && !l.startsWith('.d'))
    .slice(0, 5)
    .join('\n');
}

describe('real Gentoo repository snapshots', () => {
  it('guru-base -> d1 (commit) -> d7 (on-stop commit) -> compact, tree equal after each', async (t) => {
    if (!existsSync(join(CORPUS, 'guru-base.tar.xz'))) {
      const msg = `corpus not found at ${CORPUS}; skipping the real-corpus test`;
      console.log(`# SKIP: ${msg}`);
      t.skip(msg);
      return;
    }
    if (!needRoot(t) || !needProgram(t, 'rsync', 'rsync') || !needProgram(t, 'xz', 'xz-utils'))
      return;
    const sb = await sandbox(t);
    for (const s of ['base', 'd1', 'd7']) {
      await fsp.mkdir(join(sb.dir, s));
      execFileSync('tar', ['-xJf', join(CORPUS, `guru-${s}.tar.xz`), '-C', join(sb.dir, s)]);
    }
    const tree = join(sb.dir, 'tree');
    execFileSync('cp', ['-a', join(sb.dir, 'base'), tree]);
    const ok = sqOk(sb);
    await ok('init', 'guru', '--dir', tree, '--store', sb.store('guru'), '--compression', 'gzip');
    await ok('start', 'guru');
    assert.equal(sameTree(join(sb.dir, 'base'), tree), '');
    execFileSync('rsync', [...PORTAGE_RSYNC, `${join(sb.dir, 'd1')}/`, `${tree}/`]);
    await ok('commit', 'guru');
    await ok('stop', 'guru');
    await ok('start', 'guru');
    assert.equal(sameTree(join(sb.dir, 'd1'), tree), '');
    execFileSync('rsync', [...PORTAGE_RSYNC, `${join(sb.dir, 'd7')}/`, `${tree}/`]);
    await ok('stop', 'guru');
    await ok('compact', 'guru');
    await ok('start', 'guru');
    assert.equal(sameTree(join(sb.dir, 'd7'), tree), '');
    await ok('stop', 'guru');
  });

  it("after install openrc and install portage, a sync through portage's steps commits only what changed", async (t) => {
    if (!existsSync(join(CORPUS, 'guru-d1.tar.xz'))) {
      const msg = `corpus not found at ${CORPUS}; skipping`;
      console.log(`# SKIP: ${msg}`);
      t.skip(msg);
      return;
    }
    if (!needRoot(t) || !needProgram(t, 'rsync', 'rsync') || !needProgram(t, 'xz', 'xz-utils'))
      return;
    const sb = await sandbox(t);
    for (const s of ['base', 'd1']) {
      await fsp.mkdir(join(sb.dir, s));
      execFileSync('tar', ['-xJf', join(CORPUS, `guru-${s}.tar.xz`), '-C', join(sb.dir, s)]);
    }
    const tree = join(sb.dir, 'tree');
    execFileSync('cp', ['-a', join(sb.dir, 'base'), tree]);
    const root = join(sb.dir, 'root');
    await fsp.mkdir(join(root, 'etc/portage/repos.conf'), { recursive: true });
    await fsp.writeFile(
      join(root, 'etc/portage/repos.conf/guru.conf'),
      `[guru]\nlocation = ${tree}\nsync-type = rsync\n`,
    );
    const ok = sqOk(sb);
    await ok('init', 'guru', '--dir', tree, '--store', sb.store('guru'), '--compression', 'gzip');
    await ok('install', 'openrc', '--root', root);
    const install = await ok('install', 'portage', '--root', root, '--yes');
    assert.match(install.stdout, /sync-allow-hardlinks = no/);
    const rc = `ebegin() { :; }; eend() { return "$1"; }; . ${join(root, 'etc/init.d/squashtree')};`;
    execFileSync('sh', ['-c', `${rc} start`]);
    const gen = async (): Promise<number> =>
      parseJson<StatusJson>(await ok('status', '--json')).trees[0]?.generation ?? -1;
    const g0 = await gen();
    // sync-allow-hardlinks = no: portage rsyncs straight into the repository.
    execFileSync('rsync', [...PORTAGE_RSYNC, `${join(sb.dir, 'd1')}/`, `${tree}/`]);
    const upper = execFileSync('find', [join(sb.state, 'guru/upper/data'), '!', '-type', 'd'], {
      encoding: 'utf8',
    })
      .split('\n')
      .filter(Boolean);
    t.diagnostic(`upper after the one-day sync: ${upper.length} entries`);
    assert.ok(
      upper.length > 100 && upper.length < 400,
      `only the changed files went up (${upper.length})`,
    );
    const hook = join(root, 'etc/portage/repo.postsync.d/squashtree');
    execFileSync(hook, ['guru', 'rsync://127.0.0.1/guru', tree], {
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
    });
    assert.equal(await gen(), g0 + 1);
    execFileSync('sh', ['-c', `${rc} stop`]);
    assert.equal(
      execFileSync('sh', ['-c', `grep -c ' ${sb.dir}' /proc/self/mounts || true`], {
        encoding: 'utf8',
      }).trim(),
      '0',
    );
    await ok('start', 'guru');
    assert.equal(sameTree(join(sb.dir, 'd1'), tree), '');
    await ok('stop', 'guru');
  });
});
