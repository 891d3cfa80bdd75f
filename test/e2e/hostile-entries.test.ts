/**
 * Entries that mean something to overlayfs (issue 14.7): a character
 * device 0:0 in init's source would be packed and then act as a whiteout
 * (the file vanishes); an xattr named trusted.overlay.* set through the
 * overlay is stored escaped by the kernel and must survive a commit and a
 * compaction instead of being dropped with the overlay's own bookkeeping.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, promises as fsp } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { needRoot, sandbox } from '../helpers/env.js';
import { sq } from '../helpers/cli.js';
import { buildTree } from '../helpers/tree.js';
import { initTree } from '../helpers/setup.js';

const py = (code: string, ...args: string[]): string =>
  execFileSync('python3', ['-c', code, ...args], { encoding: 'utf8' });

function getXattr(path: string, name: string): string | undefined {
  const out = py(
    'import os,sys\ntry: print(os.getxattr(sys.argv[1], sys.argv[2]).decode())\nexcept OSError: print("<none>")',
    path,
    name,
  ).trim();
  return out === '<none>' ? undefined : out;
}

describe('entries that mean something to overlayfs', { concurrency: false }, () => {
  it('init refuses a source with a char 0:0 device, naming it; nothing is written', async (t) => {
    if (!needRoot(t)) return;
    const sb = await sandbox(t);
    const tree = join(sb.dir, 'tree');
    await buildTree(tree, { a: 'a\n', deep: { dir: { er: { dir: { b: 'b\n' } } } } });
    execFileSync('mknod', [join(tree, 'deep/er/looks-deleted'), 'c', '0', '0']);
    const r = await sq(sb)('init', 't', '--dir', tree, '--store', sb.store('t'));
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /E_SOURCE/);
    assert.match(r.stderr, /deep\/er\/looks-deleted/);
    assert.match(r.stderr, /whiteout/);
    assert.equal(existsSync(sb.config), false);
    assert.deepEqual(
      existsSync(sb.store('t'))
        ? (await fsp.readdir(sb.store('t'))).filter((n) => !n.startsWith('.'))
        : [],
      [],
      'no image published',
    );
    assert.ok(existsSync(join(tree, 'deep/er/looks-deleted')), 'the source is untouched');
  });

  it('a trusted.overlay.* xattr set through the tree survives commit, restart and compaction', async (t) => {
    if (!needRoot(t)) return;
    const f = await initTree(t);
    await f.ok('start', 't');
    const file = join(f.tree, 'a.txt');
    try {
      py('import os,sys; os.setxattr(sys.argv[1], "trusted.overlay.mine", b"kept")', file);
    } catch {
      t.skip(
        'this kernel does not let trusted.overlay.* be set through an overlay (6.7+ escapes it)',
      );
      await f.ok('stop', 't');
      return;
    }
    py('import os,sys; os.setxattr(sys.argv[1], "user.plain", b"also")', file);
    assert.equal(getXattr(file, 'trusted.overlay.mine'), 'kept');
    await f.ok('commit', 't');
    await f.ok('stop', 't', '--no-compact');
    await f.ok('start', 't');
    assert.equal(getXattr(file, 'trusted.overlay.mine'), 'kept', 'after commit and restart');
    assert.equal(getXattr(file, 'user.plain'), 'also');
    await f.ok('stop', 't', '--no-compact');
    await f.ok('compact', 't');
    await f.ok('start', 't');
    assert.equal(getXattr(file, 'trusted.overlay.mine'), 'kept', 'after compaction');
    await f.ok('verify', 't');
    await f.ok('stop', 't');
  });
});
