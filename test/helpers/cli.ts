/** Run the built CLI exactly as a user does: node bin/squashtree.js ARGS. */
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Sandbox } from './env.js';

export const BIN = fileURLToPath(new URL('../../bin/squashtree.js', import.meta.url));

let publicCopy: string | undefined;

/**
 * The built CLI where any user can run it: a checkout in root's home
 * (/root is 0700) cannot be read by the users the tests run as. The bundle
 * is self-contained, so a copy of it in a temp dir of mode 0755 is the same
 * program; it is removed when the test process exits.
 */
export function publicBin(): string {
  if (publicCopy) return publicCopy;
  const dir = mkdtempSync(join(tmpdir(), 'st-bin-'));
  chmodSync(dir, 0o755);
  copyFileSync(
    fileURLToPath(new URL('../../dist/squashtree.mjs', import.meta.url)),
    join(dir, 'squashtree.mjs'),
  );
  const launcher = join(dir, 'run.mjs');
  writeFileSync(
    launcher,
    "import { main } from './squashtree.mjs';\nprocess.exitCode = await main(process.argv.slice(2));\n",
  );
  for (const f of ['squashtree.mjs', 'run.mjs']) chmodSync(join(dir, f), 0o644);
  process.on('exit', () => {
    rmSync(dir, { recursive: true, force: true });
  });
  publicCopy = launcher;
  return launcher;
}

export interface CliResult {
  status: number;
  stdout: string;
  stderr: string;
}

export function cli(
  args: readonly string[],
  opts: { env?: NodeJS.ProcessEnv; input?: string; program?: string } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    // `program` runs args as its own (a shell that sets a umask first, say), without BIN.
    const argv = opts.program ? [...args] : [BIN, ...args];
    const child = spawn(opts.program ?? process.execPath, argv, {
      env: { ...process.env, ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      resolve({ status: code ?? (signal ? 128 : -1), stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** The CLI bound to a sandbox's config and state dir. */
export function sq(sb: Sandbox) {
  return (...args: string[]): Promise<CliResult> =>
    cli(['--config', sb.config, '--state-dir', sb.state, ...args]);
}

/** Like sq, but fails the test with the CLI's output when it does not exit 0. */
export function sqOk(sb: Sandbox) {
  const run = sq(sb);
  return async (...args: string[]): Promise<CliResult> => {
    const r = await run(...args);
    if (r.status !== 0)
      throw new Error(`squashtree ${args.join(' ')} exited ${r.status}\n${r.stdout}\n${r.stderr}`);
    return r;
  };
}

export interface BytesResult {
  status: number;
  stdout: Buffer;
  stderr: string;
}

/**
 * squashtree ARGS as uid/gid 65534 (nobody), stdout kept as bytes. No
 * config or state unless given: what a user without root reads alone.
 */
export function asNobody(
  args: readonly string[],
  cwd: string,
  opts: { config?: string } = {},
): Promise<BytesResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'setpriv',
      [
        '--reuid=65534',
        '--regid=65534',
        '--clear-groups',
        process.execPath,
        publicBin(),
        '--config',
        opts.config ?? '/nonexistent/squashtree.toml',
        '--state-dir',
        '/nonexistent/state',
        ...args,
      ],
      { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } },
    );
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      resolve({ status: code ?? -1, stdout: Buffer.concat(out), stderr: err });
    });
  });
}
