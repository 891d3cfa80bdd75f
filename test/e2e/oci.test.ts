/**
 * Publishing generations to an OCI registry and pulling them, against a
 * real registry: Debian's docker-registry (the CNCF distribution registry),
 * started by each test on 127.0.0.1 with a config and storage in the test's
 * temp dir, and stopped when the test ends. skopeo cross-checks what was
 * pushed. Skipped, with a message, where docker-registry is not installed.
 */
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp, existsSync } from 'node:fs';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { needRoot, sandbox, type Sandbox } from '../helpers/env.js';
import { BIN, sq, sqOk, type CliResult } from '../helpers/cli.js';
import { assertSameTree } from '../helpers/tree.js';
import { initTree, leftovers, parseJson, type StatusJson } from '../helpers/setup.js';
import { Twin } from '../helpers/twin.js';
import { RegistryClient } from '../../src/oci/client.js';
import { parseReference } from '../../src/oci/reference.js';
import type { PublishResult } from '../../src/oci/publish.js';
import type { PullResult } from '../../src/oci/pull.js';
import { CORPUS, PORTAGE_RSYNC } from '../helpers/portage.js';

function onPath(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const HAVE_REGISTRY = onPath('docker-registry');
const HAVE_SKOPEO = onPath('skopeo');

function needRegistry(t: TestContext): boolean {
  if (!needRoot(t)) return false;
  if (!HAVE_REGISTRY) {
    t.skip(
      'docker-registry is not installed (apt-get install docker-registry skopeo): these tests need a real OCI registry',
    );
    return false;
  }
  return true;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => {
        resolve(port);
      });
    });
  });
}

function waitExit(child: ChildProcess, ms: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
    }, ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

interface Registry {
  port: number;
  host: string;
  /** The registry's storage root (docker/registry/v2/... below it). */
  root: string;
  blobData(digest: string): string;
}

/** docker-registry on 127.0.0.1:<free port>, storage under `dir`; stopped in t.after. */
async function startRegistry(t: TestContext, dir: string): Promise<Registry> {
  const root = join(dir, 'registry');
  await fsp.mkdir(root, { recursive: true });
  const port = await freePort();
  const config = join(dir, 'registry.yml');
  await fsp.writeFile(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: warn',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${root}`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      '',
    ].join('\n'),
  );
  // Only our config counts: REGISTRY_* variables would override it.
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('REGISTRY_')),
  );
  const child = spawn('docker-registry', ['serve', config], {
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  t.after(async () => {
    child.kill('SIGTERM');
    await waitExit(child, 5000);
  });
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited: ${stderr}`);
    try {
      const r = await fetch(`http://127.0.0.1:${port}/v2/`);
      if (r.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`docker-registry did not start: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    port,
    host: `127.0.0.1:${port}`,
    root,
    blobData: (digest) => {
      const hex = digest.replace('sha256:', '');
      return join(root, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
    },
  };
}

interface Follower {
  sb: Sandbox;
  tree: string;
  store: string;
  ok: (...args: string[]) => Promise<CliResult>;
  run: (...args: string[]) => Promise<CliResult>;
}

/** A machine that only follows: its config names the tree's dir (and a store in the sandbox). */
async function follower(t: TestContext): Promise<Follower> {
  const sb = await sandbox(t, 'st-oci-f-');
  const tree = join(sb.dir, 'tree');
  await fsp.writeFile(sb.config, `[tree.t]\ndir = "${tree}"\nstore = "${sb.store('t')}"\n`);
  return { sb, tree, store: sb.store('t'), ok: sqOk(sb), run: sq(sb) };
}

async function publish(
  ok: (...a: string[]) => Promise<CliResult>,
  ref: string,
  ...extra: string[]
): Promise<PublishResult> {
  return parseJson<PublishResult>(
    await ok('publish', 't', ref, '--plain-http', '--json', ...extra),
  );
}

async function pull(fo: Follower, ref: string, ...extra: string[]): Promise<PullResult> {
  return parseJson<PullResult>(await fo.ok('pull', 't', ref, '--plain-http', '--json', ...extra));
}

async function status(ok: (...a: string[]) => Promise<CliResult>) {
  const s = parseJson<StatusJson>(await ok('status', '--json'));
  const t = s.trees[0];
  assert.ok(t);
  return t as StatusJson['trees'][number] & { mountedGeneration: number | null };
}

async function imageBytes(store: string, file: string): Promise<number> {
  return (await fsp.stat(join(store, file))).size;
}

/** A tree with an incompressible file, so images are big enough to stream and chunk. */
function spec(): Parameters<typeof initTree>[1] {
  return {
    'a.txt': 'alpha\n',
    'cat-one': { dir: { pkg: { dir: { 'pkg-1.ebuild': 'EAPI=8\n', Manifest: 'DIST x 1\n' } } } },
    metadata: { dir: { 'timestamp.chk': 'Sat, 01 Aug 2026 00:00:00 +0000\n' } },
    link: { symlink: 'a.txt' },
    'blob.bin': randomBytes(256 << 10),
  };
}

function expectFail(r: CliResult, code: string): void {
  assert.equal(r.status, 1, `expected ${code}, got exit ${r.status}\n${r.stdout}\n${r.stderr}`);
  assert.match(r.stderr, new RegExp(`${code}\\b`));
  assert.match(r.stderr, /hint:/);
}

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

  it('compaction on the builder (a new base) is pulled correctly', async (t) => {
    if (!needRegistry(t)) return;
    const f = await initTree(t, spec());
    const reg = await startRegistry(t, f.sb.dir);
    const ref = `${reg.host}/squashtree/t`;
    const twin = new Twin(f.tree, f.model);
    await f.ok('start', 't');
    await twin.write('b.txt', 'beta\n');
    await f.ok('commit', 't');
    await f.ok('stop', 't');
    await publish(f.ok, ref);
    const fo = await follower(t);
    const r1 = await pull(fo, ref);
    assert.equal(r1.downloaded.length, 2);
    await f.ok('start', 't');
    await twin.rm('a.txt');
    await twin.write('c.txt', 'gamma\n');
    await f.ok('stop', 't', '--no-compact');
    const compacted = parseJson<{ trees: { result: { generation: number } }[] }>(
      await f.ok('compact', 't', '--json'),
    );
    const gen = compacted.trees[0]?.result.generation ?? 0;
    const pub = await publish(f.ok, ref);
    assert.equal(pub.generation, gen);
    assert.equal(pub.blobs.length, 1);
    const r = await pull(fo, ref);
    assert.equal(r.generation, gen);
    const base = `g${String(gen).padStart(6, '0')}-base.sqfs`;
    assert.deepEqual(
      r.downloaded.map((d) => d.file),
      [base],
    );
    assert.equal(r.bytesDownloaded, await imageBytes(f.store, base));
    const st = await status(fo.ok);
    assert.equal(st.generation, gen);
    assert.equal(st.layers, 1);
    await fo.ok('start', 't');
    await assertSameTree(f.model, fo.tree, 'follower after the compacted generation');
    await fo.ok('stop', 't');
    await fo.ok('verify', 't');
  });

  it('an interrupted download (connection dropped, or the pull killed mid-blob) leaves the store intact and the next pull completes', async (t) => {
    if (!needRegistry(t)) return;
    const f = await initTree(t, spec());
    const reg = await startRegistry(t, f.sb.dir);
    const ref = `${reg.host}/squashtree/t`;
    await publish(f.ok, ref);
    const fo = await follower(t);
    await pull(fo, ref);
    await f.ok('start', 't');
    const twin = new Twin(f.tree, f.model);
    await twin.write('big.bin', randomBytes(1 << 20));
    await f.ok('stop', 't');
    const pub = await publish(f.ok, ref);
    const blob = pub.blobs.find((b) => b.file === 'g000002-layer.sqfs');
    assert.ok(blob && blob.bytes > 1 << 20);

    const proxy = await startProxy(t, reg.port, blob.digest);
    const viaProxy = `127.0.0.1:${proxy.port}/squashtree/t`;
    proxy.mode = 'drop';
    const dropped = await fo.run('pull', 't', viaProxy, '--plain-http');
    expectFail(dropped, 'E_OCI');
    assert.match(dropped.stderr, /broke off after \d+ of \d+ bytes/);
    assert.equal((await status(fo.ok)).generation, 1, 'nothing applied');
    assert.deepEqual(await leftovers(fo.store), [], 'the temp file was removed');

    proxy.mode = 'stall';
    const child = spawn(
      process.execPath,
      [
        BIN,
        '--config',
        fo.sb.config,
        '--state-dir',
        fo.sb.state,
        'pull',
        't',
        viaProxy,
        '--plain-http',
      ],
      { stdio: 'ignore' },
    );
    t.after(() => {
      child.kill('SIGKILL');
    });
    await proxy.stalled;
    const tmp = await waitFor(async () => {
      for (const n of await fsp.readdir(fo.store)) {
        if (n.startsWith('.tmp-') && (await fsp.stat(join(fo.store, n))).size > 0) return n;
      }
      return undefined;
    });
    child.kill('SIGKILL');
    await waitExit(child, 5000);
    assert.ok(tmp, 'the killed pull left its temp file');
    assert.equal((await status(fo.ok)).generation, 1, 'nothing applied');
    await fo.ok('start', 't');
    await fo.ok('stop', 't');

    const r = await pull(fo, ref);
    assert.equal(r.generation, 2);
    assert.equal(r.bytesDownloaded, blob.bytes);
    assert.deepEqual(await leftovers(fo.store), [], 'the next run removed the temp file');
    await fo.ok('start', 't');
    await assertSameTree(f.model, fo.tree, 'follower after the completed pull');
    await fo.ok('stop', 't');
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

describe('OCI registry: the real corpus (figures)', () => {
  it('one day of GURU (guru-base -> guru-d1): the follower downloads about the layer, not the tree', async (t) => {
    if (!existsSync(join(CORPUS, 'guru-d1.tar.xz'))) {
      const msg = `corpus not found at ${CORPUS}; skipping the real-corpus registry test`;
      console.log(`# SKIP: ${msg}`);
      t.skip(msg);
      return;
    }
    if (!needRegistry(t)) return;
    const sb = await sandbox(t);
    for (const s of ['base', 'd1']) {
      await fsp.mkdir(join(sb.dir, s));
      execFileSync('tar', ['-xJf', join(CORPUS, `guru-${s}.tar.xz`), '-C', join(sb.dir, s)]);
    }
    const tree = join(sb.dir, 'tree');
    execFileSync('cp', ['-a', join(sb.dir, 'base'), tree]);
    const ok = sqOk(sb);
    const compression = process.env.SQUASHTREE_OCI_CORPUS_COMPRESSION ?? 'gzip';
    await ok('init', 't', '--dir', tree, '--store', sb.store('t'), '--compression', compression);
    const reg = await startRegistry(t, sb.dir);
    const ref = `${reg.host}/gentoo/guru`;
    await ok('start', 't');
    const pub1 = await publish(ok, ref);
    const fo = await follower(t);
    const first = await pull(fo, ref);

    execFileSync('rsync', [...PORTAGE_RSYNC, `${join(sb.dir, 'd1')}/`, `${tree}/`]);
    await ok('commit', 't');
    const pub2 = await publish(ok, ref);
    await ok('stop', 't');
    const layer = pub2.blobs.find((b) => b.uploaded);
    assert.ok(layer);
    const w0 = performance.now();
    const second = await pull(fo, ref);
    const wall = performance.now() - w0;
    const ratio = second.transferBytes / layer.bytes;
    const mib = (n: number): string => `${(n / 2 ** 20).toFixed(2)} MiB`;
    const lines = [
      `compression ${compression}`,
      `base image ${mib(pub1.blobs[0]?.bytes ?? 0)}; first pull ${mib(first.transferBytes)} in ${first.durationMs.toFixed(0)} ms`,
      `one-day layer ${layer.file} ${mib(layer.bytes)} (${layer.bytes} bytes); publish uploaded ${mib(pub2.uploadedBytes)} in ${pub2.durationMs.toFixed(0)} ms`,
      `second pull: ${second.bytesDownloaded} blob bytes, ${second.transferBytes} bytes in all (${ratio.toFixed(3)}x the layer) in ${second.durationMs.toFixed(0)} ms (${wall.toFixed(0)} ms for the whole command)`,
      `timestamp.chk in the config: ${pub2.timestamp ?? '(none)'}`,
    ];
    for (const l of lines) {
      t.diagnostic(l);
      console.log(`# ${l}`);
    }
    assert.equal(second.bytesDownloaded, layer.bytes);
    assert.ok(ratio <= 1.2, `transfer ${ratio.toFixed(3)}x the layer`);
    assert.equal(pub2.timestamp, 'Sat, 01 Aug 2026 21:01:15 +0000');
    await fo.ok('start', 't');
    const diff = execFileSync(
      'rsync',
      ['-n', '-a', '-c', '-O', '--delete', '-i', `${join(sb.dir, 'd1')}/`, `${fo.tree}/`],
      { encoding: 'utf8' },
    )
      .split('\n')
      .filter((l) => l && !l.startsWith('.d'));
    assert.deepEqual(diff.slice(0, 5), [], 'the follower holds guru-d1');
    await fo.ok('stop', 't');
  });
});

interface Proxy {
  port: number;
  mode: 'drop' | 'stall';
  /** Resolves when a stalled transfer has sent half of the blob. */
  stalled: Promise<void>;
}

/**
 * A loopback proxy in front of the registry that breaks GETs of one blob
 * halfway: it drops the connection, or stops sending and holds it open.
 */
async function startProxy(t: TestContext, upstream: number, digest: string): Promise<Proxy> {
  let onStall: () => void = () => undefined;
  const proxy: Proxy = {
    port: 0,
    mode: 'drop',
    stalled: new Promise<void>((r) => {
      onStall = r;
    }),
  };
  const server = http.createServer((req, res) => {
    const up = http.request(
      {
        host: '127.0.0.1',
        port: upstream,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (ur) => {
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        if (req.method !== 'GET' || !(req.url ?? '').includes(`/blobs/${digest}`)) {
          ur.pipe(res);
          return;
        }
        const half = Math.floor(Number(ur.headers['content-length'] ?? 0) / 2);
        let sent = 0;
        ur.on('data', (chunk: Buffer) => {
          if (sent >= half) return;
          const part = chunk.subarray(0, half - sent);
          sent += part.length;
          res.write(part);
          if (sent < half) return;
          ur.destroy();
          if (proxy.mode === 'drop') res.socket?.destroy();
          else onStall();
        });
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  proxy.port = typeof addr === 'object' && addr ? addr.port : 0;
  t.after(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => {
          r();
        });
      }),
  );
  return proxy;
}

async function waitFor<T>(fn: () => Promise<T | undefined>, ms = 20_000): Promise<T | undefined> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const v = await fn();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  return undefined;
}
