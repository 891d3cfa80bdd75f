/** Run the built CLI exactly as a user does: node bin/squashtree.js ARGS. */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Sandbox } from './env.js';

export const BIN = fileURLToPath(new URL('../../bin/squashtree.js', import.meta.url));

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
        BIN,
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
