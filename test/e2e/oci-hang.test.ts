/**
 * A registry that accepts the connection and never answers (issue 14 item
 * 3), and one on a port that fetch refuses (item 17), through the CLI
 * against real sockets on 127.0.0.1. The silent server is held at a known
 * step (it has received the request) before anything is asserted.
 */
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { BIN, cli } from '../helpers/cli.js';
import { needRoot } from '../helpers/env.js';
import { initTree, parseJson } from '../helpers/setup.js';
import {
  expectFail,
  follower,
  needRegistry,
  publish,
  pull,
  spec,
  startRegistry,
  type Follower,
} from '../helpers/registry.js';

interface Silent {
  port: number;
  /** Resolves once a request has arrived (its first bytes). */
  requested: Promise<void>;
  requests: number;
}

/** A TCP server that accepts, reads and never answers; on `port` if given. */
function silentServer(t: TestContext, port = 0): Promise<Silent | null> {
  const sockets = new Set<net.Socket>();
  let onRequest: () => void = () => undefined;
  const s: Silent = {
    port: 0,
    requests: 0,
    requested: new Promise<void>((r) => {
      onRequest = r;
    }),
  };
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('data', () => {
      s.requests++;
      onRequest();
    });
    sock.on('error', () => undefined);
    sock.on('close', () => sockets.delete(sock));
  });
  t.after(
    () =>
      new Promise<void>((r) => {
        for (const sock of sockets) sock.destroy();
        server.close(() => {
          r();
        });
      }),
  );
  return new Promise((resolve) => {
    server.once('error', () => {
      resolve(null);
    });
    server.listen(port, '127.0.0.1', () => {
      const a = server.address();
      s.port = typeof a === 'object' && a ? a.port : 0;
      resolve(s);
    });
  });
}

/** WHATWG "bad ports" (fetch refuses them) a registry may well use. */
const BAD_PORTS = [5060, 5061, 6000, 6665, 6666, 6667, 6668, 6669, 6697, 10080, 4190, 1719, 1720];

/** A forwarder on the first free bad port to `upstream`. */
async function forwarder(t: TestContext, upstream: number): Promise<number | null> {
  for (const port of BAD_PORTS) {
    const sockets = new Set<net.Socket>();
    const server = net.createServer((c) => {
      const u = net.connect(upstream, '127.0.0.1');
      sockets.add(c).add(u);
      c.pipe(u).pipe(c);
      const drop = (): void => {
        c.destroy();
        u.destroy();
      };
      c.on('error', drop).on('close', drop);
      u.on('error', drop).on('close', drop);
    });
    const ok = await new Promise<boolean>((resolve) => {
      server.once('error', () => {
        resolve(false);
      });
      server.listen(port, '127.0.0.1', () => {
        resolve(true);
      });
    });
    if (!ok) continue;
    t.after(
      () =>
        new Promise<void>((r) => {
          for (const s of sockets) s.destroy();
          server.close(() => {
            r();
          });
        }),
    );
    return port;
  }
  return null;
}

function pullArgs(fo: Follower, ref: string, ...extra: string[]): string[] {
  return [
    '--config',
    fo.sb.config,
    '--state-dir',
    fo.sb.state,
    'pull',
    't',
    ref,
    '--plain-http',
    ...extra,
  ];
}

describe('OCI registry: silent servers and unusual ports', { concurrency: false }, () => {
  it('a registry that accepts and never answers: pull and publish fail with E_OCI_TIMEOUT naming it, and the lock is free again', async (t) => {
    if (!needRoot(t)) return;
    const silent = await silentServer(t);
    assert.ok(silent);
    const ref = `127.0.0.1:${silent.port}/gentoo/repo`;
    const fo = await follower(t);
    const r = await cli(pullArgs(fo, ref), { env: { SQUASHTREE_REGISTRY_TIMEOUT: '1' } });
    expectFail(r, 'E_OCI_TIMEOUT');
    assert.match(
      r.stderr,
      new RegExp(
        `127\\.0\\.0\\.1:${silent.port} accepted the connection but did not answer HEAD /v2/gentoo/repo/manifests/latest within 1 s`,
      ),
    );
    assert.match(r.stderr, /SQUASHTREE_REGISTRY_TIMEOUT/);
    assert.ok(silent.requests > 0, 'the request reached the server');
    // The lock was released: the next command does not wait for it (--wait 0).
    const again = await cli(['--wait', '0', ...pullArgs(fo, ref)], {
      env: { SQUASHTREE_REGISTRY_TIMEOUT: '1' },
    });
    expectFail(again, 'E_OCI_TIMEOUT');

    const f = await initTree(t, spec());
    const p1 = await cli(
      ['--config', f.sb.config, '--state-dir', f.sb.state, 'publish', 't', ref, '--plain-http'],
      {
        env: { SQUASHTREE_REGISTRY_TIMEOUT: '1' },
      },
    );
    expectFail(p1, 'E_OCI_TIMEOUT');
  });

  it('SIGTERM stops a pull that waits on a silent registry at once, and cleans up', async (t) => {
    if (!needRoot(t)) return;
    const silent = await silentServer(t);
    assert.ok(silent);
    const ref = `127.0.0.1:${silent.port}/gentoo/repo`;
    const fo = await follower(t);
    const env = { ...process.env };
    delete env.SQUASHTREE_REGISTRY_TIMEOUT;
    const child = spawn(process.execPath, [BIN, ...pullArgs(fo, ref)], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    t.after(() => {
      child.kill('SIGKILL');
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => {
      child.once('exit', (code) => {
        resolve(code);
      });
    });
    await silent.requested;
    child.kill('SIGTERM');
    // A watchdog only: without the abort this would wait for the 60 s idle timeout.
    const code = await Promise.race([
      exited,
      new Promise<'hung'>((r) => {
        setTimeout(() => {
          r('hung');
        }, 20_000).unref();
      }),
    ]);
    assert.notEqual(code, 'hung', `pull ignored SIGTERM:\n${stderr}`);
    assert.equal(code, 1, stderr);
    assert.match(stderr, /SIGTERM received, stopping and cleaning up/);
    assert.match(stderr, /E_INTERRUPTED/);
    const after = await cli(['--wait', '0', ...pullArgs(fo, `127.0.0.1:${silent.port}/x`)], {
      env: { SQUASHTREE_REGISTRY_TIMEOUT: '1' },
    });
    expectFail(after, 'E_OCI_TIMEOUT');
  });

  it('a registry on a port fetch refuses (5060, 6000, 6665-6669, ...) works, and a silent one there times out as anywhere', async (t) => {
    if (!needRegistry(t)) return;
    const f = await initTree(t, spec());
    const reg = await startRegistry(t, f.sb.dir);
    const port = await forwarder(t, reg.port);
    if (port === null) {
      t.skip(`none of the ports ${BAD_PORTS.join(', ')} is free on 127.0.0.1`);
      return;
    }
    const ref = `127.0.0.1:${port}/squashtree/t`;
    const pub = await publish(f.ok, ref);
    assert.equal(pub.generation, 1);
    const fo = await follower(t);
    const r = await pull(fo, ref);
    assert.equal(r.generation, 1);
    assert.equal(r.digest, pub.digest);
    const st = parseJson<{ trees: { generation: number }[] }>(await fo.ok('status', '--json'));
    assert.equal(st.trees[0]?.generation, 1);

    const other = BAD_PORTS.find((p) => p !== port);
    const silent = other === undefined ? null : await silentServer(t, other);
    if (!silent) {
      t.diagnostic('no second bad port was free: the silent-server half was skipped');
      return;
    }
    const s = await cli(pullArgs(fo, `127.0.0.1:${silent.port}/x`), {
      env: { SQUASHTREE_REGISTRY_TIMEOUT: '1' },
    });
    expectFail(s, 'E_OCI_TIMEOUT');
    assert.doesNotMatch(s.stderr, /bad port/);
  });
});
