/**
 * Helpers for the reliability tests (stress, faults from outside, hostile
 * input): a richer view of `status --json`, a CLI child that can be signalled
 * mid-run, a small filesystem image to run a store out of space, and checks
 * that nothing was left mounted, attached or half-written.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { BIN, type CliResult } from './cli.js';
import { mountsBelow, type Sandbox } from './env.js';
import { parseJson, type TreeFixture } from './setup.js';
import { compareTrees } from '../../src/image/compare.js';

export interface TreeStatusJson {
  name: string;
  state: string;
  mounted: boolean;
  generation: number;
  mountedGeneration: number | null;
  layers: number;
  pending: { files: number; bytes: number };
  upper: {
    kind: string;
    usedBytes: number;
    limitBytes: number;
    usedInodes: number;
    limitInodes: number;
    full: boolean;
  } | null;
  generations: { generation: number; action: string; layers: number; current: boolean }[];
}

/** `status --json` of the fixture's only tree. */
export async function treeStatus(f: Pick<TreeFixture, 'ok'>): Promise<TreeStatusJson> {
  const s = parseJson<{ trees: TreeStatusJson[] }>(await f.ok('status', '--json'));
  const t = s.trees[0];
  assert.ok(t, 'status lists the tree');
  return t;
}

/** Loop devices whose backing file lies below dir. */
export function loopsFor(dir: string): string[] {
  return execFileSync('losetup', ['-a'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.includes(`(${dir}/`));
}

/** Mount points below dir with their fstype, read from /proc/self/mountinfo. */
export function mountTable(dir: string): { point: string; fstype: string }[] {
  const text = execFileSync('cat', ['/proc/self/mountinfo'], { encoding: 'utf8' });
  const out: { point: string; fstype: string }[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    const point = (f[4] ?? '').replace(/\\([0-7]{3})/g, (_, o: string) =>
      String.fromCharCode(parseInt(o, 8)),
    );
    const sep = f.indexOf('-');
    if (point === dir || point.startsWith(`${dir}/`))
      out.push({ point, fstype: sep >= 0 ? (f[sep + 1] ?? '') : '' });
  }
  return out;
}

/** The tree's runtime dir, its tmpfs upper and the upper's data dir. */
export function runtimeOf(
  sb: Sandbox,
  name = 't',
): { runtime: string; upper: string; data: string } {
  const runtime = join(sb.state, name);
  return { runtime, upper: join(runtime, 'upper'), data: join(runtime, 'upper', 'data') };
}

/** Scratch mounts (stage, verify, scratch, lower view) a finished command must not leave. */
export function strayMounts(sb: Sandbox, name = 't'): string[] {
  const { runtime } = runtimeOf(sb, name);
  return mountTable(runtime)
    .map((m) => m.point)
    .filter((p) => /\/(stage|verify|scratch)(\/|$)/.test(p.slice(runtime.length)));
}

/** A stopped tree leaves nothing mounted or attached below the sandbox, and no temp files. */
export async function assertClean(sb: Sandbox, store: string, what: string): Promise<void> {
  assert.deepEqual(
    mountsBelow(sb.dir).filter((p) => !p.startsWith(join(sb.dir, 'storefs'))),
    [],
    `${what}: mounts left`,
  );
  const loops = loopsFor(sb.dir).filter((l) => !l.includes('/storefs.img'));
  assert.deepEqual(loops, [], `${what}: loops left${await loopHolders(loops)}`);
  assert.deepEqual(
    (await fsp.readdir(store)).filter((n) => n.startsWith('.')),
    [],
    `${what}: temp files left in the store`,
  );
}

/**
 * Who still mounts the devices of these `losetup -a` lines, in any mount
 * namespace: a loop left attached is often a copy of a mount in a namespace
 * another program made meanwhile (unshare copies every mount), not a leak.
 */
export async function loopHolders(lines: readonly string[]): Promise<string> {
  const out: string[] = [];
  const ownNs = await fsp.readlink('/proc/self/ns/mnt');
  for (const l of lines) {
    const dev = /^\/dev\/(loop\d+):/.exec(l)?.[1];
    if (!dev) continue;
    const majmin = (await fsp.readFile(`/sys/block/${dev}/dev`, 'utf8').catch(() => '')).trim();
    if (!majmin) continue;
    for (const pid of await fsp.readdir('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      const info = await fsp.readFile(`/proc/${pid}/mountinfo`, 'utf8').catch(() => '');
      if (!info.split('\n').some((m) => m.split(' ')[2] === majmin)) continue;
      const ns = await fsp.readlink(`/proc/${pid}/ns/mnt`).catch(() => '?');
      if (ns === ownNs) continue;
      const cmd = (await fsp.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => ''))
        .replaceAll('\0', ' ')
        .slice(0, 120);
      out.push(`/dev/${dev} is mounted in mount namespace ${ns} of pid ${pid} (${cmd})`);
      break;
    }
  }
  if (lines.length > 0 && out.length === 0) {
    // A namespace no process is in, kept by a bind of its nsfs file (as test/helpers/user.ts does).
    const kept = (await fsp.readFile('/proc/self/mountinfo', 'utf8'))
      .split('\n')
      .filter((m) => / - nsfs /.test(m) && /mnt:\[/.test(m))
      .map((m) => m.split(' ')[4] ?? '');
    if (kept.length > 0) out.push(`mount namespaces kept by nsfs binds: ${kept.join(', ')}`);
  }
  return out.length > 0 ? ` (${out.join('; ')})` : '';
}

/** No "internal error" and no JavaScript stack frames in a CLI's output. */
export function assertNoStack(r: CliResult, what: string): void {
  const text = `${r.stdout}\n${r.stderr}`;
  assert.doesNotMatch(text, /internal error/i, `${what}: internal error\n${r.stderr}`);
  assert.doesNotMatch(text, /^\s+at .+:\d+:\d+\)?$/m, `${what}: stack trace\n${r.stderr}`);
}

export interface Running {
  child: ChildProcess;
  done: Promise<CliResult>;
  /** Resolves once stderr has shown a line matching re (or the command ended). */
  waitFor(re: RegExp): Promise<boolean>;
}

/** Start the CLI as a child that the test can signal; detached gives it its own process group. */
export function spawnCli(
  sb: Sandbox,
  args: readonly string[],
  detached = false,
  env: NodeJS.ProcessEnv = {},
): Running {
  const child = spawn(
    process.execPath,
    [BIN, '--config', sb.config, '--state-dir', sb.state, ...args],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached,
      env: { ...process.env, ...env },
    },
  );
  let stdout = '';
  let stderr = '';
  const waiters: { re: RegExp; resolve: (v: boolean) => void }[] = [];
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
    for (const w of [...waiters]) {
      if (w.re.test(stderr)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(true);
      }
    }
  });
  const done = new Promise<CliResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      for (const w of waiters.splice(0)) w.resolve(false);
      resolve({ status: code ?? (signal ? 128 : -1), stdout, stderr });
    });
  });
  return {
    child,
    done,
    waitFor: (re) =>
      re.test(stderr)
        ? Promise.resolve(true)
        : new Promise<boolean>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) resolve(false);
            else waiters.push({ re, resolve });
          }),
  };
}

export const sleep = (ms: number): Promise<void> =>
  new Promise((r) => {
    setTimeout(r, ms);
  });

/**
 * A small ext4 filesystem in a file below the sandbox, mounted at
 * SB/storefs (the sandbox's cleanup unmounts it and detaches its loop).
 */
export function smallExt4(sb: Sandbox, megabytes: number, inodes?: number): string {
  const img = join(sb.dir, 'storefs.img');
  const mnt = join(sb.dir, 'storefs');
  execFileSync('truncate', ['-s', `${megabytes}M`, img]);
  execFileSync('mkfs.ext4', ['-q', '-F', ...(inodes ? ['-N', String(inodes)] : []), img]);
  execFileSync('mkdir', ['-p', mnt]);
  execFileSync('mount', ['-o', 'loop', img, mnt]);
  return mnt;
}

/** Free 1 KiB blocks of a filesystem, counting the blocks reserved for root (root may use them). */
export async function freeKiB(path: string): Promise<number> {
  const s = await fsp.statfs(path);
  return Math.floor((s.bfree * s.bsize) / 1024);
}

/** Fill the filesystem of `dir` with a filler file until only `leaveKiB` KiB are free. */
export async function fillTo(dir: string, filler: string, leaveKiB: number): Promise<void> {
  await fsp.rm(filler, { force: true });
  execFileSync('sync', ['-f', dir]);
  const free = await freeKiB(dir);
  const count = Math.max(0, free - leaveKiB);
  if (count > 0) {
    try {
      execFileSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=1k', `count=${count}`], {
        stdio: 'ignore',
      });
    } catch {
      // ENOSPC before count: the filesystem is as full as it gets, which is the point
    }
  }
  execFileSync('sync', ['-f', dir]);
}

/** Deterministic pseudo-random bytes (incompressible) from a seed, without a PRNG per byte. */
export function noise(bytes: number, seed: number): Buffer {
  const out = Buffer.alloc(bytes);
  let x = (seed ^ 0x9e3779b9) >>> 0 || 1;
  for (let i = 0; i + 4 <= bytes; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out.writeUInt32LE(x, i);
  }
  return out;
}

const XATTR_SERVER = `
import os, sys, json
def dump(root):
    root = os.fsencode(root); out = {}
    for d, dirs, files in os.walk(root):
        for n in [b''] + dirs + files:
            p = os.path.join(d, n) if n else d
            try:
                names = sorted(k for k in os.listxattr(p, follow_symlinks=False) if not k.startswith('trusted.overlay.'))
            except OSError as e:
                if e.errno != 95: raise
                names = []
            if names:
                rel = os.path.relpath(p, root).decode('latin1')
                out[rel] = ';'.join(k + '=' + os.getxattr(p, k, follow_symlinks=False).hex() for k in names)
    return out
for line in sys.stdin:
    req = json.loads(line)
    try:
        op = req['op']
        if op == 'dump':
            res = dump(req['root'])
        elif op == 'set':
            os.setxattr(os.fsencode(req['path']), req['name'], req['value'].encode(), follow_symlinks=False); res = None
        elif op == 'remove':
            os.removexattr(os.fsencode(req['path']), req['name'], follow_symlinks=False); res = None
        else:
            try:
                res = os.getxattr(os.fsencode(req['path']), req['name'], follow_symlinks=False).decode('latin1')
            except OSError as e:
                if e.errno != 61: raise
                res = None
        sys.stdout.write(json.dumps({'ok': True, 'result': res}, sort_keys=True) + '\\n')
    except Exception as e:
        sys.stdout.write(json.dumps({'ok': False, 'error': repr(e)}) + '\\n')
    sys.stdout.flush()
`;

/**
 * One python3 process that answers xattr requests over a pipe: the same dump
 * as tree.ts's dumpXattrs without a python start-up (0.2 s on a busy
 * machine) per call, which a check after every step of a long run needs.
 */
export class Xattrs {
  private readonly child: ChildProcess;
  private buffer = '';
  private readonly pending: ((line: string) => void)[] = [];

  constructor() {
    this.child = spawn('python3', ['-u', '-c', XATTR_SERVER], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    this.child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      this.buffer += d;
      let nl;
      while ((nl = this.buffer.indexOf('\n')) >= 0) {
        const line = this.buffer.slice(0, nl);
        this.buffer = this.buffer.slice(nl + 1);
        this.pending.shift()?.(line);
      }
    });
  }

  private async ask(req: Record<string, string>): Promise<unknown> {
    const line = await new Promise<string>((resolve) => {
      this.pending.push(resolve);
      this.child.stdin?.write(`${JSON.stringify(req)}\n`);
    });
    const r = JSON.parse(line) as { ok: boolean; result?: unknown; error?: string };
    if (!r.ok)
      throw new Error(`xattr ${req.op ?? ''} ${req.path ?? req.root ?? ''}: ${r.error ?? ''}`);
    return r.result;
  }

  async dump(root: string): Promise<Record<string, string>> {
    return (await this.ask({ op: 'dump', root })) as Record<string, string>;
  }

  async set(path: string, name: string, value: string): Promise<void> {
    await this.ask({ op: 'set', path, name, value });
  }

  async remove(path: string, name: string): Promise<void> {
    await this.ask({ op: 'remove', path, name });
  }

  async get(path: string, name: string): Promise<string | null> {
    return (await this.ask({ op: 'get', path, name })) as string | null;
  }

  close(): void {
    this.child.stdin?.end();
  }
}

/** assertSameTree (helpers/tree.ts) with the xattr dump served by a running Xattrs. */
export async function assertSameTreeWith(
  x: Xattrs,
  expected: string,
  actual: string,
  what: string,
  opts: { live?: boolean } = {},
): Promise<void> {
  const r = await compareTrees(expected, actual, {
    contents: true,
    limit: 10,
    ignoreMtime: true,
    ignoreHardlinks: opts.live === true,
  });
  assert.deepEqual(r.differences, [], `${what}: trees differ: ${JSON.stringify(r.differences)}`);
  assert.deepEqual(await x.dump(actual), await x.dump(expected), `${what}: xattrs differ`);
}
