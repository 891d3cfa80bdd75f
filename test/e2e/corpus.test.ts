/**
 * The real corpus (../shared/corpus: snapshots of a Gentoo repository a day
 * and a week apart), synced with portage's rsync options into a mounted
 * tree. Skipped, saying so, where the corpus is not present.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, promises as fsp } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { needRoot, sandbox } from '../helpers/env.js';
import { sqOk } from '../helpers/cli.js';

const CORPUS = fileURLToPath(new URL('../../../shared/corpus', import.meta.url));
const PORTAGE_RSYNC = [
  '--recursive',
  '--links',
  '--safe-links',
  '--perms',
  '--times',
  '--omit-dir-times',
  '--force',
  '--whole-file',
  '--delete',
  '--exclude=/distfiles',
  '--exclude=/local',
  '--exclude=/packages',
  '--exclude=/.git',
];

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
    if (!needRoot(t)) return;
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
});
