/**
 * Commits stack within a session, through the CLI: what a second commit's
 * layer holds, what diff and status say after a commit (issue 14, item 1),
 * and the check of the new stack catching a layer that would not show the
 * tree (then the commit packs the whole session's changes instead).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { needRoot, sandbox } from '../helpers/env.js';
import { cli, sqOk } from '../helpers/cli.js';
import { assertSameTree, buildTree, type Spec } from '../helpers/tree.js';
import { initTree, parseJson } from '../helpers/setup.js';
import { Twin } from '../helpers/twin.js';

const tricky: Spec = {
  README: 'hello\n',
  'with space.txt': 'spaces\n',
  'dev-cat': {
    dir: {
      'pkg-one': {
        dir: {
          'pkg-one-1.0.ebuild': 'EAPI=8\n',
          Manifest: 'DIST a 1 SHA512 00\n',
          files: { dir: { 'fix.patch': '--- a\n' } },
        },
      },
      'pkg-two': { dir: { 'pkg-two-2.0.ebuild': 'EAPI=8\n' } },
    },
  },
  'big.bin': Buffer.alloc(300_000, 7),
};

/** Paths in a layer image (unsquashfs -l): what a commit packed. */
function layerPaths(image: string): string[] {
  return execFileSync('unsquashfs', ['-l', '-d', '', image], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.startsWith('/'));
}

interface CommitJson {
  trees: {
    result: { committed: boolean; generation: number; mode?: string; modeReason?: string };
  }[];
}

describe('stacked commits', { concurrency: false }, () => {
  it('a second commit packs only what changed since the first', async (t) => {
    if (!needRoot(t)) return;
    const f = await initTree(t, tricky, [], '[defaults]\ncompact-after = 50\n');
    const tw = new Twin(f.tree, f.model);
    await f.ok('start', 't');
    await tw.write('dev-cat/pkg-one/pkg-one-1.1.ebuild', 'EAPI=8\n# bump\n');
    await tw.write('new file \xe9', 'added\n');
    await tw.truncate('big.bin', 1000);
    await f.ok('commit', 't');
    await tw.write('later.txt', 'second commit\n');
    await tw.rm('new file \xe9');
    const r = parseJson<CommitJson>(await f.ok('commit', 't', '--json')).trees[0]?.result;
    assert.deepEqual([r?.generation, r?.mode], [3, 'stacked']);
    const second = layerPaths(join(f.store, 'g000003-layer.sqfs'));
    assert.ok(second.includes('/later.txt'), `the new file: ${second.join(' ')}`);
    assert.ok(second.includes('/new file \xe9'), 'the whiteout of the one removed');
    assert.ok(
      !second.some((p) => p.includes('pkg-one') || p.includes('big.bin')),
      `nothing the first commit packed: ${second.join(' ')}`,
    );
    await f.ok('stop', 't');
    await f.ok('start', 't');
    await assertSameTree(f.model, f.tree, 'after stop and start');
    await f.ok('stop', 't');
  });

  it('diff after a commit lists only what is pending; status counts the lines diff prints', async (t) => {
    if (!needRoot(t)) return;
    const sb = await sandbox(t);
    const tree = join(sb.dir, 'tree');
    await buildTree(tree, tricky);
    const ok = sqOk(sb);
    await ok('init', 't', '--dir', tree, '--store', sb.store('t'));
    await ok('start', 't');
    const pending = async (): Promise<number> =>
      (
        JSON.parse((await ok('status', 't', '--json')).stdout) as {
          trees: { pending: { files: number } }[];
        }
      ).trees[0]?.pending.files ?? -1;
    const lines = async (): Promise<string[]> =>
      (await ok('diff', 't')).stdout.split('\n').filter(Boolean);
    await fsp.writeFile(join(tree, 'X1'), 'a\n');
    await ok('commit', 't');
    assert.equal(await pending(), 0);
    assert.deepEqual(await lines(), [], 'the committed change is not pending (issue 14, item 1)');
    // A dir with entries deleted: one line per entry, and status counts as many.
    await fsp.rm(join(tree, 'dev-cat'), { recursive: true });
    await fsp.writeFile(join(tree, 'X2'), 'b\n');
    const diff = await lines();
    assert.ok(diff.includes('D dev-cat/pkg-one/files/fix.patch'), diff.join('\n'));
    assert.ok(diff.includes('A X2'));
    assert.ok(!diff.some((l) => l.includes('X1')), 'X1 is committed');
    assert.equal(await pending(), diff.length, 'status and diff count alike');
    await ok('stop', 't');
  });

  it('a layer that would not show the tree is caught before publishing; the whole session is packed instead', async (t) => {
    if (!needRoot(t)) return;
    const f = await initTree(t, tricky, [], '[defaults]\ncompact-after = 50\n');
    const tw = new Twin(f.tree, f.model);
    await f.ok('start', 't');
    await tw.write('committed.txt', 'first\n');
    await f.ok('commit', 't');
    await tw.rm('committed.txt');
    await tw.rm('dev-cat/pkg-two');
    // The plan forgets a whiteout on purpose (a test mutation): the new stack would still show it.
    const r = await cli(
      ['--config', f.sb.config, '--state-dir', f.sb.state, '--json', 'commit', 't'],
      {
        env: {
          SQUASHTREE_TEST_MUTATION: 'plan:drop-whiteout',
          SQUASHTREE_TEST_FAULT_ACK: 'kill-me-i-am-a-test',
        },
      },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /would not show the tree/);
    const res = parseJson<CommitJson>(r).trees[0]?.result;
    assert.equal(res?.mode, 'full', 'packed the whole session instead');
    assert.match(res?.modeReason ?? '', /shown by the new stack|lacks|shows/);
    assert.equal((await f.ok('diff', 't')).stdout, '');
    await f.ok('stop', 't');
    await f.ok('start', 't');
    await assertSameTree(f.model, f.tree, 'after the fallback');
    await f.ok('stop', 't');
  });
});
