/**
 * The registry client's transport and resumable downloads against
 * in-process HTTP servers: a server that never answers and one that stalls
 * mid-body time out with the phase named, an abort stops a request at
 * once, and a download continues a partial file with a range request (or
 * starts over where the server ignores ranges).
 */
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RegistryClient } from '../../src/oci/client.js';
import { TransportError, makeAgents, request } from '../../src/oci/http.js';
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

const SHORT = { connectMs: 2000, idleMs: 300 };

describe('OCI transport: timeouts and aborts', () => {
  it('a server that never answers times out waiting for the headers; one that stalls, in the body', async (t) => {
    const silent = await listen(t, () => undefined);
    const agents = makeAgents();
    t.after(() => {
      agents.close();
    });
    await assert.rejects(
      request(
        { method: 'GET', url: `http://127.0.0.1:${silent}/v2/`, headers: new Headers() },
        SHORT,
        agents,
      ),
      (e: unknown) => e instanceof TransportError && e.kind === 'timeout' && e.phase === 'headers',
    );
    const stalls = await listen(t, (_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('x'.repeat(10));
    });
    const res = await request(
      { method: 'GET', url: `http://127.0.0.1:${stalls}/v2/`, headers: new Headers() },
      SHORT,
      agents,
    );
    await assert.rejects(
      (async () => {
        let n = 0;
        for await (const chunk of res.body as AsyncIterable<Buffer>) n += chunk.length;
        return n;
      })(),
      (e: unknown) => e instanceof TransportError && e.kind === 'timeout' && e.phase === 'body',
    );
  });

  it('an abort stops a waiting request with its reason, and the client names the registry', async (t) => {
    let arrived: () => void = () => undefined;
    const got = new Promise<void>((r) => {
      arrived = r;
    });
    const port = await listen(t, () => {
      arrived();
    });
    const ac = new AbortController();
    const client = new RegistryClient(parseReference(`127.0.0.1:${port}/a/b`), {
      plainHttp: true,
      signal: ac.signal,
      timeouts: { connectMs: 60_000, idleMs: 60_000 },
    });
    t.after(() => {
      client.close();
    });
    const pending = client.headManifest('latest');
    await got;
    ac.abort(new SquashtreeError('E_INTERRUPTED', 'interrupted by SIGTERM'));
    await assert.rejects(
      pending,
      (e: unknown) => e instanceof SquashtreeError && e.code === 'E_INTERRUPTED',
    );

    const silent = new RegistryClient(parseReference(`127.0.0.1:${port}/a/b`), {
      plainHttp: true,
      timeouts: SHORT,
    });
    t.after(() => {
      silent.close();
    });
    await assert.rejects(
      silent.headManifest('latest'),
      (e: unknown) =>
        e instanceof SquashtreeError &&
        e.code === 'E_OCI_TIMEOUT' &&
        e.message.includes(`127.0.0.1:${port} accepted the connection but did not answer`),
    );
  });
});

describe('OCI downloads: resuming', () => {
  async function blobServer(t: TestContext, blob: Buffer, ranges: boolean) {
    const seen: (string | undefined)[] = [];
    const port = await listen(t, (req, res) => {
      seen.push(req.headers.range);
      const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      if (ranges && m) {
        const from = Number(m[1]);
        res
          .writeHead(206, {
            'content-length': blob.length - from,
            'content-range': `bytes ${from}-${blob.length - 1}/${blob.length}`,
          })
          .end(blob.subarray(from));
        return;
      }
      res.writeHead(200, { 'content-length': blob.length }).end(blob);
    });
    const client = new RegistryClient(parseReference(`127.0.0.1:${port}/a/b`), { plainHttp: true });
    t.after(() => {
      client.close();
    });
    return { client, seen };
  }

  async function tmp(t: TestContext): Promise<string> {
    const dir = await fsp.mkdtemp(join(tmpdir(), 'st-oci-dl-'));
    t.after(() => fsp.rm(dir, { recursive: true, force: true }));
    return dir;
  }

  const blob = randomBytes(200_000);
  const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;

  it('continues a partial file with a range request, re-hashing what is there', async (t) => {
    const { client, seen } = await blobServer(t, blob, true);
    const dest = join(await tmp(t), 'part');
    await fsp.writeFile(dest, blob.subarray(0, 70_000));
    const r = await client.downloadBlob(digest, blob.length, dest, { resume: true });
    assert.deepEqual(r, { resumedFrom: 70_000, received: 130_000 });
    assert.deepEqual(seen, ['bytes=70000-']);
    assert.ok((await fsp.readFile(dest)).equals(blob));
    assert.equal(client.stats.blobReceived, 130_000);
    // Complete already: nothing is fetched.
    assert.deepEqual(await client.downloadBlob(digest, blob.length, dest, { resume: true }), {
      resumedFrom: blob.length,
      received: 0,
    });
    assert.equal(seen.length, 1);
  });

  it('starts over where the server ignores ranges, and drops wrong bytes', async (t) => {
    const { client } = await blobServer(t, blob, false);
    const dir = await tmp(t);
    const dest = join(dir, 'part');
    await fsp.writeFile(dest, blob.subarray(0, 70_000));
    assert.deepEqual(await client.downloadBlob(digest, blob.length, dest, { resume: true }), {
      resumedFrom: 0,
      received: blob.length,
    });
    assert.ok((await fsp.readFile(dest)).equals(blob));

    const ranged = await blobServer(t, blob, true);
    const wrong = join(dir, 'wrong');
    await fsp.writeFile(wrong, randomBytes(70_000));
    await assert.rejects(
      ranged.client.downloadBlob(digest, blob.length, wrong, { resume: true }),
      (e: unknown) => e instanceof SquashtreeError && e.code === 'E_OCI_DIGEST',
    );
    await assert.rejects(fsp.stat(wrong), /ENOENT/, 'content that proved wrong is removed');
  });

  it('an abort in the middle of a body stops the download at once and keeps what arrived', async (t) => {
    let sent: () => void = () => undefined;
    const half = new Promise<void>((r) => {
      sent = r;
    });
    const port = await listen(t, (_req, res) => {
      res.writeHead(200, { 'content-length': blob.length });
      res.write(blob.subarray(0, 50_000), () => {
        sent();
      });
    });
    const ac = new AbortController();
    const client = new RegistryClient(parseReference(`127.0.0.1:${port}/a/b`), {
      plainHttp: true,
      signal: ac.signal,
      timeouts: { connectMs: 60_000, idleMs: 60_000 },
    });
    t.after(() => {
      client.close();
    });
    const dest = join(await tmp(t), 'part');
    let got = 0;
    let reached: () => void = () => undefined;
    const arrived = new Promise<void>((r) => {
      reached = r;
    });
    const pending = client.downloadBlob(digest, blob.length, dest, {
      resume: true,
      onProgress: (n) => {
        got = n;
        if (n >= 50_000) reached();
      },
    });
    await half;
    await arrived;
    ac.abort(new SquashtreeError('E_INTERRUPTED', 'interrupted by SIGINT'));
    await assert.rejects(
      pending,
      (e: unknown) => e instanceof SquashtreeError && e.code === 'E_INTERRUPTED',
    );
    assert.equal(got, 50_000);
    assert.equal((await fsp.stat(dest)).size, 50_000, 'the partial file stays for the next run');
  });
});
