/**
 * The builder in one line: with publish-to (and sign-key, plain-http) in a
 * tree's config, every command that commits also publishes: commit, run,
 * stop and the portage hook. A failed publish never undoes the commit: the
 * command exits 1 and says so, and the next commit publishes everything
 * since. Against a real docker-registry on 127.0.0.1, through the CLI.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { assertSameTree } from '../helpers/tree.js';
import { initTree, parseJson } from '../helpers/setup.js';
import { Twin } from '../helpers/twin.js';
import type { AutoPublish } from '../../src/cli/publish-after.js';
import {
  follower,
  freePort,
  needRegistry,
  pull,
  spec,
  startRegistry,
  status,
} from '../helpers/registry.js';

describe('OCI registry: publish-to', { concurrency: false }, () => {
  it('commit, run, stop and the portage hook publish; a failed publish keeps the commit and the next one catches up', async (t) => {
    if (!needRegistry(t)) return;
    const f = await initTree(t, spec());
    const reg = await startRegistry(t, f.sb.dir);
    const ref = `${reg.host}/builder/t`;
    const keys = join(f.sb.dir, 'keys');
    await f.ok('key', 'generate', '--out', keys);
    const config = await fsp.readFile(f.sb.config, 'utf8');
    // Commits stack: five in one session would make the stop compact, and keep = 2 would then drop
    // the published generation the missed one descends from. This test is about that history.
    const withTarget = (to: string): Promise<void> =>
      fsp.writeFile(
        f.sb.config,
        `${config}publish-to = "${to}"\nplain-http = true\nsign-key = "${join(keys, 'squashtree-sign.key')}"\ncompact-after = 50\n`,
      );
    await withTarget(ref);
    const twin = new Twin(f.tree, f.model);
    await f.ok('start', 't');

    await twin.write('b.txt', 'beta\n');
    const c = parseJson<{ trees: { result: { generation: number; publish?: AutoPublish } }[] }>(
      await f.ok('commit', 't', '--json'),
    );
    const cr = c.trees[0]?.result;
    assert.equal(cr?.publish?.ok, true);
    assert.equal(cr.publish.result?.generation, cr.generation);
    assert.ok(cr.publish.result?.signature, 'signed with the sign-key');
    const fo = await follower(t);
    const verify = ['--verify-key', join(keys, 'squashtree-sign.pub')];
    assert.equal((await pull(fo, ref, ...verify)).generation, cr.generation);

    // run: the command writes, squashtree commits and publishes.
    const run = await f.ok('run', 't', '--', 'sh', '-c', `echo gamma > ${join(f.tree, 'c.txt')}`);
    await fsp.writeFile(join(f.model, 'c.txt'), 'gamma\n');
    assert.match(run.stdout, /published generation \d+ to /);
    const g3 = (await status(f.ok)).generation;
    assert.equal((await pull(fo, ref, ...verify)).generation, g3);

    // The portage hook commits the tree whose dir was synced, and publishes.
    await twin.write('d.txt', 'delta\n');
    const hook = await f.ok('hook', 'portage', 'gentoo', 'rsync://x/gentoo', f.tree);
    assert.match(hook.stdout, /published generation/);
    const g4 = (await status(f.ok)).generation;
    assert.equal((await pull(fo, ref, ...verify)).generation, g4);

    // Nothing listens at the target: the commit stands, the command exits 1 and says so.
    await withTarget(`127.0.0.1:${await freePort()}/builder/t`);
    await twin.write('e.txt', 'epsilon\n');
    const failed = await f.run('commit', 't');
    assert.equal(failed.status, 1, failed.stdout + failed.stderr);
    assert.match(failed.stdout, /committed generation/);
    assert.match(
      failed.stdout,
      /E_OCI_PUBLISH: the commit stands, but publishing to .* failed: E_OCI_CONNECT/,
    );
    const g5 = (await status(f.ok)).generation;
    assert.equal(g5, g4 + 1, 'the commit stands');

    // Back online: the next commit (here stop's) publishes the one that was missed too.
    await withTarget(ref);
    await twin.write('f.txt', 'phi\n');
    const stop = parseJson<{ trees: { result: { publish?: AutoPublish } }[] }>(
      await f.ok('stop', 't', '--json'),
    );
    const pushed = stop.trees[0]?.result.publish?.result?.pushed.map((p) => p.generation) ?? [];
    assert.ok(pushed.includes(g5), `the missed generation ${g5} went up (${pushed.join(', ')})`);
    const r = await pull(fo, ref, ...verify);
    assert.equal(r.generation, (await status(f.ok)).generation);
    await fo.ok('start', 't');
    await assertSameTree(f.model, fo.tree, 'the follower of a publish-to builder');
    await fo.ok('stop', 't');
  });
});
