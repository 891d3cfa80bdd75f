/**
 * Recipes a follower must not trust blindly: a rebuild whose result does
 * not hash to the published digest falls back to the download; a recipe
 * from another environment or merge rule is not run at all; a recipe
 * input whose bytes do not hash to its digest is refused. Against a real
 * docker-registry on 127.0.0.1, through the CLI; the odd recipes are
 * published with the client as a builder with other settings would.
 */
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import { assertSameTree } from '../helpers/tree.js';
import { initTree, leftovers, type TreeFixture } from '../helpers/setup.js';
import { Twin } from '../helpers/twin.js';
import { RegistryClient, digestOf } from '../../src/oci/client.js';
import { parseReference } from '../../src/oci/reference.js';
import type { OciRecipe, StackConfig } from '../../src/oci/types.js';
import {
  expectFail,
  follower,
  imageBytes,
  needRegistry,
  publish,
  pull,
  spec,
  startRegistry,
  status,
  type Follower,
  type Registry,
} from '../helpers/registry.js';

interface Scene {
  f: TreeFixture;
  reg: Registry;
  ref: string;
  /** Followers that hold generation 2 (base + one layer). */
  fos: Follower[];
  /** The compacted generation's manifest digest, its base and the layer merged away. */
  digest: string;
  base: string;
  layer: string;
}

/** Builder: gen 2 (base + layer) pulled by `n` followers, then gen 3 (a deletion) compacted into gen 4. */
async function scene(t: TestContext, n: number): Promise<Scene> {
  const f = await initTree(t, spec());
  const reg = await startRegistry(t, f.sb.dir);
  const ref = `${reg.host}/squashtree/t`;
  const twin = new Twin(f.tree, f.model);
  await f.ok('start', 't');
  await twin.write('b.txt', 'beta\n');
  await f.ok('stop', 't');
  await publish(f.ok, ref);
  const fos: Follower[] = [];
  for (let i = 0; i < n; i++) {
    const fo = await follower(t);
    await pull(fo, ref);
    fos.push(fo);
  }
  await f.ok('start', 't');
  await twin.rm('a.txt');
  await twin.write('c.txt', 'gamma\n');
  await f.ok('stop', 't');
  const pub = await publish(f.ok, ref);
  assert.equal(pub.generation, 4);
  assert.equal(pub.pushed.at(-1)?.recipes, 1);
  return {
    f,
    reg,
    ref,
    fos,
    digest: pub.digest,
    base: 'g000004-base.sqfs',
    layer: 'g000003-layer.sqfs',
  };
}

/** Publish gen 4 again with its base's recipe changed; returns the new manifest's digest. */
async function forge(s: Scene, edit: (r: OciRecipe) => void): Promise<string> {
  const client = new RegistryClient(parseReference(s.ref), { plainHttp: true });
  try {
    const m = JSON.parse((await client.getManifest(s.digest)).bytes.toString('utf8')) as {
      config: { digest: string; size: number };
    };
    const config = JSON.parse(
      (await client.getBlobBytes(m.config.digest, m.config.size)).toString('utf8'),
    ) as StackConfig;
    for (const r of Object.values(config.recipes ?? {})) edit(r as OciRecipe);
    const bytes = Buffer.from(JSON.stringify(config));
    const desc = {
      mediaType: 'application/vnd.squashtree.config.v1+json',
      digest: digestOf(bytes),
      size: bytes.length,
    };
    await client.pushBlob({ digest: desc.digest, size: desc.size, bytes });
    const manifest = Buffer.from(JSON.stringify({ ...m, config: desc }));
    return (await client.putManifest(digestOf(manifest), manifest)).digest;
  } finally {
    client.close();
  }
}

describe('OCI registry: recipes a follower does not trust', { concurrency: false }, () => {
  it('a rebuild that does not give the published bytes falls back to the download; other environments and merge rules download at once', async (t) => {
    if (!needRegistry(t)) return;
    const s = await scene(t, 3);
    const [fo, env, rule] = s.fos;
    assert.ok(fo && env && rule);
    const base = await imageBytes(s.f.store, s.base);
    const layer = await imageBytes(s.f.store, s.layer);

    // Whiteouts kept: the merge runs, its result differs, the base is downloaded.
    const kept = await forge(s, (r) => {
      r.settings.keepWhiteouts = true;
    });
    const r = await pull(fo, `${s.ref}@${kept}`);
    assert.deepEqual(
      r.images.map((i) => [i.file, i.how]),
      [[s.base, 'downloaded']],
    );
    assert.match(r.images[0]?.reason ?? '', /differs from the published one/);
    assert.equal(r.bytesDownloaded, layer + base, 'the input was fetched, then the base');
    assert.deepEqual(await leftovers(fo.store), []);
    await fo.ok('start', 't');
    await assertSameTree(s.f.model, fo.tree, 'after the fallback download');
    await fo.ok('stop', 't');

    const other = await forge(s, (r) => {
      r.environment.zlib = '0.0.1-elsewhere';
    });
    const re = await pull(env, `${s.ref}@${other}`);
    assert.equal(re.images[0]?.how, 'downloaded');
    assert.match(re.images[0]?.reason ?? '', /environment differs \(zlib 0\.0\.1-elsewhere there/);
    assert.equal(re.bytesDownloaded, base, 'nothing was fetched for a rebuild that cannot match');

    const newer = await forge(s, (r) => {
      r.method = 'squashtree-merge/99';
    });
    const rm = await pull(rule, `${s.ref}@${newer}`);
    assert.equal(rm.images[0]?.how, 'downloaded');
    assert.match(rm.images[0]?.reason ?? '', /made by squashtree-merge\/99/);
    assert.equal(rm.bytesDownloaded, base);
  });

  it('a recipe input whose bytes do not hash to its digest is refused; nothing is applied', async (t) => {
    if (!needRegistry(t)) return;
    const s = await scene(t, 1);
    const [fo] = s.fos;
    assert.ok(fo);
    const m = JSON.parse(await fsp.readFile(`${s.f.store}/manifest.json`, 'utf8')) as {
      images: Record<string, { sha256: string }>;
    };
    const sha = m.images[s.layer]?.sha256;
    assert.ok(sha);
    const data = s.reg.blobData(`sha256:${sha}`);
    const original = await fsp.readFile(data);
    const damaged = Buffer.from(original);
    damaged[damaged.length >> 1] = (damaged[damaged.length >> 1] ?? 0) ^ 0xff;
    await fsp.writeFile(data, damaged);
    const refused = await fo.run('pull', 't', s.ref, '--plain-http');
    expectFail(refused, 'E_OCI_DIGEST');
    assert.match(refused.stderr, new RegExp(`blob sha256:${sha}`));
    assert.equal((await status(fo.ok)).generation, 2, 'nothing applied');
    assert.deepEqual(await leftovers(fo.store), [], 'the damaged input was not kept');

    await fsp.writeFile(data, original);
    const r = await pull(fo, s.ref);
    assert.deepEqual(
      r.rebuilt.map((x) => x.file),
      [s.base],
    );
    await fo.ok('start', 't');
    await assertSameTree(s.f.model, fo.tree, 'after the registry was repaired');
    await fo.ok('stop', 't');
  });

  it('a builder that no longer holds the inputs (keep = 0) publishes the base without a recipe: followers download it', async (t) => {
    if (!needRegistry(t)) return;
    const f = await initTree(t, spec(), [], '[defaults]\nkeep = 0\n');
    const reg = await startRegistry(t, f.sb.dir);
    const ref = `${reg.host}/squashtree/t`;
    const twin = new Twin(f.tree, f.model);
    await f.ok('start', 't');
    await twin.write('b.txt', 'beta\n');
    await f.ok('stop', 't');
    await publish(f.ok, ref);
    const fo = await follower(t);
    await pull(fo, ref);
    await f.ok('start', 't');
    await twin.write('c.txt', 'gamma\n');
    await f.ok('stop', 't');
    // The commit's layer went with its generation before anyone published it.
    const pub = await publish(f.ok, ref);
    assert.deepEqual(
      pub.pushed.map((p) => [p.generation, p.recipes]),
      [[4, 0]],
    );
    const r = await pull(fo, ref);
    assert.deepEqual(
      r.images.map((i) => [i.file, i.how]),
      [['g000004-base.sqfs', 'downloaded']],
    );
    assert.match(r.images[0]?.reason ?? '', /no recipe/);
    await fo.ok('start', 't');
    await assertSameTree(f.model, fo.tree, 'after downloading a base without a recipe');
    await fo.ok('stop', 't');
  });
});
