/**
 * The one place that starts external programs (mount, losetup, mksquashfs,
 * ...). It keeps stdout/stderr, turns failures into SquashtreeErrors that
 * carry the command line and its stderr, and remembers running children so
 * an interrupted squashtree can stop them before it cleans up.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { SquashtreeError, errnoCode } from '../errors.js';

export interface RunOptions {
  /** Exit codes that are not failures (default: only 0). */
  okCodes?: readonly number[];
  /** Called with each line of stdout/stderr; lines end at \n or \r (progress bars use \r). */
  onStdoutLine?: (line: string) => void;
  onStderrLine?: (line: string) => void;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Extra file descriptors handed to the child as fd 3, 4, ... */
  extraFds?: readonly number[];
  /** Give the child our terminal (for commands the user runs through `squashtree run`). */
  inheritStdio?: boolean;
  timeoutMs?: number;
  /** Hint attached to the error if the command fails. */
  hint?: string;
  /**
   * Stopped when squashtree gets SIGINT/SIGTERM (long packing and copying).
   * mount and umount are never interrupted: they are what cleans up.
   */
  interruptible?: boolean;
}

export interface RunResult {
  code: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Debian/Gentoo package that provides each program we call, for the "not found" hint. */
const PROVIDERS: Record<string, string> = {
  mksquashfs:
    'squashfs-tools (Debian: apt-get install squashfs-tools; Gentoo: emerge sys-fs/squashfs-tools)',
  unsquashfs:
    'squashfs-tools (Debian: apt-get install squashfs-tools; Gentoo: emerge sys-fs/squashfs-tools)',
  mount: 'util-linux',
  umount: 'util-linux',
  losetup: 'util-linux',
  flock: 'util-linux',
  cp: 'coreutils',
  tar: 'GNU tar (Debian: apt-get install tar; Gentoo: emerge app-arch/tar)',
  squashfuse: 'squashfuse (Debian: apt-get install squashfuse; Gentoo: emerge sys-fs/squashfuse)',
  'fuse-overlayfs':
    'fuse-overlayfs (Debian: apt-get install fuse-overlayfs; Gentoo: emerge sys-fs/fuse-overlayfs)',
  fusermount3: 'fuse3 (Debian: apt-get install fuse3; Gentoo: emerge sys-fs/fuse)',
};

const running = new Set<ChildProcess>();
/** Set once SIGINT/SIGTERM reached squashtree: failures of stopped children are reported as such. */
let interruptedBy: NodeJS.Signals | undefined;

export function quoteArg(a: string): string {
  return /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
}

export function commandLine(cmd: string, args: readonly string[]): string {
  return [cmd, ...args].map(quoteArg).join(' ');
}

interface Splitter {
  push(chunk: string): void;
  /** Deliver a last line that had no newline. */
  flush(): void;
}

function lineSplitter(cb: ((line: string) => void) | undefined): Splitter {
  let rest = '';
  return {
    push(chunk) {
      if (!cb) return;
      const parts = (rest + chunk).split(/[\r\n]/);
      rest = parts.pop() ?? '';
      for (const p of parts) if (p.length > 0) cb(p);
    },
    flush() {
      if (cb && rest.length > 0) cb(rest);
      rest = '';
    },
  };
}

const MAX_KEPT = 1 << 20;

export async function run(
  cmd: string,
  args: readonly string[],
  opts: RunOptions = {},
): Promise<RunResult> {
  const line = commandLine(cmd, args);
  if (opts.interruptible && interruptedBy) {
    // After SIGINT/SIGTERM no new long step begins.
    throw new SquashtreeError(
      'E_INTERRUPTED',
      `interrupted by ${interruptedBy} before ${cmd} ran`,
      {
        command: line,
        hint: 'nothing was published and the current generation is intact; run the command again',
      },
    );
  }
  const stdio: StdioOptions = opts.inheritStdio
    ? ['inherit', 'inherit', 'inherit', ...(opts.extraFds ?? [])]
    : ['ignore', 'pipe', 'pipe', ...(opts.extraFds ?? [])];
  const child = spawn(cmd, args, {
    stdio,
    env: opts.env ?? process.env,
    cwd: opts.cwd,
  });
  if (opts.interruptible) running.add(child);
  let stdout = '';
  let stderr = '';
  const outLines = lineSplitter(opts.onStdoutLine);
  const errLines = lineSplitter(opts.onStderrLine);
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    if (stdout.length < MAX_KEPT) stdout += d;
    outLines.push(d);
  });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    // Keep the tail: the last lines name the failure.
    stderr = (stderr + d).slice(-MAX_KEPT);
    errLines.push(d);
  });
  let timer: NodeJS.Timeout | undefined;
  if (opts.timeoutMs !== undefined) {
    timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
  }
  const result = await new Promise<RunResult>((resolve, reject) => {
    child.on('error', (err) => {
      reject(err);
    });
    child.on('close', (code, signal) => {
      outLines.flush();
      errLines.flush();
      resolve({ code: code ?? -1, signal, stdout, stderr });
    });
  }).catch((err: unknown) => {
    if (timer) clearTimeout(timer);
    running.delete(child);
    if (errnoCode(err) === 'ENOENT') {
      const pkg = PROVIDERS[cmd];
      throw new SquashtreeError('E_COMMAND_MISSING', `${cmd}: command not found`, {
        command: line,
        hint: pkg ? `install ${pkg}` : `install the program ${cmd} and make sure it is in PATH`,
      });
    }
    throw new SquashtreeError('E_COMMAND', `could not run ${cmd}: ${String(err)}`, {
      command: line,
      cause: err,
    });
  });
  if (timer) clearTimeout(timer);
  running.delete(child);
  const ok = opts.okCodes ?? [0];
  if (
    opts.interruptible &&
    interruptedBy &&
    (result.signal !== null || !ok.includes(result.code))
  ) {
    throw new SquashtreeError('E_INTERRUPTED', `interrupted by ${interruptedBy} while ${cmd} ran`, {
      command: line,
      hint: 'nothing was published and the current generation is intact; run the command again',
    });
  }
  if (result.signal !== null || !ok.includes(result.code)) {
    const how = result.signal
      ? `was killed by ${result.signal}`
      : `exited with status ${result.code}`;
    const last = lastLine(result.stderr) || lastLine(result.stdout);
    throw new SquashtreeError('E_COMMAND', `${cmd} ${how}${last ? `: ${last}` : ''}`, {
      command: line,
      stderr: result.stderr.trim().slice(-4000),
      hint: opts.hint,
    });
  }
  return result;
}

function lastLine(s: string): string {
  const lines = s.split(/[\r\n]/).filter((l) => l.trim().length > 0);
  return (lines[lines.length - 1] ?? '').trim();
}

const interruption = new AbortController();

/**
 * Aborted on SIGINT/SIGTERM, for long work done in process (the SquashFS
 * writer) rather than by a child; its reason is an E_INTERRUPTED error.
 */
export function interruptSignal(): AbortSignal {
  return interruption.signal;
}

/** Stop the interruptible children (mksquashfs, cp) on SIGINT/SIGTERM; cleanup then runs as usual. */
export function killRunningChildren(
  signal: NodeJS.Signals = 'SIGTERM',
  received: NodeJS.Signals = signal,
): void {
  interruptedBy = received;
  for (const c of running) c.kill(signal);
  if (!interruption.signal.aborted) {
    interruption.abort(new SquashtreeError('E_INTERRUPTED', `interrupted by ${received}`));
  }
}

export function isInterrupted(e: unknown): boolean {
  return e instanceof SquashtreeError && e.code === 'E_INTERRUPTED';
}

export function runningChildren(): number {
  return running.size;
}

export interface PipedCommand {
  cmd: string;
  args: readonly string[];
  cwd?: string;
}

/**
 * `first | second`: first's stdout feeds second's stdin (tar -c | tar -x).
 * Both are interruptible; a failure of either is reported with its own
 * command line and stderr. A reader that fails (a full disk) makes the
 * writer die of the broken pipe: then the reader's failure is the one told.
 */
export async function runPiped(
  first: PipedCommand,
  second: PipedCommand,
  opts: { hint?: string } = {},
): Promise<void> {
  if (interruptedBy) {
    throw new SquashtreeError(
      'E_INTERRUPTED',
      `interrupted by ${interruptedBy} before ${first.cmd} ran`,
      {
        command: `${commandLine(first.cmd, first.args)} | ${commandLine(second.cmd, second.args)}`,
        hint: 'nothing was published and the current generation is intact; run the command again',
      },
    );
  }
  const b = spawn(second.cmd, second.args, { stdio: ['pipe', 'ignore', 'pipe'], cwd: second.cwd });
  const a = spawn(first.cmd, first.args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: first.cwd });
  running.add(a);
  running.add(b);
  a.stdout?.pipe(b.stdin ?? process.stdout);
  // The reader going away is reported through its exit status; the pipe's own error adds nothing.
  b.stdin?.on('error', () => undefined);
  const finished = (c: ChildProcess, p: PipedCommand): Promise<void> =>
    new Promise<RunResult>((resolve, reject) => {
      let stderr = '';
      c.stderr?.setEncoding('utf8').on('data', (d: string) => {
        stderr = (stderr + d).slice(-MAX_KEPT);
      });
      c.on('error', reject);
      c.on('close', (code, signal) => {
        resolve({ code: code ?? -1, signal, stdout: '', stderr });
      });
    })
      .catch((err: unknown) => {
        running.delete(c);
        if (errnoCode(err) === 'ENOENT') {
          const pkg = PROVIDERS[p.cmd];
          throw new SquashtreeError('E_COMMAND_MISSING', `${p.cmd}: command not found`, {
            command: commandLine(p.cmd, p.args),
            hint: pkg
              ? `install ${pkg}`
              : `install the program ${p.cmd} and make sure it is in PATH`,
          });
        }
        throw err;
      })
      .then((r) => {
        running.delete(c);
        if (r.signal === null && r.code === 0) return;
        const line = commandLine(p.cmd, p.args);
        if (interruptedBy) {
          throw new SquashtreeError(
            'E_INTERRUPTED',
            `interrupted by ${interruptedBy} while ${p.cmd} ran`,
            {
              command: line,
              hint: 'nothing was published and the current generation is intact; run the command again',
            },
          );
        }
        const how = r.signal ? `was killed by ${r.signal}` : `exited with status ${r.code}`;
        const last = lastLine(r.stderr);
        throw new SquashtreeError('E_COMMAND', `${p.cmd} ${how}${last ? `: ${last}` : ''}`, {
          command: line,
          stderr: r.stderr.trim().slice(-4000),
          hint: opts.hint,
        });
      });
  const [ra, rb] = await Promise.allSettled([finished(a, first), finished(b, second)]);
  const brokenPipe = (e: unknown): boolean =>
    e instanceof SquashtreeError && /SIGPIPE|Broken pipe/.test(`${e.message}\n${e.stderr ?? ''}`);
  if (rb.status === 'rejected' && (ra.status === 'fulfilled' || brokenPipe(ra.reason)))
    throw rb.reason;
  if (ra.status === 'rejected') throw ra.reason;
  if (rb.status === 'rejected') throw rb.reason;
}
