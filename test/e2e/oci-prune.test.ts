/**
 * Retention in the registry: publish --keep N deletes the manifests of
 * older generations except those a kept generation's recipe needs, the
 * registry's garbage collection then frees what no manifest names, and a
 * follower that was behind still rebuilds instead of downloading. A
 * registry that does not allow deletes gets a clear message, and the
 * publish itself stands. Against a real docker-registry on 127.0.0.1.
 */
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { RegistryClient } from '../../src/oci/client.js';
import { parseReference } from '../../src/oci/reference.js';
import { assertSameTree } from '../helpers/tree.js';
import { initTree, parseJson, type TreeFixture } from '../helpers/setup.js';
import { Twin } from '../helpers/twin.js';
import type { PublishResult } from '../../src/oci/publish.js';
import {
  follower,
  needRegistry,
  publish,
  pull,
  spec,
  startRegistry,
  type Registry,
} from '../helpers/registry.js';

async function tags(ref: string): Promise<string[]> {
  const c = new RegistryClient(parseReference(ref), { plainHttp: true });
  try {
    return (await c.listTags()).sort();
  } finally {
    c.close();
  }
}

async function countBlobs(reg: Registry): Promise<number> {
  try {
    return (
      await fsp.readdir(join(reg.root, 'docker/registry/v2/blobs/sha256'), { recursive: true })
    ).filter((n) => n.endsWith('/data')).length;
  } catch {
    return 0;
  }
}

/** A builder day: start, one change, stop (compacting past two images), publish. */
async function day(f: TreeFixture, twin: Twin, ref: string, i: number, ...extra: string[]) {
  await f.ok('start', 't');
  await twin.write(`day-${i}.txt`, `day ${i}\n`);
  if (i % 2 === 0) await twin.rm(`day-${i - 1}.txt`);
  await f.ok('stop', 't');
  return publish(f.ok, ref, ...extra);
}

describe('OCI registry: retention', { concurrency: false }, () => {
  it('publish --keep 2 deletes old manifests but those a kept recipe needs; after garbage collection a follower that was behind still rebuilds', async (t: TestContext) => {
    if (!needRegistry(t)) return;
    const f = await initTree(t, spec());
    const reg = await startRegistry(t, f.sb.dir);
    const ref = `${reg.host}/squashtree/t`;
    const twin = new Twin(f.tree, f.model);
    await publish(f.ok, ref);
    await day(f, twin, ref, 1);
    const fo = await follower(t);
    assert.equal((await pull(fo, ref)).generation, 2);
    await day(f, twin, ref, 2);
    await day(f, twin, ref, 3);
    const last = await day(f, twin, ref, 4, '--keep', '2');
    assert.equal(last.generation, 7);
    // gen-6 (base 4 + two layers) is kept, and base 4's recipe needs gen-3's layer.
    assert.deepEqual(last.prune?.kept, [7, 6, 3]);
    assert.deepEqual(last.prune?.keptForRecipes, [3]);
    assert.deepEqual(
      last.prune?.deleted.map((d) => d.generation),
      [5, 4, 2, 1],
    );
    assert.equal(last.prune?.error, null);
    assert.deepEqual(await tags(ref), ['gen-3', 'gen-6', 'gen-7', 'latest']);

    const before = await countBlobs(reg);
    execFileSync('docker-registry', ['garbage-collect', reg.config], { stdio: 'ignore' });
    const after = await countBlobs(reg);
    t.diagnostic(`registry blobs: ${before} before garbage collection, ${after} after`);
    assert.ok(after < before, 'the configs of the deleted generations were freed');

    const r = await pull(fo, ref);
    assert.equal(r.generation, 7);
    assert.deepEqual(
      r.images.filter((i) => i.how === 'downloaded').map((i) => i.file),
      [],
      'no image was downloaded whole',
    );
    assert.deepEqual(
      r.rebuilt.map((i) => i.file),
      ['g000007-base.sqfs'],
    );
    await fo.ok('start', 't');
    await assertSameTree(f.model, fo.tree, 'a follower that was behind, after pruning');
    await fo.ok('stop', 't');
  });

  it('a registry that does not allow deletes: the publish stands, pruning says why it stopped', async (t) => {
    if (!needRegistry(t)) return;
    const f = await initTree(t, spec());
    const reg = await startRegistry(t, f.sb.dir, { deleteEnabled: false });
    const ref = `${reg.host}/squashtree/t`;
    const twin = new Twin(f.tree, f.model);
    await publish(f.ok, ref);
    await f.ok('start', 't');
    await twin.write('b.txt', 'beta\n');
    await f.ok('stop', 't');
    const r = await f.run('publish', 't', ref, '--plain-http', '--keep', '1', '--json');
    assert.equal(r.status, 1, r.stderr);
    const res = parseJson<PublishResult>(r);
    assert.equal(res.generation, 2);
    assert.equal(res.prune?.error?.code, 'E_OCI_DELETE');
    assert.match(res.prune?.error?.hint ?? '', /storage\.delete\.enabled: true/);
    const text = await f.run('publish', 't', ref, '--plain-http', '--keep', '1');
    assert.equal(text.status, 1);
    assert.match(text.stdout, /published generation 2/);
    assert.match(
      text.stdout,
      /error E_OCI_DELETE: pruning stopped: .* does not allow deleting manifests/,
    );
    assert.deepEqual(await tags(ref), ['gen-1', 'gen-2', 'latest']);
  });
});
