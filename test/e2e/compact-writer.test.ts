/**
 * compact through the CLI with the native writer: the method it reports,
 * the tree exact afterwards (mounted and stopped), the fallbacks to
 * mksquashfs (compact-method, a changed compressor) with their reason, and
 * diff --generation as an unprivileged user.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { needRoot } from '../helpers/env.js';
import { initTree, parseJson } from '../helpers/setup.js';
import { assertSameTree } from '../helpers/tree.js';
import { asNobody } from '../helpers/cli.js';

interface CompactJson {
  trees: {
    result: { compacted: boolean; method?: string; methodReason?: string; layersAfter: number };
  }[];
}

/** Change both the tree (through the overlay) and the model the same way. */
async function change(dirs: string[], i: number): Promise<void> {
  for (const d of dirs) {
    await fsp.writeFile(join(d, `new-${i}.txt`), `file ${i}\n`);
    await fsp.rm(join(d, i === 1 ? 'a.txt' : `new-${i - 1}.txt`), { force: true });
    await fsp.mkdir(join(d, 'cat-one', `pkg${i}`), { recursive: true });
    await fsp.writeFile(join(d, 'cat-one', `pkg${i}`, 'Manifest'), `DIST ${i}\n`);
  }
}

describe('compact with the native writer', () => {
  it('merges the stack by copying blocks; the tree stays exact, mounted and stopped', async (t) => {
    if (!needRoot(t)) return;
    const f = await initTree(t, undefined, [], '[defaults]\ncompact-after = 50\n');
    for (let i = 1; i <= 3; i++) {
      await f.ok('start', 't');
      await change([f.tree, f.model], i);
      await f.ok('stop', 't');
    }
    await f.ok('start', 't');
    await change([f.tree, f.model], 4);
    await f.ok('commit', 't');
    // Mounted: the whole current generation is merged, the session's own layer too.
    const c = parseJson<CompactJson>(await f.ok('compact', 't', '--json'));
    assert.equal(c.trees[0]?.result.compacted, true);
    assert.equal(c.trees[0]?.result.method, 'writer', c.trees[0]?.result.methodReason);
    assert.equal(c.trees[0]?.result.layersAfter, 1);
    await assertSameTree(f.model, f.tree, 'mounted after compact');
    // The next commit of the session stacks on the new base.
    for (const d of [f.tree, f.model]) await fsp.writeFile(join(d, 'after-compact'), 'x\n');
    await f.ok('commit', 't');
    await f.ok('stop', 't');
    const c2 = parseJson<CompactJson>(await f.ok('compact', 't', '--json'));
    assert.equal(c2.trees[0]?.result.method, 'writer');
    assert.equal(c2.trees[0]?.result.layersAfter, 1);
    await f.ok('start', 't');
    await assertSameTree(f.model, f.tree, 'after compacting to one image');
    await f.ok('verify', 't');

    // What the last layer changed, read from the images by nobody.
    await f.ok('commit', 't'); // nothing pending: no new generation
    await change([f.tree, f.model], 5);
    await f.ok('commit', 't');
    const st = parseJson<{ trees: { generation: number }[] }>(await f.ok('status', 't', '--json'));
    const gen = String(st.trees[0]?.generation);
    // Reading needs the config and the store, and no root: the store's owner reads it as a
    // plain user. Stores are private (issue 14.5), so another user is refused.
    await fsp.chmod(f.sb.dir, 0o755);
    await fsp.chmod(f.sb.config, 0o644);
    await fsp.chmod(join(f.sb.dir, 'store'), 0o755);
    const refused = await asNobody(['diff', 't', '--generation', gen], f.sb.dir, {
      config: f.sb.config,
    });
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /EACCES/);
    execFileSync('chown', ['-R', '65534:65534', f.store]);
    const pendingLike = await asNobody(['diff', 't', '--generation', gen], f.sb.dir, {
      config: f.sb.config,
    });
    assert.equal(pendingLike.status, 0, pendingLike.stderr);
    assert.deepEqual(pendingLike.stdout.toString().trim().split('\n').sort(), [
      'A cat-one/pkg5/',
      'A cat-one/pkg5/Manifest',
      'A new-5.txt',
      'D new-4.txt',
    ]);
    execFileSync('chown', ['-R', '0:0', f.store]);
    await f.ok('stop', 't');
  });

  it('falls back to mksquashfs, saying why: compact-method, or a changed compressor', async (t) => {
    if (!needRoot(t)) return;
    const f = await initTree(t, undefined, [], '[defaults]\ncompact-after = 50\n');
    await f.ok('start', 't');
    await change([f.tree, f.model], 1);
    await f.ok('stop', 't');
    const toml = await fsp.readFile(f.sb.config, 'utf8');
    await fsp.writeFile(
      f.sb.config,
      toml.replace('compact-after = 50', 'compact-after = 50\ncompression = "xz"'),
    );
    const c = parseJson<CompactJson>(await f.ok('compact', 't', '--json'));
    assert.equal(c.trees[0]?.result.method, 'mksquashfs');
    assert.match(c.trees[0]?.result.methodReason ?? '', /gzip .* configured for xz/);
    await f.ok('start', 't');
    await change([f.tree, f.model], 2);
    await f.ok('stop', 't');
    await fsp.writeFile(
      f.sb.config,
      toml.replace(
        'compact-after = 50',
        'compact-after = 50\ncompression = "xz"\ncompact-method = "mksquashfs"',
      ),
    );
    const c2 = parseJson<CompactJson>(await f.ok('compact', 't', '--json'));
    assert.equal(c2.trees[0]?.result.method, 'mksquashfs');
    assert.match(c2.trees[0]?.result.methodReason ?? '', /compact-method/);
    await f.ok('start', 't');
    await assertSameTree(f.model, f.tree, 'after the fallbacks');
    await f.ok('stop', 't');
  });
});
