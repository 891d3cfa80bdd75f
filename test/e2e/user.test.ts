/**
 * A user without root: the whole lifecycle with the fuse engine, under the
 * XDG dirs, as a real non-root user made for the test (see helpers/user.ts);
 * the readonly engine for that user; and layers moved between that user's
 * fuse engine and root's kernel engine in both directions, with deletions
 * and replaced (opaque) directories.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { needRoot, sandbox } from '../helpers/env.js';
import { asNobody, publicBin, sqOk } from '../helpers/cli.js';
import { buildTree, dumpXattrs, type Spec } from '../helpers/tree.js';
import { compareTrees } from '../../src/image/compare.js';
import { needFuse, setEngine } from '../helpers/engines.js';
import { dumpAs, makeUser, type TestUser } from '../helpers/user.js';

const spec: Spec = {
  README: 'hello\n',
  'x-cat': {
    dir: {
      one: { dir: { 'one-1.ebuild': 'EAPI=8\n', files: { dir: { p: 'p\n' } } } },
      two: { dir: { 'two-1.ebuild': 'EAPI=8\n' } },
      three: { dir: { 'three-1.ebuild': 'EAPI=8\n', 'three-2.ebuild': 'EAPI=8\n' } },
    },
  },
  'y-cat': { dir: { four: { dir: { 'four-1.ebuild': 'EAPI=8\n' } } } },
  link: { symlink: 'README' },
};

/** The same shell commands in the user's mounted tree and in a plain model dir. */
async function both(user: TestUser, tree: string, model: string, cmd: string): Promise<void> {
  for (const dir of [tree, model]) {
    const r = await user.sh(`cd '${dir}' && ${cmd}`);
    assert.equal(r.status, 0, `${cmd} in ${dir}: ${r.stderr}`);
  }
}

async function sameAsUser(
  user: TestUser,
  model: string,
  tree: string,
  what: string,
): Promise<void> {
  const [m, t] = await Promise.all([dumpAs(user, model), dumpAs(user, tree)]);
  delete m['.'];
  delete t['.'];
  assert.deepEqual(t, m, `${what}: trees differ`);
}

/** A user's tree: files owned by the user, in its home. */
async function userTree(user: TestUser): Promise<{ tree: string; model: string }> {
  const tree = join(user.home, 'tree');
  const model = join(user.home, 'model');
  await buildTree(tree, spec);
  await buildTree(model, spec);
  execFileSync('chown', ['-R', '-h', `${user.uid}:${user.gid}`, tree, model]);
  return { tree, model };
}

function fstypeInNs(user: TestUser, dir: string): string {
  try {
    return user.inNs('findmnt', ['-n', '-o', 'FSTYPE', '--mountpoint', dir]).trim();
  } catch {
    return '';
  }
}

/** Wait until a process named comm has its cwd in dir (polling only decides how soon). */
async function untilCwdIn(dir: string, comm: string): Promise<void> {
  for (;;) {
    for (const pid of await fsp.readdir('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      try {
        const [name, cwd] = await Promise.all([
          fsp.readFile(`/proc/${pid}/comm`, 'utf8'),
          fsp.readlink(`/proc/${pid}/cwd`),
        ]);
        if (name.trim() === comm && cwd === dir) return;
      } catch {
        // gone, or not ours to read
      }
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('a user without root', { concurrency: false }, () => {
  it('runs the whole lifecycle with the fuse engine under the XDG dirs', async (t) => {
    if (!needRoot(t) || !needFuse(t)) return;
    const user = await makeUser(t);
    const { tree, model } = await userTree(user);
    await user.sqOk('init', 't', '--dir', tree);
    const store = join(user.home, '.local/share/squashtree/t');
    assert.ok((await fsp.readdir(store)).includes('manifest.json'), 'images under $XDG_DATA_HOME');
    await fsp.access(join(user.home, '.config/squashtree/squashtree.toml'));

    await user.sqOk('start', 't');
    assert.equal(fstypeInNs(user, tree), 'fuse.fuse-overlayfs');
    assert.equal((await fsp.stat(join(user.runtime, 'squashtree'))).mode & 0o777, 0o700);
    const st = JSON.parse((await user.sqOk('status', '--json')).stdout) as {
      trees: { state: string; engine: { name: string; rejected: Record<string, string> } }[];
    };
    assert.equal(st.trees[0]?.state, 'mounted');
    assert.equal(st.trees[0]?.engine.name, 'fuse');
    assert.match(st.trees[0]?.engine.rejected.kernel ?? '', /root/);

    await both(
      user,
      tree,
      model,
      'rm README && rm -r x-cat/two && rm -r x-cat/one && mkdir x-cat/one && echo new > x-cat/one/one-9.ebuild && echo add > added && chmod 600 added',
    );
    const diff = (await user.sqOk('diff', 't')).stdout;
    assert.match(diff, /^D README$/m);
    assert.match(diff, /^D x-cat\/one\/files\/p$/m);
    assert.match(diff, /^A x-cat\/one\/one-9\.ebuild$/m);
    assert.doesNotMatch(diff, /\.wh\./);
    await user.sqOk('commit', 't');
    await sameAsUser(user, model, tree, 'after commit');

    // A busy tree: stop names the holder and leaves everything mounted.
    const holder = user.spawnSh(`cd '${tree}' && exec sleep 60`);
    await untilCwdIn(tree, 'sleep');
    const busy = await user.sq('stop', 't');
    assert.equal(busy.status, 1);
    assert.match(busy.stderr, /E_BUSY/);
    assert.match(busy.stderr, /sleep 60/);
    holder.kill('SIGKILL');
    await new Promise((r) => holder.on('close', r));
    await user.sqOk('stop', 't');
    assert.deepEqual(user.mounts(), [], 'stop leaves no mount behind');

    await user.sqOk('start', 't');
    await sameAsUser(user, model, tree, 'after restart');
    await both(user, tree, model, 'rm x-cat/three/three-1.ebuild && echo more >> added');
    await user.sqOk('stop', 't');
    await user.sqOk('compact', 't');
    await user.sqOk('start', 't');
    await sameAsUser(user, model, tree, 'after compact');
    await user.sqOk('stop', 't');
    const rb = JSON.parse((await user.sqOk('rollback', 't', '--json')).stdout) as {
      trees: { result: { from: number; to: number } }[];
    };
    assert.ok((rb.trees[0]?.result.to ?? 0) < (rb.trees[0]?.result.from ?? 0));
    await user.sqOk('start', 't');
    await sameAsUser(user, model, tree, 'after rollback to the same content');
    await user.sqOk('stop', 't');
    assert.deepEqual(user.mounts(), []);
  });

  it("a user's store is private to that user, who reads it without root (issue 14.5)", async (t) => {
    if (!needRoot(t) || !needFuse(t)) return;
    const user = await makeUser(t);
    const { tree } = await userTree(user);
    // umask 0 for the user's init: the store must not depend on it.
    const r = await user.sh(
      `umask 000; exec ${process.execPath} ${publicBin()} init t --dir '${tree}' --quiet`,
    );
    assert.equal(r.status, 0, r.stderr);
    const store = join(user.home, '.local/share/squashtree/t');
    assert.equal((await fsp.stat(store)).mode & 0o777, 0o700);
    for (const n of await fsp.readdir(store)) {
      const st = await fsp.stat(join(store, n));
      assert.equal(st.mode & 0o777, 0o600, n);
      assert.equal(st.uid, user.uid, n);
    }
    await user.sqOk('verify', 't');
    await user.sqOk('diff', 't', '--generation', '1');
    const other = await asNobody(['inspect', join(store, 'g000001-base.sqfs')], user.base);
    assert.equal(other.status, 1, 'another user reads nothing');
  });

  it('diff on the fuse engine lists what changed, no false deletions; status counts its lines', async (t) => {
    if (!needRoot(t) || !needFuse(t)) return;
    const user = await makeUser(t);
    const { tree, model } = await userTree(user);
    await user.sqOk('init', 't', '--dir', tree);
    await user.sqOk('start', 't');
    const lines = async (): Promise<string[]> =>
      (await user.sqOk('diff', 't')).stdout.split('\n').filter(Boolean);
    const pending = async (): Promise<number> =>
      (
        JSON.parse((await user.sqOk('status', '--json')).stdout) as {
          trees: { pending: { files: number } }[];
        }
      ).trees[0]?.pending.files ?? -1;
    // One file into a dir the images hold: its siblings are not deleted (issue 14, item 1).
    await both(user, tree, model, 'echo n > x-cat/three/three-3.ebuild');
    assert.deepEqual(await lines(), ['A x-cat/three/three-3.ebuild']);
    // A dir removed and recreated: fuse-overlayfs's own marker says it hides what was there.
    await both(user, tree, model, 'rm -r x-cat/two && mkdir x-cat/two && echo z > x-cat/two/z');
    const diff = await lines();
    assert.deepEqual(diff, [
      'A x-cat/three/three-3.ebuild',
      'D x-cat/two/two-1.ebuild',
      'A x-cat/two/z',
    ]);
    assert.equal(await pending(), diff.length, 'status counts what diff lists');
    await user.sqOk('commit', 't');
    assert.deepEqual(await lines(), [], 'nothing pending after a commit');
    assert.equal(await pending(), 0);
    // What changes after it is all diff lists: the committed changes are not repeated.
    await both(user, tree, model, 'echo f > y-cat/four/four-2.ebuild && rm x-cat/two/z');
    assert.deepEqual(await lines(), ['D x-cat/two/z', 'A y-cat/four/four-2.ebuild']);
    assert.equal(await pending(), 2);
    await user.sqOk('commit', 't');
    await user.sqOk('stop', 't');
    await user.sqOk('start', 't');
    await sameAsUser(user, model, tree, 'after two stacked commits');
    await user.sqOk('stop', 't');
    assert.deepEqual(user.mounts(), []);
  });

  it('a fuse tree unmounted by hand (fusermount3 -u) is resumed by start and stopped by stop', async (t) => {
    if (!needRoot(t) || !needFuse(t)) return;
    const user = await makeUser(t);
    const { tree, model } = await userTree(user);
    await user.sqOk('init', 't', '--dir', tree);
    // Two images, so a view of them is mounted too (three FUSE mounts under the overlay).
    await user.sqOk('start', 't');
    await both(user, tree, model, 'echo first > first.txt');
    await user.sqOk('stop', 't');
    const byHand = async (): Promise<void> => {
      const u = await user.sh(`fusermount3 -u '${tree}'`);
      assert.equal(u.status, 0, u.stderr);
    };
    // With a pending change: start mounts the overlay again on what is left, with the change.
    await user.sqOk('start', 't');
    await both(user, tree, model, 'echo pending > pending.txt');
    await byHand();
    const commit = await user.sq('commit', 't');
    assert.equal(commit.status, 1);
    assert.match(commit.stderr, /squashtree start t/, 'commit names the way out');
    const resumed = await user.sq('start', 't');
    assert.equal(resumed.status, 0, resumed.stderr);
    assert.match(resumed.stderr + resumed.stdout, /resum/);
    await sameAsUser(user, model, tree, 'resumed after fusermount3 -u');
    await user.sqOk('commit', 't');
    // stop after it: the change is committed on the way, and nothing is left mounted.
    await both(user, tree, model, 'echo more > more.txt');
    await byHand();
    const stopped = await user.sq('stop', 't');
    assert.equal(stopped.status, 0, stopped.stderr);
    assert.deepEqual(user.mounts(), [], 'stop unmounts what the hand left');
    // Nothing pending: stop just takes down what is left.
    await user.sqOk('start', 't');
    await byHand();
    const bare = await user.sq('stop', 't');
    assert.equal(bare.status, 0, bare.stderr);
    assert.deepEqual(user.mounts(), [], 'and with nothing pending too');
    await user.sqOk('start', 't');
    await sameAsUser(user, model, tree, 'every change kept');
    await user.sqOk('stop', 't');
    assert.deepEqual(user.mounts(), []);
  });

  it('falls back to the readonly engine and refuses to commit', async (t) => {
    if (!needRoot(t) || !needFuse(t)) return;
    const user = await makeUser(t);
    const { tree, model } = await userTree(user);
    await user.sqOk('init', 't', '--dir', tree, '--engine', 'readonly');
    await user.sqOk('start', 't');
    await sameAsUser(user, model, tree, 'readonly');
    const w = await user.sh(`touch '${tree}/x'`);
    assert.notEqual(w.status, 0);
    assert.match(w.stderr, /Read-only/);
    const c = await user.sq('commit', 't');
    assert.equal(c.status, 1);
    assert.match(c.stderr, /E_READONLY/);
    await user.sqOk('stop', 't');
    assert.deepEqual(user.mounts(), []);
  });

  it('layers move between the user fuse engine and the root kernel engine, both ways', async (t) => {
    if (!needRoot(t) || !needFuse(t)) return;
    const user = await makeUser(t);
    const { tree, model } = await userTree(user);
    await user.sqOk('init', 't', '--dir', tree);
    await user.sqOk('start', 't');
    // fuse-overlayfs as a user: whiteouts, and an opaque dir marked by .wh..wh..opq and a user xattr.
    await both(
      user,
      tree,
      model,
      'rm README && rm -r x-cat/one && mkdir x-cat/one && echo u > x-cat/one/one-2.ebuild && rm -r y-cat',
    );
    await user.sqOk('stop', 't');
    const userStore = join(user.home, '.local/share/squashtree/t');

    // Root, kernel engine, on a copy of the user's store.
    const sb = await sandbox(t);
    const rootTree = join(sb.dir, 'tree');
    await fsp.mkdir(rootTree);
    await fsp.mkdir(join(sb.dir, 'store'));
    execFileSync('cp', ['-a', userStore, sb.store('t')]);
    execFileSync('chown', ['-R', '0:0', sb.store('t')]);
    await fsp.writeFile(
      sb.config,
      `[tree.t]\ndir = "${rootTree}"\nstore = "${sb.store('t')}"\nengine = "kernel"\n`,
    );
    const ok = sqOk(sb);
    await ok('start', 't');
    const r1 = await compareTrees(model, rootTree, {
      contents: true,
      ignoreMtime: true,
      ignoreHardlinks: true,
    });
    assert.deepEqual(r1.differences, [], 'the user layer read through the kernel');
    // The user's opaque dir keeps fuse-overlayfs's own marker xattr: the kernel shows it as a plain user xattr.
    const x = Object.fromEntries(
      Object.entries(dumpXattrs(rootTree)).filter(
        ([, v]) => !v.startsWith('user.fuseoverlayfs.opaque='),
      ),
    );
    assert.deepEqual(x, dumpXattrs(model), 'xattrs, besides the fuse marker');
    // Root changes it under the kernel: a replaced dir is opaque in the kernel's upper.
    for (const dir of [rootTree, model]) {
      execFileSync('sh', [
        '-c',
        `cd '${dir}' && rm -r x-cat/three && mkdir x-cat/three && echo k > x-cat/three/three-9.ebuild && rm x-cat/one/one-2.ebuild && chown -R ${user.uid}:${user.gid} x-cat/three`,
      ]);
    }
    await ok('commit', 't');
    await ok('stop', 't');

    // Back to the user, fuse engine.
    await fsp.rm(userStore, { recursive: true });
    execFileSync('cp', ['-a', sb.store('t'), userStore]);
    execFileSync('chown', ['-R', `${user.uid}:${user.gid}`, userStore]);
    await user.sqOk('start', 't');
    await sameAsUser(user, model, tree, 'the kernel layer read through the user fuse engine');
    await user.sqOk('stop', 't');
    await setEngine(sb.config, 'kernel');
  });
});
