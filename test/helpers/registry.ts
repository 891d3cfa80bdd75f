/**
 * The registry tests' shared parts: a real docker-registry (the CNCF
 * distribution registry) on 127.0.0.1 with its config and storage in the
 * test's temp dir, stopped when the test ends; a follower machine (its own
 * sandbox, config and store); the CLI's publish and pull as JSON; a
 * loopback proxy that breaks one blob's downloads at a known byte count.
 */
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { needRoot, sandbox, type Sandbox } from './env.js';
import { sq, sqOk, type CliResult } from './cli.js';
import { initTree, parseJson, type StatusJson } from './setup.js';
import type { PublishResult } from '../../src/oci/publish.js';
import type { PullResult } from '../../src/oci/pull.js';

export function onPath(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export const HAVE_REGISTRY = onPath('docker-registry');
export const HAVE_SKOPEO = onPath('skopeo');

export function needRegistry(t: TestContext): boolean {
  if (!needRoot(t)) return false;
  if (!HAVE_REGISTRY) {
    t.skip(
      'docker-registry is not installed (apt-get install docker-registry skopeo): these tests need a real OCI registry',
    );
    return false;
  }
  return true;
}

export function freePort(): Promise<number> {
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

export function waitExit(child: ChildProcess, ms: number): Promise<void> {
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

export interface Registry {
  port: number;
  host: string;
  /** The registry's storage root (docker/registry/v2/... below it). */
  root: string;
  /** Its config file (for garbage-collect). */
  config: string;
  blobData(digest: string): string;
}

/**
 * docker-registry on 127.0.0.1:<free port>, storage under `dir`; stopped in
 * t.after. Manifest deletes are allowed unless deleteEnabled is false.
 */
export async function startRegistry(
  t: TestContext,
  dir: string,
  opts: { deleteEnabled?: boolean } = {},
): Promise<Registry> {
  const port = await freePort();
  const root = join(dir, `registry-${port}`);
  await fsp.mkdir(root, { recursive: true });
  const config = join(dir, `registry-${port}.yml`);
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
      `    enabled: ${opts.deleteEnabled === false ? 'false' : 'true'}`,
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
    config,
    blobData: (digest) => {
      const hex = digest.replace('sha256:', '');
      return join(root, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
    },
  };
}

export interface Follower {
  sb: Sandbox;
  tree: string;
  store: string;
  ok: (...args: string[]) => Promise<CliResult>;
  run: (...args: string[]) => Promise<CliResult>;
}

/** A machine that only follows: its config names the tree's dir (and a store in the sandbox). */
export async function follower(t: TestContext): Promise<Follower> {
  const sb = await sandbox(t, 'st-oci-f-');
  const tree = join(sb.dir, 'tree');
  await fsp.writeFile(sb.config, `[tree.t]\ndir = "${tree}"\nstore = "${sb.store('t')}"\n`);
  return { sb, tree, store: sb.store('t'), ok: sqOk(sb), run: sq(sb) };
}

export async function publish(
  ok: (...a: string[]) => Promise<CliResult>,
  ref: string,
  ...extra: string[]
): Promise<PublishResult> {
  return parseJson<PublishResult>(
    await ok('publish', 't', ref, '--plain-http', '--json', ...extra),
  );
}

export async function pull(fo: Follower, ref: string, ...extra: string[]): Promise<PullResult> {
  return parseJson<PullResult>(await fo.ok('pull', 't', ref, '--plain-http', '--json', ...extra));
}

export async function status(ok: (...a: string[]) => Promise<CliResult>) {
  const s = parseJson<StatusJson>(await ok('status', '--json'));
  const t = s.trees[0];
  assert.ok(t);
  return t as StatusJson['trees'][number] & { mountedGeneration: number | null };
}

export async function imageBytes(store: string, file: string): Promise<number> {
  return (await fsp.stat(join(store, file))).size;
}

/** A tree with an incompressible file, so images are big enough to stream and chunk. */
export function spec(): Parameters<typeof initTree>[1] {
  return {
    'a.txt': 'alpha\n',
    'cat-one': { dir: { pkg: { dir: { 'pkg-1.ebuild': 'EAPI=8\n', Manifest: 'DIST x 1\n' } } } },
    metadata: { dir: { 'timestamp.chk': 'Sat, 01 Aug 2026 00:00:00 +0000\n' } },
    link: { symlink: 'a.txt' },
    'blob.bin': randomBytes(256 << 10),
  };
}

export function expectFail(r: CliResult, code: string): void {
  assert.equal(r.status, 1, `expected ${code}, got exit ${r.status}\n${r.stdout}\n${r.stderr}`);
  assert.match(r.stderr, new RegExp(`${code}\\b`));
  assert.match(r.stderr, /hint:/);
}

export interface Proxy {
  port: number;
  /** drop or stall GETs of the blob halfway; norange: pass them on without their Range header. */
  mode: 'drop' | 'stall' | 'norange';
  /** Range headers of the blob GETs that came through. */
  ranges: string[];
  /** Resolves when a stalled transfer has sent half of the blob. */
  stalled: Promise<void>;
}

/**
 * A loopback proxy in front of the registry that breaks GETs of one blob
 * halfway: it drops the connection, or stops sending and holds it open.
 */
export async function startProxy(t: TestContext, upstream: number, digest: string): Promise<Proxy> {
  let onStall: () => void = () => undefined;
  const proxy: Proxy = {
    port: 0,
    mode: 'drop',
    ranges: [],
    stalled: new Promise<void>((r) => {
      onStall = r;
    }),
  };
  const server = http.createServer((req, res) => {
    const isBlob = req.method === 'GET' && (req.url ?? '').includes(`/blobs/${digest}`);
    const headers = { ...req.headers };
    if (isBlob && typeof headers.range === 'string') proxy.ranges.push(headers.range);
    if (isBlob && proxy.mode === 'norange') delete headers.range;
    const up = http.request(
      {
        host: '127.0.0.1',
        port: upstream,
        method: req.method,
        path: req.url,
        headers,
      },
      (ur) => {
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        if (!isBlob || proxy.mode === 'norange') {
          ur.pipe(res);
          return;
        }
        const half = Math.floor(Number(ur.headers['content-length'] ?? 0) / 2);
        let sent = 0;
        ur.on('data', (chunk: Buffer) => {
          if (sent >= half) return;
          const part = chunk.subarray(0, half - sent);
          sent += part.length;
          if (sent < half) {
            res.write(part);
            return;
          }
          ur.destroy();
          // The last bytes are flushed before the connection closes, so the client gets exactly half.
          res.write(part, () => {
            if (proxy.mode === 'drop') res.socket?.end();
            else onStall();
          });
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

export async function waitFor<T>(
  fn: () => Promise<T | undefined>,
  ms = 20_000,
): Promise<T | undefined> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const v = await fn();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  return undefined;
}
