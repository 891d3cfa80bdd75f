/**
 * Hostile input: damaged images in the store. Nothing may be deleted,
 * nothing may stay mounted, and every refusal names the image and how to go on.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { mountsBelow, needRoot } from '../helpers/env.js';
import { type CliResult } from '../helpers/cli.js';
import { assertSameTree } from '../helpers/tree.js';
import { initTree, leftovers, type TreeFixture } from '../helpers/setup.js';
import { assertNoStack, loopsFor } from '../helpers/reliability.js';
import {
  textBlob,
  BASE,
  type Damage,
  DAMAGES,
  readManifest,
  blessInManifest,
  storeListing,
  type VerifyJson,
  readEverything,
} from '../helpers/hostile-images.js';

describe('hostile input: damaged images', { concurrency: false }, () => {
  it('corrupt images: start refuses naming the image, verify reports each, nothing is deleted', async (t) => {
    if (!needRoot(t)) return;
    const f: TreeFixture = await initTree(t, BASE);
    const gen1 = join(f.sb.dir, 'model-gen1');
    execFileSync('cp', ['-a', f.model, gen1]);
    await f.ok('start', 't');
    for (const root of [f.tree, f.model]) {
      await fsp.writeFile(join(root, 'layer.txt'), textBlob(6000, 'layer'));
      await fsp.rm(join(root, 'a.txt'));
    }
    await f.ok('stop', 't');
    const m = await readManifest(f.store);
    const cur = m.generations.find((g) => g.generation === m.current);
    const [base, layer] = cur?.images ?? [];
    assert.ok(base && layer, 'a base and a layer');
    const pristine = join(f.sb.dir, 'pristine');
    execFileSync('cp', ['-a', f.store, pristine]);
    const restore = async (): Promise<void> => {
      await fsp.rm(f.store, { recursive: true });
      execFileSync('cp', ['-a', pristine, f.store]);
    };
    const tried: string[] = [];
    const deepStarts: { what: string; r: CliResult }[] = [];
    const targets = [
      ...DAMAGES.map((d) => ({ d, file: layer })),
      { d: DAMAGES[0] as Damage, file: base },
      { d: DAMAGES[2] as Damage, file: base },
    ];
    for (const { d, file } of targets) {
      for (const deep of d.deep ? [false, true] : [false]) {
        const what = `${file}: ${d.name}${deep ? ' (manifest updated to match)' : ''}`;
        await restore();
        await d.apply(join(f.store, file));
        if (deep) await blessInManifest(f.store, file);
        const listing = await storeListing(f.store);

        const v = await f.run('verify', 't', '--json');
        assert.equal(v.status, 1, `${what}: verify exits 1\n${v.stdout}${v.stderr}`);
        assertNoStack(v, `${what}: verify`);
        const verdicts = (JSON.parse(v.stdout) as VerifyJson).trees[0]?.result?.images ?? [];
        const bad = verdicts.find((x) => x.file === file);
        assert.ok(
          bad && !bad.ok && bad.problems.length > 0,
          `${what}: verify names it: ${v.stdout}`,
        );
        const other = verdicts.find((x) => x.file !== file);
        assert.ok(other?.ok, `${what}: the intact image verifies`);

        const r = await f.run('start', 't');
        assertNoStack(r, `${what}: start`);
        let outcome: string;
        if (r.status === 0) {
          // Only the data can tell: reading it must fail, never hand out other bytes silently.
          const read = await readEverything(f.tree, f.model);
          outcome = `start mounted it; reading: ${read || 'all files intact'}`;
          assert.ok(deep, `${what}: start mounted an image whose sha256 does not match`);
          const stop = await f.run('stop', 't', '--on-stop', 'discard');
          assertNoStack(stop, `${what}: stop`);
          assert.equal(stop.status, 0, stop.stderr);
        } else {
          assert.equal(r.status, 1);
          assert.ok(r.stderr.includes(file), `${what}: the error names the image\n${r.stderr}`);
          outcome = `start refused: ${/^error .*$/m.exec(r.stderr)?.[0] ?? r.stderr}`;
          if (!deep) {
            assert.match(r.stderr, /E_IMAGE_(CORRUPT|MISSING)/, what);
            assert.match(r.stderr, /rollback/, `${what}: the hint says rollback`);
          } else deepStarts.push({ what, r });
        }
        assert.deepEqual(mountsBelow(f.sb.dir), [], `${what}: nothing stays mounted`);
        assert.deepEqual(loopsFor(f.sb.dir), [], `${what}: no loop stays attached`);
        assert.deepEqual(await storeListing(f.store), listing, `${what}: nothing was deleted`);
        tried.push(`${what}: verify: ${bad.problems[0] ?? ''}; ${outcome}`);
      }
    }
    // The way out that the errors name: roll back past a damaged layer.
    await restore();
    await DAMAGES[2]?.apply(join(f.store, layer));
    await f.ok('rollback', 't');
    await f.ok('start', 't');
    await assertSameTree(gen1, f.tree, 'rolled back past the damaged layer');
    await f.ok('stop', 't');
    assert.deepEqual(await leftovers(f.store), []);
    t.diagnostic(`${tried.length} corrupt images tried:\n${tried.join('\n')}`);
    t.diagnostic(`deep starts refused: ${deepStarts.length}`);
  });

  it('an image that passes its sha256 check but cannot be mounted: start names it and says rollback', async (t) => {
    if (!needRoot(t)) return;
    const f = await initTree(t, BASE);
    await f.ok('start', 't');
    await fsp.writeFile(join(f.tree, 'layer.txt'), textBlob(2000, 'layer'));
    await f.ok('stop', 't');
    const m = await readManifest(f.store);
    const layer = m.generations.find((g) => g.generation === m.current)?.images[1] ?? '';
    await DAMAGES[1]?.apply(join(f.store, layer));
    await blessInManifest(f.store, layer);
    const r = await f.run('start', 't');
    assert.equal(r.status, 1);
    assert.deepEqual(mountsBelow(f.sb.dir), []);
    assert.match(r.stderr, /^error E_IMAGE_CORRUPT: .*g\d+-layer\.sqfs/m, r.stderr);
    assert.match(r.stderr, /hint: .*rollback/, r.stderr);
  });
});
