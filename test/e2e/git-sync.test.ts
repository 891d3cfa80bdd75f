/** A repository synced with git: a pull on the mounted tree works, and the commit packs only what changed. */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { needRoot, sandbox } from '../helpers/env.js';
import { sqOk } from '../helpers/cli.js';
import { needProgram } from '../helpers/programs.js';
import { generateRepo } from '../../src/corpus/portage.js';

const git = (cwd: string, ...args: string[]): string =>
  execFileSync(
    'git',
    [
      '-c',
      'user.email=t@example.org',
      '-c',
      'user.name=t',
      '-c',
      'init.defaultBranch=master',
      ...args,
    ],
    { cwd, encoding: 'utf8' },
  );

it('git pull in a mounted tree, then commit: the layer holds the pull, not the tree', async (t) => {
  if (!needRoot(t) || !needProgram(t, 'git', 'git')) return;
  const sb = await sandbox(t);
  const remote = join(sb.dir, 'remote');
  const stats = await generateRepo(remote, { categories: 4, packagesPerCategory: 15, seed: 9 });
  git(remote, 'init', '-q');
  git(remote, 'add', '-A');
  git(remote, 'commit', '-qm', 'base');
  const tree = join(sb.dir, 'tree');
  git(sb.dir, 'clone', '-q', remote, tree);
  const ok = sqOk(sb);
  await ok('init', 'g', '--dir', tree, '--store', sb.store('g'));
  await ok('start', 'g');
  const pkg = stats.packages[3] ?? '';
  await fsp.writeFile(join(remote, pkg, 'Manifest'), 'DIST new 1 BLAKE2B 00 SHA512 00\n');
  await fsp.rm(join(remote, stats.packages[5] ?? ''), { recursive: true });
  git(remote, 'add', '-A');
  git(remote, 'commit', '-qm', 'a day of changes');
  git(tree, 'pull', '-q', '--ff-only');
  assert.equal(git(tree, 'status', '--porcelain'), '');
  const upper = execFileSync('find', [join(sb.state, 'g/upper/data'), '!', '-type', 'd'], {
    encoding: 'utf8',
  })
    .split('\n')
    .filter(Boolean);
  t.diagnostic(`upper after the pull: ${upper.length} entries for a ${stats.files}-file tree`);
  assert.ok(upper.length < 60, `the pull touched ${upper.length} entries`);
  await ok('commit', 'g');
  await ok('stop', 'g');
  await ok('start', 'g');
  assert.equal(git(tree, 'rev-parse', 'HEAD'), git(remote, 'rev-parse', 'HEAD'));
  assert.equal(git(tree, 'status', '--porcelain'), '');
  assert.equal(
    await fsp.readFile(join(tree, pkg, 'Manifest'), 'utf8'),
    'DIST new 1 BLAKE2B 00 SHA512 00\n',
  );
  await ok('stop', 'g');
});
