/**
 * The OCI client against an in-process registry that demands bearer tokens
 * (as Docker Hub and GHCR do) and redirects blob downloads to another
 * origin (as registries on object storage do); plus reference parsing,
 * challenge parsing and where credentials come from.
 */
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCredentials, parseChallenge } from '../../src/oci/auth.js';
import { RegistryClient, digestOf } from '../../src/oci/client.js';
import { parseReference } from '../../src/oci/reference.js';
import { SquashtreeError } from '../../src/errors.js';

function listen(t: TestContext, handler: http.RequestListener): Promise<number> {
  const server = http.createServer(handler);
  t.after(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => {
          r();
        });
      }),
  );
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const a = server.address();
      resolve(typeof a === 'object' && a ? a.port : 0);
    });
  });
}

async function body(req: http.IncomingMessage): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of req) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

interface Mock {
  port: number;
  tokenRequests: { auth: string | undefined; scopes: string[] }[];
  storageAuth: (string | undefined)[];
  blobs: Map<string, Buffer>;
  /** Serve this instead of the stored blob (tampering). */
  corrupt: Set<string>;
}

/** A registry that wants `Bearer` tokens from its token service, which wants Basic u:p. */
async function mockRegistry(t: TestContext): Promise<Mock> {
  const mock: Mock = {
    port: 0,
    tokenRequests: [],
    storageAuth: [],
    blobs: new Map(),
    corrupt: new Set(),
  };
  const uploads = new Map<string, Buffer>();
  const manifests = new Map<string, { type: string; bytes: Buffer }>();
  const storagePort = await listen(t, (req, res) => {
    mock.storageAuth.push(req.headers.authorization);
    const d = new URL(req.url ?? '/', 'http://x').searchParams.get('d') ?? '';
    const b = mock.blobs.get(d);
    if (!b) return res.writeHead(404).end();
    const out = mock.corrupt.has(d) ? Buffer.concat([b.subarray(0, -1), Buffer.from('!')]) : b;
    res.writeHead(200, { 'content-length': out.length }).end(out);
  });
  mock.port = await listen(t, (req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', `http://127.0.0.1:${mock.port}`);
      if (url.pathname === '/token') {
        const scopes = url.searchParams.getAll('scope');
        mock.tokenRequests.push({ auth: req.headers.authorization, scopes });
        const good = `Basic ${Buffer.from('u:p').toString('base64')}`;
        if (req.headers.authorization !== good) return res.writeHead(401).end();
        const token = `tok:${scopes.join(' ')}`;
        return res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ token }));
      }
      const write = ['POST', 'PUT', 'PATCH'].includes(req.method ?? '');
      const need = write ? 'pull,push' : 'pull';
      const auth = req.headers.authorization ?? '';
      if (!auth.startsWith('Bearer tok:') || !auth.includes(`repository:a/b:${need}`)) {
        await body(req);
        return res
          .writeHead(401, {
            'www-authenticate': `Bearer realm="http://127.0.0.1:${mock.port}/token",service="mock",scope="repository:a/b:${need}"`,
          })
          .end();
      }
      const m = /^\/v2\/a\/b\/(blobs|manifests)\/(.+)$/.exec(url.pathname);
      if (req.method === 'POST' && url.pathname === '/v2/a/b/blobs/uploads/') {
        const id = String(uploads.size + 1);
        uploads.set(id, Buffer.alloc(0));
        return res.writeHead(202, { location: `/upload/${id}?state=x` }).end();
      }
      const up = /^\/upload\/(\d+)$/.exec(url.pathname);
      if (up) {
        const id = up[1] ?? '';
        const data = Buffer.concat([uploads.get(id) ?? Buffer.alloc(0), await body(req)]);
        uploads.set(id, data);
        if (req.method === 'PATCH')
          return res
            .writeHead(202, { location: `/upload/${id}?state=y`, range: `0-${data.length - 1}` })
            .end();
        const digest = url.searchParams.get('digest') ?? '';
        if (digestOf(data) !== digest)
          return res.writeHead(400).end('{"errors":[{"code":"DIGEST_INVALID"}]}');
        mock.blobs.set(digest, data);
        return res.writeHead(201).end();
      }
      if (m?.[1] === 'blobs') {
        const b = mock.blobs.get(m[2] ?? '');
        if (!b) return res.writeHead(404).end();
        if (req.method === 'HEAD') return res.writeHead(200, { 'content-length': b.length }).end();
        return res
          .writeHead(307, { location: `http://127.0.0.1:${storagePort}/s?d=${m[2] ?? ''}` })
          .end();
      }
      if (m?.[1] === 'manifests') {
        if (req.method === 'PUT') {
          const bytes = await body(req);
          const entry = { type: req.headers['content-type'] ?? '', bytes };
          manifests.set(m[2] ?? '', entry);
          manifests.set(digestOf(bytes), entry);
          return res.writeHead(201, { 'docker-content-digest': digestOf(bytes) }).end();
        }
        const e = manifests.get(m[2] ?? '');
        if (!e) return res.writeHead(404).end();
        res.writeHead(200, {
          'content-type': e.type,
          'content-length': e.bytes.length,
          'docker-content-digest': digestOf(e.bytes),
        });
        return res.end(req.method === 'HEAD' ? undefined : e.bytes);
      }
      res.writeHead(404).end();
    })();
  });
  return mock;
}

describe('OCI references, challenges and credentials', () => {
  it('parses references as docker and oras do', () => {
    assert.deepEqual(parseReference('127.0.0.1:5000/gentoo/repo'), {
      registry: '127.0.0.1:5000',
      apiHost: '127.0.0.1:5000',
      repository: 'gentoo/repo',
    });
    assert.deepEqual(parseReference('registry.example.org/gentoo/repo:gen-7'), {
      registry: 'registry.example.org',
      apiHost: 'registry.example.org',
      repository: 'gentoo/repo',
      tag: 'gen-7',
    });
    const hub = parseReference('gentoo');
    assert.equal(hub.apiHost, 'registry-1.docker.io');
    assert.equal(hub.repository, 'library/gentoo');
    const d = `sha256:${'a'.repeat(64)}`;
    assert.equal(parseReference(`localhost:5000/x@${d}`).digest, d);
    for (const bad of ['https://h/x', 'h.org/UPPER', 'h.org/x:bad tag', 'h.org/x@sha256:12'])
      assert.throws(() => parseReference(bad), /not a registry reference/);
  });

  it('parses WWW-Authenticate challenges', () => {
    assert.deepEqual(
      parseChallenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/x:pull,push"',
      ),
      {
        scheme: 'bearer',
        params: {
          realm: 'https://auth.docker.io/token',
          service: 'registry.docker.io',
          scope: 'repository:library/x:pull,push',
        },
      },
    );
    assert.deepEqual(parseChallenge('Basic realm="r"'), {
      scheme: 'basic',
      params: { realm: 'r' },
    });
  });

  it('takes credentials from the environment, else from the docker config', async (t) => {
    const dir = await fsp.mkdtemp(join(tmpdir(), 'st-oci-auth-'));
    t.after(() => fsp.rm(dir, { recursive: true, force: true }));
    await fsp.writeFile(
      join(dir, 'config.json'),
      JSON.stringify({
        auths: {
          'reg.example.org': { auth: Buffer.from('alice:s3cret').toString('base64') },
          'https://index.docker.io/v1/': { auth: Buffer.from('bob:hub').toString('base64') },
        },
      }),
    );
    const env = { DOCKER_CONFIG: dir };
    assert.equal((await loadCredentials('reg.example.org', env))?.password, 's3cret');
    assert.equal((await loadCredentials('docker.io', env))?.username, 'bob');
    assert.equal(await loadCredentials('other.example.org', env), null);
    const fromEnv = await loadCredentials('reg.example.org', {
      ...env,
      SQUASHTREE_REGISTRY_USER: 'carol',
      SQUASHTREE_REGISTRY_PASSWORD: 'pw',
    });
    assert.deepEqual([fromEnv?.username, fromEnv?.password], ['carol', 'pw']);
  });
});

describe('OCI client against a token-protected registry', () => {
  it('gets a token with Basic credentials, pushes monolithic and chunked, pulls through a redirect', async (t) => {
    const mock = await mockRegistry(t);
    const ref = parseReference(`127.0.0.1:${mock.port}/a/b`);
    const client = new RegistryClient(ref, {
      plainHttp: true,
      credentials: { username: 'u', password: 'p', source: 'test' },
      chunkSize: 1000,
    });
    const small = Buffer.from('{"x":1}');
    assert.equal(
      await client.pushBlob({ digest: digestOf(small), size: small.length, bytes: small }),
      true,
    );
    assert.equal(
      await client.pushBlob({ digest: digestOf(small), size: small.length, bytes: small }),
      false,
    );

    const dir = await fsp.mkdtemp(join(tmpdir(), 'st-oci-client-'));
    t.after(() => fsp.rm(dir, { recursive: true, force: true }));
    const big = randomBytes(4500);
    await fsp.writeFile(join(dir, 'big'), big);
    const bigDigest = `sha256:${createHash('sha256').update(big).digest('hex')}`;
    assert.equal(
      await client.pushBlob({ digest: bigDigest, size: big.length, path: join(dir, 'big') }),
      true,
    );
    assert.deepEqual(mock.blobs.get(bigDigest), big, 'five PATCH chunks made the blob');

    await client.downloadBlob(bigDigest, big.length, join(dir, 'copy'));
    assert.deepEqual(await fsp.readFile(join(dir, 'copy')), big);
    assert.ok(mock.storageAuth.length > 0);
    assert.ok(
      mock.storageAuth.every((a) => a === undefined),
      'credentials are not sent to another origin',
    );
    assert.ok(mock.tokenRequests.some((r) => r.scopes.includes('repository:a/b:pull,push')));

    const manifest = Buffer.from('{"schemaVersion":2}');
    const put = await client.putManifest('latest', manifest);
    assert.equal(put.digest, digestOf(manifest));
    assert.equal((await client.headManifest('latest'))?.digest, put.digest);
    assert.deepEqual((await client.getManifest(put.digest)).bytes, manifest);
    assert.equal(await client.headManifest('nope'), null);

    mock.corrupt.add(bigDigest);
    await assert.rejects(
      client.downloadBlob(bigDigest, big.length, join(dir, 'bad')),
      (e: unknown) => e instanceof SquashtreeError && e.code === 'E_OCI_DIGEST',
    );
  });

  it('without credentials the refusal says how to log in', async (t) => {
    const mock = await mockRegistry(t);
    const client = new RegistryClient(parseReference(`127.0.0.1:${mock.port}/a/b`), {
      plainHttp: true,
    });
    await assert.rejects(
      client.headBlob(`sha256:${'0'.repeat(64)}`),
      (e: unknown) =>
        e instanceof SquashtreeError &&
        e.code === 'E_OCI_AUTH' &&
        /SQUASHTREE_REGISTRY_USER/.test(e.hint ?? ''),
    );
  });

  it('refuses plain http unless asked for it', async (t) => {
    const mock = await mockRegistry(t);
    const client = new RegistryClient(parseReference(`127.0.0.1:${mock.port}/a/b`));
    await assert.rejects(
      client.headManifest('latest'),
      (e: unknown) =>
        e instanceof SquashtreeError && e.code === 'E_OCI' && /--plain-http/.test(e.hint ?? ''),
    );
  });
});
