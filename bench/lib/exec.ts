/**
 * Running the programs the benchmark measures: wall time around spawn and
 * close, kept output, and a registry of running children so a signal can
 * stop them before the cleanup runs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import { childCpuMs } from './cputime.js';

export class BenchError extends Error {
  constructor(
    message: string,
    readonly stderr = '',
  ) {
    super(message);
    this.name = 'BenchError';
  }
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  okCodes?: readonly number[];
  /** Called with the child's pid right after it is spawned. */
  onSpawn?: (pid: number) => void;
  /** Cleanup (umount, losetup -d) still runs after a signal stopped everything else. */
  evenIfAborted?: boolean;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Wall time from spawn to close, in milliseconds. */
  ms: number;
  /**
   * User + system CPU time of the child and everything it waited for (the
   * RUSAGE_CHILDREN delta across its run), in milliseconds; 10 ms resolution.
   */
  cpuMs: number;
}

const running = new Set<ChildProcess>();
let aborted: string | undefined;

/** After a signal: stop what runs now, and refuse to start anything new. */
export function abortAll(reason: string): void {
  aborted = reason;
  for (const c of running) c.kill('SIGTERM');
}

export function abortReason(): string | undefined {
  return aborted;
}

const KEEP = 1 << 20;

export async function run(
  cmd: string,
  args: readonly string[],
  opts: RunOptions = {},
): Promise<RunResult> {
  if (aborted !== undefined && !opts.evenIfAborted)
    throw new BenchError(`not running ${cmd}: ${aborted}`);
  const cpu0 = childCpuMs();
  const t0 = performance.now();
  const child = spawn(cmd, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: opts.env ?? process.env,
    cwd: opts.cwd,
  });
  running.add(child);
  if (child.pid !== undefined) opts.onSpawn?.(child.pid);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    if (stdout.length < KEEP) stdout += d;
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr = (stderr + d).slice(-KEEP);
  });
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>(
    (resolve, reject) => {
      child.on('error', reject);
      child.on('close', (c, s) => {
        resolve([c, s]);
      });
    },
  ).finally(() => running.delete(child));
  const ms = performance.now() - t0;
  const cpuMs = childCpuMs() - cpu0;
  const ok = opts.okCodes ?? [0];
  if (signal !== null || code === null || !ok.includes(code)) {
    const how = signal ? `was killed by ${signal}` : `exited with status ${String(code)}`;
    const tail = stderr.trim().split('\n').slice(-12).join('\n');
    throw new BenchError(`${[cmd, ...args].join(' ')} ${how}${tail ? `\n${tail}` : ''}`, stderr);
  }
  return { code, stdout, stderr, ms, cpuMs };
}

/** A bash pipeline, with pipefail so a failing first stage is not hidden. */
export function shell(script: string, opts: RunOptions = {}): Promise<RunResult> {
  return run('bash', ['-o', 'pipefail', '-c', script], opts);
}

export function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Drop the page, dentry and inode caches (clean pages only: sync first where anything was written). */
export async function dropCaches(): Promise<void> {
  await fsp.writeFile('/proc/sys/vm/drop_caches', '3\n');
}

export async function canDropCaches(): Promise<boolean> {
  try {
    await run('sync', []);
    await dropCaches();
    return true;
  } catch {
    return false;
  }
}

export async function exists(path: string): Promise<boolean> {
  try {
    await fsp.lstat(path);
    return true;
  } catch {
    return false;
  }
}
