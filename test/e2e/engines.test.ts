/**
 * Mount engines as root: a tree moves from the kernel engine to the fuse
 * engine and back with identical content, deletions and replaced
 * directories included, and the readonly engine mounts it without an upper
 * and refuses to commit.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { needRoot, sandbox } from '../helpers/env.js';
import { sq, sqOk } from '../helpers/cli.js';
import { buildTree, assertSameTree, type Spec } from '../helpers/tree.js';
import { Twin } from '../helpers/twin.js';
import { fstypeAt, needFuse, setEngine } from '../helpers/engines.js';

const spec: Spec = {
  README: 'hello\n',
  'x-cat': {
    dir: {
      one: {
        dir: { 'one-1.ebuild': 'EAPI=8\n', Manifest: 'DIST a 1\n', files: { dir: { p: 'p\n' } } },
      },
      two: { dir: { 'two-1.ebuild': 'EAPI=8\n', 'two-2.ebuild': 'EAPI=8\n' } },
      three: { dir: { 'three-1.ebuild': 'EAPI=8\n' } },
    },
  },
  'y-cat': { dir: { four: { dir: { 'four-1.ebuild': 'EAPI=8\n' } } } },
  owned: { file: 'owned\n', uid: 1234, gid: 4321, mode: 0o640 },
  link: { symlink: 'README' },
};

/** Names of a layer image's entries (unsquashfs -l), for what a commit packed. */
function layerNames(image: string): string[] {
  return execFileSync('unsquashfs', ['-l', '-d', '', image], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.startsWith('/'));
}

describe('engines', { concurrency: false }, () => {
  it('a tree moves kernel -> fuse -> kernel with identical content, deletions and opaque dirs included', async (t) => {
    if (!needRoot(t) || !needFuse(t)) return;
    const sb = await sandbox(t);
    const tree = join(sb.dir, 'tree');
    const model = join(sb.dir, 'model');
    await buildTree(tree, spec);
    await buildTree(model, spec);
    const ok = sqOk(sb);
    await ok('init', 't', '--dir', tree, '--store', sb.store('t'), '--engine', 'kernel');

    await ok('start', 't');
    assert.equal(fstypeAt(tree), 'overlay');
    const tw = new Twin(tree, model);
    await tw.rm('README');
    await tw.rm('x-cat/two'); // a dir deleted
    await tw.rm('x-cat/one'); // a dir replaced: opaque in the kernel's upper
    await tw.mkdir('x-cat/one');
    await tw.write('x-cat/one/one-2.ebuild', 'EAPI=8\n# new\n');
    await tw.write('new-file', 'kernel\n');
    await ok('commit', 't');
    await ok('stop', 't');

    await setEngine(sb.config, 'fuse');
    await ok('start', 't');
    assert.equal(fstypeAt(tree), 'fuse.fuse-overlayfs');
    await assertSameTree(model, tree, 'kernel layer read through fuse', { live: true });
    const st = JSON.parse((await ok('status', 't', '--json')).stdout) as {
      trees: { engine: { name: string } }[];
    };
    assert.equal(st.trees[0]?.engine.name, 'fuse');
    await tw.rm('x-cat/three/three-1.ebuild');
    await tw.rm('y-cat/four'); // replaced under fuse-overlayfs: its own opaque markers
    await tw.mkdir('y-cat/four');
    await tw.write('y-cat/four/four-9.ebuild', 'EAPI=8\n# fuse\n');
    await tw.rm('new-file');
    await tw.write('from-fuse', 'fuse\n');
    const diff = (await ok('diff', 't')).stdout;
    assert.doesNotMatch(diff, /\.wh\./, 'diff shows no fuse-overlayfs markers');
    await ok('commit', 't');
    await ok('stop', 't');
    const layers = (await fsp.readdir(sb.store('t')))
      .filter((n) => n.endsWith('-layer.sqfs'))
      .sort();
    const names = layerNames(join(sb.store('t'), layers[layers.length - 1] ?? ''));
    assert.ok(
      !names.some((n) => n.includes('.wh.')),
      `no markers in the layer: ${names.join(' ')}`,
    );

    await setEngine(sb.config, 'kernel');
    await ok('start', 't');
    assert.equal(fstypeAt(tree), 'overlay');
    await assertSameTree(model, tree, 'fuse layer read through the kernel', { live: true });
    // Compaction under the kernel engine, then read through fuse again.
    await ok('stop', 't');
    await ok('compact', 't');
    await setEngine(sb.config, 'fuse');
    await ok('start', 't');
    await assertSameTree(model, tree, 'compacted, read through fuse', { live: true });
    await ok('stop', 't');
  });

  it('readonly mounts the stack without an upper and refuses to commit', async (t) => {
    if (!needRoot(t)) return;
    const sb = await sandbox(t);
    const tree = join(sb.dir, 'tree');
    const model = join(sb.dir, 'model');
    await buildTree(tree, spec);
    await buildTree(model, spec);
    const ok = sqOk(sb);
    const run = sq(sb);
    await ok('init', 't', '--dir', tree, '--store', sb.store('t'));
    await ok('start', 't');
    await new Twin(tree, model).rm('x-cat/two');
    await ok('stop', 't'); // a second image, so the stack has two layers

    await setEngine(sb.config, 'readonly');
    await ok('start', 't');
    await assertSameTree(model, tree, 'readonly view', { live: true });
    await assert.rejects(fsp.writeFile(join(tree, 'nope'), 'x'), { code: 'EROFS' });
    const c = await run('commit', 't');
    assert.equal(c.status, 1);
    assert.match(c.stderr, /E_READONLY/);
    const st = JSON.parse((await ok('status', 't', '--json')).stdout) as {
      trees: { state: string; engine: { name: string; reason: string } }[];
    };
    assert.equal(st.trees[0]?.state, 'mounted');
    assert.equal(st.trees[0]?.engine.name, 'readonly');
    await ok('stop', 't');
    assert.equal(fstypeAt(tree), '');
    // A tree mounted with one engine keeps it until stopped, whatever the config says meanwhile.
    await ok('start', 't');
    await setEngine(sb.config, 'kernel');
    const again = await run('commit', 't');
    assert.match(again.stderr, /E_READONLY/);
    await ok('stop', 't');
  });

  it('status and doctor say which engine is used and why the others are not', async (t) => {
    if (!needRoot(t)) return;
    const sb = await sandbox(t);
    const tree = join(sb.dir, 'tree');
    await buildTree(tree, spec);
    const ok = sqOk(sb);
    await ok('init', 't', '--dir', tree, '--store', sb.store('t'));
    const st = JSON.parse((await ok('status', 't', '--json')).stdout) as {
      trees: { engine: { name: string; setting: string; reason: string } }[];
    };
    assert.deepEqual(
      { name: st.trees[0]?.engine.name, setting: st.trees[0]?.engine.setting },
      { name: 'kernel', setting: 'auto' },
    );
    const text = (await ok('status', 't')).stdout;
    assert.match(text, /engine: kernel \(auto/);
    const doc = await sq(sb)('doctor');
    assert.match(doc.stdout, /engine: kernel: works; engine = "auto" uses it/);
    assert.match(doc.stdout, /engine: readonly: works/);
    assert.match(doc.stdout, /tree t: engine: kernel/);
  });
});
