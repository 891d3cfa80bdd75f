/**
 * System directories and pseudo filesystems as a tree (issue 14.8): init
 * --dir /proc used to start packing the kernel's files. Every such dir is
 * refused before anything is written, and a configured path with ".." is
 * refused rather than resolved.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, promises as fsp } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { needRoot, sandbox } from '../helpers/env.js';
import { sq } from '../helpers/cli.js';
import { buildTree } from '../helpers/tree.js';

describe('system and pseudo-filesystem dirs', { concurrency: false }, () => {
  it('init refuses system roots and pseudo filesystems, naming why; nothing is written', async (t) => {
    if (!needRoot(t)) return;
    const sb = await sandbox(t);
    const run = sq(sb);
    const proc = join(sb.dir, 'proc-again');
    await fsp.mkdir(proc);
    execFileSync('mount', ['-t', 'proc', 'proc', proc]);
    const link = join(sb.dir, 'etc-link');
    await fsp.symlink('/etc', link);
    const cases: [string, RegExp][] = [
      ['/proc', /system directory/],
      ['/sys/kernel', /pseudo filesystem/],
      ['/dev', /system directory|devtmpfs/],
      [proc, /on a proc filesystem/],
      ['/etc', /system directory/],
      ['/usr', /system directory/],
      ['/var', /system directory/],
      ['/', /root directory|system directory/],
      ['/home', /system directory/],
      [link, /system directory/],
    ];
    for (const [dir, why] of cases) {
      const r = await run('init', 'x', '--dir', dir, '--store', sb.store('x'));
      assert.equal(r.status, 1, `${dir}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /E_UNSAFE_PATH/, dir);
      assert.match(r.stderr, why, dir);
      assert.doesNotMatch(r.stderr, /packing/, dir);
      assert.equal(existsSync(sb.config), false, `${dir}: no config written`);
      assert.equal(existsSync(sb.store('x')), false, `${dir}: no store made`);
    }
    // A dir below a system root is what trees are.
    const fine = join(sb.dir, 'tree');
    await buildTree(fine, { a: 'a\n' });
    const ok = await run('init', 'x', '--dir', fine, '--store', sb.store('x'));
    assert.equal(ok.status, 0, ok.stderr);
  });

  it('a configured dir, store or upper with "..", or on a system root, is refused', async (t) => {
    if (!needRoot(t)) return;
    const sb = await sandbox(t);
    const run = sq(sb);
    const tree = join(sb.dir, 'tree');
    await buildTree(tree, { a: 'a\n' });
    const cases: [string, RegExp][] = [
      [`dir = "${sb.dir}/x/../../../etc"`, /dir .*"\.\."/],
      [`dir = "${tree}"\nstore = "${sb.dir}/s/../s2"`, /store .*"\.\."/],
      [`dir = "${tree}"\nupper = "${sb.dir}/u/.."`, /upper .*"\.\."/],
      ['dir = "/usr"', /system directory/],
      [`dir = "${tree}"\nstore = "/etc"`, /system directory/],
      [`dir = "${tree}"\nupper = "/var"`, /system directory/],
      ['dir = "/proc/sys"', /pseudo|proc/],
    ];
    for (const [body, why] of cases) {
      await fsp.writeFile(sb.config, `[tree.x]\n${body}\n`);
      for (const command of ['start', 'status']) {
        const r = await run(command, 'x');
        assert.equal(r.status, 1, `${body} (${command}): ${r.stdout}${r.stderr}`);
        assert.match(r.stderr, /E_CONFIG_VALUE|E_UNSAFE_PATH/, body);
        assert.match(r.stderr, why, body);
      }
    }
  });
});
