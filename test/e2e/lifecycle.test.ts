/**
 * The whole lifecycle through the built CLI, on real loop devices, SquashFS
 * and overlays. After every generation the mounted tree must equal a model
 * directory that received the same operations.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { needRoot, sandbox, mountsBelow } from '../helpers/env.js';
import { sq, sqOk } from '../helpers/cli.js';
import { buildTree, assertSameTree, setXattr, type Spec } from '../helpers/tree.js';
import { Twin } from '../helpers/twin.js';
import { walkSync } from '../../src/fs/walk.js';

const NON_UTF8 = 'caf\xe9-\xff\xfe';

const tricky: Spec = {
  README: 'hello\n',
  'with space.txt': 'spaces\n',
  'new\nline': 'a name with a newline\n',
  [NON_UTF8]: 'latin-1 bytes in the name\n',
  'setuid-bin': { file: '#!/bin/sh\nid -u\n', mode: 0o4755 },
  owned: { file: 'owned by 1234\n', uid: 1234, gid: 4321, mode: 0o640 },
  'xattr-file': { file: 'has xattrs\n', xattrs: { 'user.origin': 'corpus', 'user.empty': '' } },
  'link-to-readme': { symlink: 'README' },
  dangling: { symlink: 'does/not/exist' },
  'hard-a': 'shared inode\n',
  'hard-b': { hardlink: 'hard-a' },
  fifo: { fifo: true },
  'empty-dir': { dir: {} },
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
    xattrs: { 'user.dir': 'yes' },
  },
  sticky: { dir: { x: 'x\n' }, mode: 0o1777 },
  'big.bin': Buffer.alloc(300_000, 7),
};

describe('lifecycle', { concurrency: false }, () => {
  it('init, start, commit, stop, start, compact, rollback, discard keep the tree exact', async (t) => {
    if (!needRoot(t)) return;
    const sb = await sandbox(t);
    const tree = join(sb.dir, 'tree');
    const model = join(sb.dir, 'model');
    await buildTree(tree, tricky);
    execFileSync('cp', ['-a', tree, model]);
    const ok = sqOk(sb);
    const run = sq(sb);
    // The explicit compact below is the one under test: no automatic one at stop.
    await fsp.writeFile(sb.config, '[defaults]\ncompact-after = 50\n');
    await ok('init', 'repo', '--dir', tree, '--store', sb.store('repo'), '--compression', 'gzip');
    await ok('start', 'repo');
    assert.match(
      execFileSync('findmnt', ['-n', '-o', 'FSTYPE,OPTIONS', tree], { encoding: 'utf8' }),
      /overlay.*nosuid.*nodev/,
    );
    await assertSameTree(model, tree, 'after init', { mtime: true });

    const tw = new Twin(tree, model);
    await tw.write('dev-cat/pkg-one/pkg-one-1.1.ebuild', 'EAPI=8\n# bump\n');
    await tw.append('dev-cat/pkg-one/Manifest', 'DIST b 2 SHA512 11\n');
    await tw.rm('dev-cat/pkg-two');
    await tw.mkdir('dev-cat/pkg-two');
    await tw.write('dev-cat/pkg-two/pkg-two-3.0.ebuild', 'EAPI=8\n# replaced dir\n');
    await tw.rm('README');
    await tw.write('new file \xe9', 'added\n');
    await tw.chmod('with space.txt', 0o600);
    await tw.mkdir('new-empty-dir');
    await tw.link('with space.txt', 'hard-c');
    await tw.truncate('big.bin', 1000);
    await tw.both((r) => {
      setXattr(join(r, 'with space.txt'), 'user.added', 'later');
    });

    const diff = await ok('diff', 'repo');
    assert.match(diff.stdout, /^D README$/m);
    assert.match(diff.stdout, /^A dev-cat\/pkg-one\/pkg-one-1\.1\.ebuild$/m);
    assert.match(diff.stdout, /^M dev-cat\/pkg-one\/Manifest$/m);
    assert.match(diff.stdout, /^D dev-cat\/pkg-two\/pkg-two-2\.0\.ebuild$/m);

    const c1 = await ok('commit', 'repo', '--json');
    const commit = (
      JSON.parse(c1.stdout) as { trees: { result: { committed: boolean; generation: number } }[] }
    ).trees[0]?.result;
    assert.equal(commit?.committed, true);
    assert.equal(commit?.generation, 2);
    // The live overlay reports other inode numbers for links to copied-up files (index=off).
    await assertSameTree(model, tree, 'after commit, still mounted', { live: true });

    // A second commit in the same session stacks a layer of its own: only what changed since.
    await tw.write('later.txt', 'second commit\n');
    await tw.rm('new file \xe9');
    await ok('commit', 'repo');
    const st = JSON.parse((await ok('status', 'repo', '--json')).stdout) as {
      trees: { generation: number; layers: number; pending: { files: number } }[];
    };
    assert.equal(st.trees[0]?.generation, 3);
    assert.equal(st.trees[0]?.layers, 3, 'base + one layer per commit of the session');
    assert.equal(st.trees[0]?.pending.files, 0);
    assert.equal((await ok('diff', 'repo')).stdout, '', 'diff after a commit lists nothing');

    await ok('stop', 'repo');
    assert.deepEqual(mountsBelow(sb.dir), []);
    await ok('start', 'repo');
    await assertSameTree(model, tree, 'after stop and start');

    // Directory rename (EXDEV with redirect_dir=off: mv copies), on-stop commit.
    await tw.mv('dev-cat/pkg-one', 'dev-cat/pkg-renamed');
    await tw.rm('dev-cat/pkg-renamed/files');
    await tw.symlink('../README-gone', 'dev-cat/new-link');
    await ok('stop', 'repo');
    await ok('start', 'repo');
    await assertSameTree(model, tree, 'after on-stop commit');
    const snapshotBeforeCompact = join(sb.dir, 'model-gen4');
    execFileSync('cp', ['-a', model, snapshotBeforeCompact]);
    await ok('stop', 'repo');

    const compacted = JSON.parse((await ok('compact', 'repo', '--json')).stdout) as {
      trees: { result: { compacted: boolean; layersAfter: number } }[];
    };
    assert.equal(compacted.trees[0]?.result.compacted, true);
    assert.equal(compacted.trees[0]?.result.layersAfter, 1);
    await ok('start', 'repo');
    await assertSameTree(model, tree, 'after compact');

    // More changes, then discard them.
    await fsp.writeFile(join(tree, 'to-be-discarded'), 'x');
    await fsp.rm(join(tree, 'with space.txt'));
    const refused = await run('discard', 'repo');
    assert.equal(refused.status, 1, 'discard without a terminal needs --yes');
    await ok('discard', 'repo', '--yes');
    await assertSameTree(model, tree, 'after discard');
    await ok('stop', 'repo');

    // Rollback to the generation before the compaction: same content, other images.
    await ok('rollback', 'repo');
    await ok('start', 'repo');
    await assertSameTree(snapshotBeforeCompact, tree, 'after rollback');
    await ok('stop', 'repo');
    assert.deepEqual(mountsBelow(sb.dir), []);
  });

  it('each commit records exactly how many files and bytes the tree holds', async (t) => {
    if (!needRoot(t)) return;
    const sb = await sandbox(t);
    const tree = join(sb.dir, 'tree');
    await buildTree(tree, {
      keep: { dir: { a: 'a\n', b: 'bb\n' } },
      replaced: { dir: { one: '1\n', two: '22\n', sub: { dir: { deep: 'deep\n' } } } },
      gone: { dir: { x: 'xxx\n', y: { dir: { z: 'zzzz\n' } } } },
      'file-then-dir': 'f\n',
      'dir-then-file': { dir: { inner: 'inner\n' } },
      link: { symlink: 'keep/a' },
      emptied: { dir: { e1: 'e1\n', e2: 'e2\n' } },
    });
    const ok = sqOk(sb);
    const holds = async (what: string): Promise<void> => {
      const st = JSON.parse((await ok('status', 't', '--json')).stdout) as {
        trees: { files: number | null; bytes: number | null }[];
      };
      const all = walkSync(tree).filter((e) => e.type !== 'dir');
      const bytes = all.reduce((n, e) => n + (e.type === 'file' ? e.size : 0), 0);
      assert.deepEqual(
        { files: st.trees[0]?.files, bytes: st.trees[0]?.bytes },
        { files: all.length, bytes },
        what,
      );
    };
    await ok('init', 't', '--dir', tree, '--store', sb.store('t'), '--compression', 'gzip');
    await ok('start', 't');
    await holds('after init');
    // A first layer, so the commits below stand on a stack of two images.
    await fsp.writeFile(join(tree, 'keep/c'), 'ccc\n');
    await ok('stop', 't');
    await ok('start', 't');
    await holds('after the first layer');

    await fsp.rm(join(tree, 'replaced'), { recursive: true });
    await fsp.mkdir(join(tree, 'replaced'));
    await fsp.writeFile(join(tree, 'replaced/one'), 'one again\n');
    // A dir below an opaque one shows nothing of the lower either, with no mark of its own.
    await fsp.mkdir(join(tree, 'replaced/sub'));
    await fsp.writeFile(join(tree, 'replaced/sub/other'), 'other\n');
    await fsp.rm(join(tree, 'gone'), { recursive: true });
    await fsp.rm(join(tree, 'file-then-dir'));
    await fsp.mkdir(join(tree, 'file-then-dir'));
    await fsp.writeFile(join(tree, 'file-then-dir/now'), 'now a dir\n');
    await fsp.rm(join(tree, 'dir-then-file'), { recursive: true });
    await fsp.writeFile(join(tree, 'dir-then-file'), 'now a file\n');
    await fsp.rm(join(tree, 'link'));
    await fsp.writeFile(join(tree, 'link'), 'a file where a link was\n');
    await fsp.mkdir(join(tree, 'new/deeper'), { recursive: true });
    await fsp.writeFile(join(tree, 'new/deeper/n'), 'new\n');
    await fsp.appendFile(join(tree, 'keep/a'), 'longer\n');
    await fsp.rm(join(tree, 'keep/b'));
    await fsp.rm(join(tree, 'emptied/e1'));
    await fsp.rm(join(tree, 'emptied/e2'));
    const diff = await ok('diff', 't');
    assert.match(diff.stdout, /^D replaced\/two$/m, 'an opaque dir hides what it does not hold');
    assert.match(diff.stdout, /^D replaced\/sub\/deep$/m);
    assert.match(diff.stdout, /^D gone\/y\/z$/m);
    assert.doesNotMatch(diff.stdout, /^D keep\/a$/m);
    await ok('commit', 't');
    await holds('after a commit with whiteouts, opaque dirs and type changes');

    // A second commit in the session stacks a layer on the first.
    await fsp.rm(join(tree, 'keep'), { recursive: true });
    await fsp.mkdir(join(tree, 'keep'));
    await fsp.rm(join(tree, 'new'), { recursive: true });
    await fsp.writeFile(join(tree, 'replaced/two'), 'back\n');
    await ok('commit', 't');
    await holds('after a second commit in the session');
    await ok('stop', 't');
    await ok('start', 't');
    await holds('after stop and start');
    await ok('stop', 't');
  });

  it('start on a mounted tree changes nothing; stop on a stopped tree is fine', async (t) => {
    if (!needRoot(t)) return;
    const sb = await sandbox(t);
    const tree = join(sb.dir, 'tree');
    await buildTree(tree, { a: 'a\n' });
    const ok = sqOk(sb);
    await ok('init', 't', '--dir', tree, '--store', sb.store('t'));
    await ok('start');
    const before = mountsBelow(sb.dir);
    const again = await ok('start', 't');
    assert.match(again.stdout, /already mounted/);
    assert.deepEqual(mountsBelow(sb.dir), before);
    await ok('stop');
    const stopped = await ok('stop', 't');
    assert.match(stopped.stdout, /not mounted/);
  });

  it('a setuid binary and a device node in the tree have no effect (nosuid, nodev)', async (t) => {
    if (!needRoot(t)) return;
    const sb = await sandbox(t);
    const tree = join(sb.dir, 'tree');
    await buildTree(tree, {});
    execFileSync('cp', ['/usr/bin/id', join(tree, 'id-suid')]);
    await fsp.chmod(join(tree, 'id-suid'), 0o4755);
    execFileSync('mknod', [join(tree, 'null-dev'), 'c', '1', '3']);
    const ok = sqOk(sb);
    await ok('init', 't', '--dir', tree, '--store', sb.store('t'));
    await ok('start', 't');
    await fsp.chmod(sb.dir, 0o755);
    const euid = execFileSync(
      'setpriv',
      ['--reuid=65534', '--regid=65534', '--clear-groups', join(tree, 'id-suid'), '-u'],
      { encoding: 'utf8' },
    ).trim();
    assert.equal(euid, '65534', 'setuid bit must not take effect');
    await assert.rejects(fsp.open(join(tree, 'null-dev'), 'r'), /EACCES|EPERM/);
    const opts = execFileSync('findmnt', ['-rn', '-o', 'TARGET,OPTIONS'], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.startsWith(sb.dir));
    assert.ok(opts.length >= 3);
    for (const l of opts) assert.match(l, /nosuid.*nodev|nodev.*nosuid/, l);
    assert.match(
      opts.find((l) => l.startsWith(`${tree} `)) ?? '',
      /redirect_dir=off|index=off|metacopy=off|lowerdir/,
    );
  });
});

describe('excluded paths', () => {
  it('stay on the real disk: visible and writable through the tree, never in an image, never lost', async (t) => {
    if (!needRoot(t)) return;
    const sb = await sandbox(t);
    const tree = join(sb.dir, 'tree');
    await buildTree(tree, {
      'a.ebuild': 'EAPI=8\n',
      distfiles: { dir: { 'foo-1.tar.gz': 'tarball\n' } },
    });
    await fsp.writeFile(sb.config, '[defaults]\nexclude = ["distfiles", "packages"]\n');
    const ok = sqOk(sb);
    await ok('init', 'x', '--dir', tree, '--store', sb.store('x'), '--remove-source');
    assert.deepEqual(
      await fsp.readdir(tree),
      ['distfiles'],
      'the excluded dir is kept, the rest removed',
    );
    await ok('start', 'x');
    assert.equal(await fsp.readFile(join(tree, 'distfiles/foo-1.tar.gz'), 'utf8'), 'tarball\n');
    assert.equal(await fsp.readFile(join(tree, 'a.ebuild'), 'utf8'), 'EAPI=8\n');
    await fsp.writeFile(join(tree, 'distfiles/bar-2.tar.gz'), 'downloaded while mounted\n');
    await fsp.mkdir(join(tree, 'packages/app-misc'), { recursive: true });
    const st = JSON.parse((await ok('status', 'x', '--json')).stdout) as {
      trees: { pending: { files: number } }[];
    };
    assert.equal(st.trees[0]?.pending.files, 0, 'excluded paths are never pending');
    await ok('stop', 'x');
    assert.equal(
      await fsp.readFile(join(tree, 'distfiles/bar-2.tar.gz'), 'utf8'),
      'downloaded while mounted\n',
    );
    assert.ok((await fsp.stat(join(tree, 'packages/app-misc'))).isDirectory());
    await ok('start', 'x');
    assert.deepEqual((await fsp.readdir(join(tree, 'distfiles'))).sort(), [
      'bar-2.tar.gz',
      'foo-1.tar.gz',
    ]);
    await ok('stop', 'x');
    assert.deepEqual(mountsBelow(sb.dir), []);
  });
});

describe('init --from-image and --remove-source', () => {
  it('adopts an existing image (a repository snapshot) and refuses a layer', async (t) => {
    if (!needRoot(t)) return;
    const sb = await sandbox(t);
    const snap = join(sb.dir, 'snap');
    await buildTree(snap, tricky);
    const img = join(sb.dir, 'gentoo-snapshot.sqfs');
    execFileSync('mksquashfs', [snap, img, '-noappend', '-quiet', '-no-progress', '-comp', 'xz']);
    const tree = join(sb.dir, 'tree');
    await fsp.mkdir(tree);
    const ok = sqOk(sb);
    const init = await ok(
      'init',
      'snap',
      '--dir',
      tree,
      '--store',
      sb.store('snap'),
      '--from-image',
      img,
      '--json',
    );
    assert.equal((JSON.parse(init.stdout) as { adopted: boolean }).adopted, true);
    await ok('start', 'snap');
    await assertSameTree(snap, tree, 'adopted image', { mtime: true });
    await fsp.writeFile(join(tree, 'local-fix'), 'x\n');
    await fsp.rm(join(tree, 'README'));
    await ok('stop', 'snap');
    // A layer (it holds a whiteout) is not a base.
    const layer =
      (await fsp.readdir(sb.store('snap'))).find((n) => n.endsWith('-layer.sqfs')) ?? '';
    await fsp.mkdir(join(sb.dir, 'other'));
    const bad = await sq(sb)(
      'init',
      'other',
      '--dir',
      join(sb.dir, 'other'),
      '--store',
      sb.store('other'),
      '--from-image',
      join(sb.store('snap'), layer),
    );
    assert.equal(bad.status, 1, bad.stderr);
    assert.match(bad.stderr, /E_IMAGE_UNSAFE/);
  });

  it('--remove-source deletes the files only after verification and reports the space', async (t) => {
    if (!needRoot(t)) return;
    const sb = await sandbox(t);
    const tree = join(sb.dir, 'tree');
    const model = join(sb.dir, 'model');
    await buildTree(tree, tricky);
    execFileSync('cp', ['-a', tree, model]);
    const r = await sqOk(sb)(
      'init',
      'x',
      '--dir',
      tree,
      '--store',
      sb.store('x'),
      '--remove-source',
      '--json',
    );
    const res = JSON.parse(r.stdout) as { removedSource: boolean; reclaimedBytes: number };
    assert.equal(res.removedSource, true);
    assert.ok(res.reclaimedBytes > 300_000, `reclaimed ${res.reclaimedBytes}`);
    assert.deepEqual(await fsp.readdir(tree), []);
    await sqOk(sb)('start', 'x');
    await assertSameTree(model, tree, 'after --remove-source', { mtime: true });
    await sqOk(sb)('stop', 'x');
  });
});
