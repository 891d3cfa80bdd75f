/**
 * Publishing generations to an OCI registry and pulling them, against a
 * real registry: Debian's docker-registry (the CNCF distribution registry),
 * started by each test on 127.0.0.1 with a config and storage in the test's
 * temp dir, and stopped when the test ends. skopeo cross-checks what was
 * pushed. Skipped, with a message, where docker-registry is not installed.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { assertSameTree } from '../helpers/tree.js';
import { initTree, leftovers } from '../helpers/setup.js';
import { Twin } from '../helpers/twin.js';
import { RegistryClient } from '../../src/oci/client.js';
import { parseReference } from '../../src/oci/reference.js';
import {
  HAVE_SKOPEO,
  expectFail,
  follower,
  imageBytes,
  needRegistry,
  publish,
  pull,
  spec,
  startRegistry,
  status,
} from '../helpers/registry.js';

describe('OCI registry: publish and pull', { concurrency: false }, () => {
  it('first publish and pull; skopeo sees what was pushed; a second pull does nothing', async (t) => {
    if (!needRegistry(t)) return;
    const f = await initTree(t, spec());
    const reg = await startRegistry(t, f.sb.dir);
    const ref = `${reg.host}/squashtree/t`;
    // Blobs above --chunk-size go up in PATCH chunks.
    const pub = await publish(f.ok, ref, '--chunk-size', '64K');
    assert.equal(pub.generation, 1);
    assert.deepEqual(pub.tags, ['gen-1', 'latest']);
    assert.equal(pub.blobs.length, 1);
    assert.ok(pub.blobs[0]?.uploaded);
    assert.ok((pub.blobs[0]?.bytes ?? 0) > 4 * 65536, 'the image is sent in several chunks');
    const again = await publish(f.ok, ref);
    assert.equal(again.digest, pub.digest, 'publishing the same generation is idempotent');
    assert.equal(again.uploadedBytes, 0);

    const fo = await follower(t);
    const r = await pull(fo, ref);
    assert.equal(r.upToDate, false);
    assert.equal(r.generation, 1);
    assert.equal(r.digest, pub.digest);
    assert.deepEqual(
      r.downloaded.map((d) => d.file),
      ['g000001-base.sqfs'],
    );
    assert.equal(r.bytesDownloaded, await imageBytes(f.store, 'g000001-base.sqfs'));
    assert.deepEqual(await leftovers(fo.store), []);
    await fo.ok('start', 't');
    await assertSameTree(f.model, fo.tree, 'follower after its first pull');
    await fo.ok('stop', 't');

    const same = await pull(fo, ref);
    assert.equal(same.upToDate, true);
    assert.equal(same.bytesDownloaded, 0);
    assert.equal(same.transferBytes, 0);

    if (!HAVE_SKOPEO) {
      t.diagnostic('skopeo is not installed: the cross-check was skipped');
      return;
    }
    const skopeo = (...a: string[]): string =>
      execFileSync('skopeo', [...a], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const raw = skopeo('inspect', '--raw', '--tls-verify=false', `docker://${ref}:latest`);
    assert.equal(`sha256:${createHash('sha256').update(raw).digest('hex')}`, pub.digest);
    const m = JSON.parse(raw) as {
      mediaType: string;
      artifactType: string;
      config: { mediaType: string };
      layers: { mediaType: string; size: number; annotations: Record<string, string> }[];
    };
    assert.equal(m.mediaType, 'application/vnd.oci.image.manifest.v1+json');
    assert.equal(m.artifactType, 'application/vnd.squashtree.stack.v1');
    assert.equal(m.config.mediaType, 'application/vnd.squashtree.config.v1+json');
    assert.equal(m.layers[0]?.mediaType, 'application/vnd.squashtree.layer.v1.squashfs');
    assert.equal(m.layers[0]?.annotations['org.opencontainers.image.title'], 'g000001-base.sqfs');
    assert.equal(m.layers[0]?.annotations['org.squashtree.compression'], 'gzip');
    const config = JSON.parse(
      skopeo('inspect', '--config', '--raw', '--tls-verify=false', `docker://${ref}:gen-1`),
    ) as { generation: number; tree: string; compression: string; blockSize: number };
    assert.equal(config.generation, 1);
    assert.equal(config.tree, 't');
    assert.equal(config.blockSize, 131072);
    const tags = JSON.parse(skopeo('list-tags', '--tls-verify=false', `docker://${ref}`)) as {
      Tags: string[];
    };
    assert.deepEqual([...tags.Tags].sort(), ['gen-1', 'latest']);
  });

  it('a new generation transfers only its layer; a mounted follower switches on restart; pending changes are kept unless --discard', async (t) => {
    if (!needRegistry(t)) return;
    const f = await initTree(t, spec());
    const reg = await startRegistry(t, f.sb.dir);
    const ref = `${reg.host}/squashtree/t`;
    await publish(f.ok, ref);
    const fo = await follower(t);
    await pull(fo, ref);
    await fo.ok('start', 't');

    // The builder syncs: new, changed and deleted files.
    await f.ok('start', 't');
    const twin = new Twin(f.tree, f.model);
    await twin.write('cat-one/pkg/pkg-2.ebuild', 'EAPI=8\n# new\n');
    await twin.write('a.txt', 'alpha, changed\n');
    await twin.write('metadata/timestamp.chk', 'Sun, 02 Aug 2026 00:00:00 +0000\n');
    await twin.rm('link');
    await f.ok('commit', 't');
    const pub2 = await publish(f.ok, ref);
    assert.equal(pub2.generation, 2);
    assert.deepEqual(
      pub2.blobs.map((b) => [b.file, b.uploaded]),
      [
        ['g000001-base.sqfs', false],
        ['g000002-layer.sqfs', true],
      ],
    );
    assert.equal(pub2.timestamp, 'Sun, 02 Aug 2026 00:00:00 +0000', 'timestamp.chk in the config');

    const r2 = await pull(fo, ref);
    assert.equal(r2.generation, 2);
    assert.deepEqual(
      r2.downloaded.map((d) => d.file),
      ['g000002-layer.sqfs'],
    );
    assert.deepEqual(r2.reused, ['g000001-base.sqfs']);
    const layer = await imageBytes(f.store, 'g000002-layer.sqfs');
    assert.equal(r2.bytesDownloaded, layer, 'only the new layer was downloaded');
    assert.ok(r2.transferBytes < layer + 8192, `${r2.transferBytes} bytes in all`);
    assert.equal(r2.mounted, true);
    assert.equal(r2.switched, false);
    let st = await status(fo.ok);
    assert.equal(st.generation, 2);
    assert.equal(st.mountedGeneration, 1, 'a mounted tree keeps its images until a restart');
    assert.equal(await fsp.readFile(join(fo.tree, 'a.txt'), 'utf8'), 'alpha\n');
    await fo.ok('restart', 't');
    await assertSameTree(f.model, fo.tree, 'follower after restart');

    // A local change on the follower: pull refuses, then --discard drops it.
    await fsp.writeFile(join(fo.tree, 'local-edit'), 'mine\n');
    await twin.write('cat-one/pkg/pkg-3.ebuild', 'EAPI=8\n');
    await f.ok('commit', 't');
    await publish(f.ok, ref);
    const refused = await fo.run('pull', 't', ref, '--plain-http');
    expectFail(refused, 'E_PENDING');
    st = await status(fo.ok);
    assert.equal(st.generation, 2, 'nothing applied');
    assert.equal(st.pending.files, 1);
    const r3 = await pull(fo, ref, '--discard');
    assert.equal(r3.generation, 3);
    assert.equal(r3.discarded?.files, 1);
    assert.equal(r3.switched, true);
    await assertSameTree(f.model, fo.tree, 'follower after pull --discard');

    // --restart switches at once.
    await twin.write('cat-one/pkg/pkg-4.ebuild', 'EAPI=8\n');
    await f.ok('commit', 't');
    await publish(f.ok, ref);
    const r4 = await pull(fo, ref, '--restart');
    assert.equal(r4.generation, 4);
    assert.equal(r4.switched, true);
    st = await status(fo.ok);
    assert.equal(st.mountedGeneration, 4);
    await assertSameTree(f.model, fo.tree, 'follower after pull --restart');

    // A follower left behind (pulled without --restart) catches up with pull --restart.
    await twin.write('cat-one/pkg/pkg-5.ebuild', 'EAPI=8\n');
    await f.ok('commit', 't');
    await publish(f.ok, ref);
    assert.equal((await pull(fo, ref)).switched, false);
    const r5 = await pull(fo, ref, '--restart');
    assert.equal(r5.upToDate, true);
    assert.equal(r5.switched, true);
    st = await status(fo.ok);
    assert.equal(st.mountedGeneration, 5);
    await assertSameTree(f.model, fo.tree, 'follower after an up-to-date pull --restart');
    await fo.ok('stop', 't');
    await f.ok('stop', 't');
    assert.deepEqual(await leftovers(fo.store), []);
  });

  it('a tampered blob and a tampered manifest are refused; nothing is applied', async (t) => {
    if (!needRegistry(t)) return;
    const f = await initTree(t, spec());
    const reg = await startRegistry(t, f.sb.dir);
    const ref = `${reg.host}/squashtree/t`;
    const pub = await publish(f.ok, ref);
    const fo = await follower(t);

    const blobFile = reg.blobData(pub.blobs[0]?.digest ?? '');
    const original = await fsp.readFile(blobFile);
    const damaged = Buffer.from(original);
    damaged[damaged.length >> 1] = (damaged[damaged.length >> 1] ?? 0) ^ 0xff;
    await fsp.writeFile(blobFile, damaged);
    expectFail(await fo.run('pull', 't', ref, '--plain-http'), 'E_OCI_DIGEST');
    assert.equal(existsSync(join(fo.store, 'manifest.json')), false, 'nothing applied');
    assert.deepEqual(await leftovers(fo.store), []);
    await fsp.writeFile(blobFile, original);

    const manifestFile = reg.blobData(pub.digest);
    const text = await fsp.readFile(manifestFile, 'utf8');
    const forged = text.replace('"org.squashtree.tree":"t"', '"org.squashtree.tree":"x"');
    assert.notEqual(forged, text);
    await fsp.writeFile(manifestFile, forged);
    expectFail(await fo.run('pull', 't', ref, '--plain-http'), 'E_OCI_DIGEST');
    assert.equal(existsSync(join(fo.store, 'manifest.json')), false, 'nothing applied');
    await fsp.writeFile(manifestFile, text);

    const ok = await pull(fo, ref);
    assert.equal(ok.generation, 1);
    await fo.ok('start', 't');
    await assertSameTree(f.model, fo.tree, 'after the registry was repaired');
    await fo.ok('stop', 't');
  });

  it('with --verify-key: unsigned, forged and wrongly signed manifests are refused; the right key passes', async (t) => {
    if (!needRegistry(t)) return;
    const f = await initTree(t, spec());
    const reg = await startRegistry(t, f.sb.dir);
    const keys = join(f.sb.dir, 'keys');
    await f.ok('key', 'generate', '--out', join(keys, 'a'));
    await f.ok('key', 'generate', '--out', join(keys, 'b'));
    const priv = join(keys, 'a', 'squashtree-sign.key');
    assert.equal((await fsp.stat(priv)).mode & 0o777, 0o600);
    expectFail(await f.run('key', 'generate', '--out', join(keys, 'a')), 'E_KEY');
    const pubA = join(keys, 'a', 'squashtree-sign.pub');
    const pubB = join(keys, 'b', 'squashtree-sign.pub');
    const fo = await follower(t);

    const unsigned = `${reg.host}/squashtree/unsigned`;
    await publish(f.ok, unsigned);
    expectFail(
      await fo.run('pull', 't', unsigned, '--plain-http', '--verify-key', pubA),
      'E_OCI_SIGNATURE',
    );
    assert.equal(existsSync(join(fo.store, 'manifest.json')), false, 'nothing applied');

    const signed = `${reg.host}/squashtree/signed`;
    const pub = await publish(f.ok, signed, '--sign-key', priv);
    assert.ok(pub.signature);
    // distribution 2.8 has no referrers API: the signature also goes under the fallback tag.
    assert.equal(pub.signature.tag, `${pub.digest.replace(':', '-')}.sig`);
    const wrong = await fo.run('pull', 't', signed, '--plain-http', '--verify-key', pubB);
    expectFail(wrong, 'E_OCI_SIGNATURE');
    assert.match(wrong.stderr, /not signed by the key/);

    // A manifest changed in the registry and tagged latest carries no valid signature.
    const client = new RegistryClient(parseReference(signed), { plainHttp: true });
    const real = await client.getManifest(pub.digest);
    const doc = JSON.parse(real.bytes.toString('utf8')) as { annotations: Record<string, string> };
    doc.annotations['org.squashtree.tree'] = 'forged';
    await client.putManifest('latest', Buffer.from(JSON.stringify(doc)));
    expectFail(
      await fo.run('pull', 't', signed, '--plain-http', '--verify-key', pubA),
      'E_OCI_SIGNATURE',
    );
    assert.equal(existsSync(join(fo.store, 'manifest.json')), false, 'nothing applied');
    await client.putManifest('latest', real.bytes);

    const r = await pull(fo, signed, '--verify-key', pubA);
    assert.equal(r.generation, 1);
    assert.match(r.signedBy ?? '', /^sha256:[0-9a-f]{64}$/);
    await fo.ok('start', 't');
    await assertSameTree(f.model, fo.tree, 'after a verified pull');
    await fo.ok('stop', 't');
  });

  it('an older generation is refused (a tag or a rolled-back latest) unless --allow-downgrade', async (t) => {
    if (!needRegistry(t)) return;
    const f = await initTree(t, spec());
    const reg = await startRegistry(t, f.sb.dir);
    const ref = `${reg.host}/squashtree/t`;
    const gen1Model = join(f.sb.dir, 'model-gen1');
    execFileSync('cp', ['-a', f.model, gen1Model]);
    const pub1 = await publish(f.ok, ref);
    await f.ok('start', 't');
    const twin = new Twin(f.tree, f.model);
    await twin.write('a.txt', 'alpha, generation 2\n');
    await f.ok('stop', 't');
    await publish(f.ok, ref);
    const fo = await follower(t);
    assert.equal((await pull(fo, ref)).generation, 2);

    expectFail(await fo.run('pull', 't', `${ref}:gen-1`, '--plain-http'), 'E_OCI_DOWNGRADE');
    // A registry that serves an old manifest as latest: the same refusal.
    const client = new RegistryClient(parseReference(ref), { plainHttp: true });
    await client.putManifest('latest', (await client.getManifest(pub1.digest)).bytes);
    const r = await fo.run('pull', 't', ref, '--plain-http');
    expectFail(r, 'E_OCI_DOWNGRADE');
    assert.match(r.stderr, /generation 1, older than generation 2/);
    assert.equal((await status(fo.ok)).generation, 2, 'nothing applied');

    const down = await pull(fo, ref, '--allow-downgrade');
    assert.equal(down.generation, 1);
    assert.equal(down.downloaded.length, 0, 'generation 1 images are still in the store');
    await fo.ok('start', 't');
    await assertSameTree(gen1Model, fo.tree, 'after an allowed downgrade');
    await fo.ok('stop', 't');
  });

  it('two followers converge to the builder generation', async (t) => {
    if (!needRegistry(t)) return;
    const f = await initTree(t, spec());
    const reg = await startRegistry(t, f.sb.dir);
    const ref = `${reg.host}/squashtree/t`;
    const a = await follower(t);
    const b = await follower(t);
    const twin = new Twin(f.tree, f.model);
    await publish(f.ok, ref);
    await pull(a, ref);
    await f.ok('start', 't');
    for (let i = 1; i <= 3; i++) {
      await twin.write(`cat-one/pkg/pkg-${i + 1}.ebuild`, `EAPI=8\n# ${i}\n`);
      if (i === 2) await twin.rm('cat-one/pkg/pkg-1.ebuild');
      await f.ok('commit', 't');
      await publish(f.ok, ref);
      if (i < 3) await pull(a, ref);
    }
    // Commits stack: base + 3 layers, which a stop would compact into a generation not published.
    await f.ok('stop', 't', '--no-compact');
    const builderGen = (await status(f.ok)).generation;
    const [ra, rb] = await Promise.all([pull(a, ref), pull(b, ref)]);
    assert.equal(ra.generation, builderGen);
    assert.equal(rb.generation, builderGen);
    assert.equal(ra.digest, rb.digest);
    for (const fo of [a, b]) {
      const st = await status(fo.ok);
      assert.equal(st.generation, builderGen);
      await fo.ok('start', 't');
      await assertSameTree(f.model, fo.tree, 'a follower');
      await fo.ok('stop', 't');
    }
  });
});
