/**
 * Hostile input: images adopted with init --from-image that carry overlay
 * whiteouts, setuid binaries or device nodes. Nothing is created from a
 * refused image, and nothing of the rest has any effect through the tree.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { mountsBelow, needRoot, sandbox } from '../helpers/env.js';
import { cli, sqOk, type CliResult } from '../helpers/cli.js';
import { buildTree } from '../helpers/tree.js';
import { assertNoStack, loopsFor } from '../helpers/reliability.js';

describe('hostile input: adopted images', { concurrency: false }, () => {
  it('init --from-image refuses an image with overlay whiteouts; nothing is created', async (t) => {
    if (!needRoot(t)) return;
    const sb = await sandbox(t);
    const ok = sqOk(sb);
    const run = (...a: string[]): Promise<CliResult> =>
      cli(['--config', sb.config, '--state-dir', sb.state, ...a]);
    const cases: [string, (src: string) => void][] = [
      [
        'a whiteout at the top',
        (src) => {
          execFileSync('mknod', [join(src, 'gone'), 'c', '0', '0']);
        },
      ],
      [
        'a whiteout deep down',
        (src) => {
          execFileSync('mkdir', ['-p', join(src, 'a', 'b', 'c')]);
          execFileSync('mknod', [join(src, 'a', 'b', 'c', 'gone'), 'c', '0', '0']);
        },
      ],
    ];
    await fsp.writeFile(sb.config, '# pre-existing\n');
    for (const [i, [what, make]] of cases.entries()) {
      const src = join(sb.dir, `src${i}`);
      await buildTree(src, { 'file.txt': 'content\n', sub: { dir: { x: 'x\n' } } });
      make(src);
      const img = join(sb.dir, `layer${i}.sqfs`);
      execFileSync('mksquashfs', [src, img, '-noappend', '-quiet', '-no-progress', '-xattrs']);
      const dir = join(sb.dir, `dir${i}`);
      await fsp.mkdir(dir);
      const store = join(sb.dir, `store${i}`);
      const r = await run('init', `w${i}`, '--dir', dir, '--from-image', img, '--store', store);
      assert.equal(r.status, 1, `${what}: ${r.stdout}${r.stderr}`);
      assertNoStack(r, what);
      assert.match(r.stderr, /E_IMAGE_UNSAFE/, what);
      assert.match(r.stderr, /whiteout/);
      assert.equal(
        await fsp.readFile(sb.config, 'utf8'),
        '# pre-existing\n',
        `${what}: config untouched`,
      );
      const left = await fsp.readdir(store).catch(() => [] as string[]);
      assert.deepEqual(left, [], `${what}: nothing in the store`);
      assert.deepEqual(await fsp.readdir(dir), [], `${what}: the dir is untouched`);
      assert.deepEqual(mountsBelow(sb.dir), []);
      assert.deepEqual(loopsFor(sb.dir), []);
    }
    // The same dir and name work with a clean image afterwards.
    const clean = join(sb.dir, 'clean');
    await buildTree(clean, { 'file.txt': 'content\n' });
    const img = join(sb.dir, 'clean.sqfs');
    execFileSync('mksquashfs', [clean, img, '-noappend', '-quiet', '-no-progress']);
    await ok(
      'init',
      'w0',
      '--dir',
      join(sb.dir, 'dir0'),
      '--from-image',
      img,
      '--store',
      join(sb.dir, 'store0'),
    );
  });

  it('init --from-image with a setuid binary and a device node: neither has any effect through the tree', async (t) => {
    if (!needRoot(t)) return;
    const sb = await sandbox(t);
    const ok = sqOk(sb);
    const src = join(sb.dir, 'src');
    await buildTree(src, { 'readme.txt': 'hostile image\n' });
    execFileSync('cp', ['/usr/bin/id', join(src, 'id-suid')]);
    await fsp.chmod(join(src, 'id-suid'), 0o4755);
    execFileSync('mknod', [join(src, 'null-dev'), 'c', '1', '3']);
    execFileSync('mknod', [join(src, 'disk-dev'), 'b', '7', '0']);
    const img = join(sb.dir, 'hostile.sqfs');
    execFileSync('mksquashfs', [src, img, '-noappend', '-quiet', '-no-progress']);
    const tree = join(sb.dir, 'tree');
    await fsp.mkdir(tree);
    await ok('init', 'h', '--dir', tree, '--from-image', img, '--store', sb.store('h'));
    await ok('start', 'h');
    await fsp.chmod(sb.dir, 0o755);
    const euid = execFileSync(
      'setpriv',
      ['--reuid=65534', '--regid=65534', '--clear-groups', join(tree, 'id-suid'), '-u'],
      { encoding: 'utf8' },
    ).trim();
    assert.equal(euid, '65534', 'the setuid bit must not take effect');
    await assert.rejects(fsp.open(join(tree, 'null-dev'), 'r'), /EACCES|EPERM/);
    await assert.rejects(fsp.open(join(tree, 'disk-dev'), 'r'), /EACCES|EPERM/);
    await ok('stop', 'h');
    assert.deepEqual(mountsBelow(sb.dir), []);
  });
});
