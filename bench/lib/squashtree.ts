/**
 * Driving squashtree the way a user does: `node bin/squashtree.js --config
 * CFG --state-dir STATE ... --json`, one process per command, timed from
 * spawn to exit. Commit and compact also report peak RSS: /usr/bin/time's
 * %M (the largest of node and the programs it ran, such as mksquashfs) and
 * node's own peak, written at exit by a tiny --import probe.
 */
import { existsSync, promises as fsp } from 'node:fs';
import { join, resolve } from 'node:path';
import { COMPRESSORS, type Compressor } from '../../src/config/schema.js';
import type {
  CommitResult,
  CompactResult,
  InitResult,
  StartResult,
  StopResult,
} from '../../src/index.js';
import { BenchError, run, type RunResult } from './exec.js';

export const ROOT = resolve(import.meta.dirname, '../..');
export const BIN = join(ROOT, 'bin', 'squashtree.js');
const TIME = '/usr/bin/time';

/** One entry of --compressors, such as "xz -b 1M -Xdict-size 100%". */
export interface CompressorSpec {
  label: string;
  compression: Compressor;
  /** Everything after the compressor's name, as mksquashfs takes it. */
  args: string[];
  blockSize?: string;
  level?: number;
  /** What goes to mksquashfs-args in the config. */
  extra: string[];
}

export function parseCompressor(text: string): CompressorSpec {
  const words = text.trim().split(/\s+/).filter(Boolean);
  const [name = '', ...args] = words;
  if (!(COMPRESSORS as readonly string[]).includes(name)) {
    throw new BenchError(`unknown compressor "${name}" (use one of ${COMPRESSORS.join(', ')})`);
  }
  const spec: CompressorSpec = {
    label: words.join(' '),
    compression: name as Compressor,
    args,
    extra: [],
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    const v = args[i + 1];
    if (a === '-b' && v !== undefined) {
      spec.blockSize = v;
      i++;
    } else if (a === '-Xcompression-level' && v !== undefined) {
      spec.level = Number(v);
      i++;
    } else spec.extra.push(a);
  }
  return spec;
}

export function defaultsToml(spec: CompressorSpec): string {
  const lines = [
    '# written by bench/run.ts for one benchmark run',
    '[defaults]',
    `compression = "${spec.compression}"`,
    // Nothing compacts on its own: the benchmark builds stacks of up to 16 layers.
    'compact-after = 400',
  ];
  if (spec.blockSize !== undefined) lines.push(`block-size = ${JSON.stringify(spec.blockSize)}`);
  if (spec.level !== undefined) lines.push(`compression-level = ${spec.level}`);
  if (spec.extra.length > 0) lines.push(`mksquashfs-args = ${JSON.stringify(spec.extra)}`);
  return `${lines.join('\n')}\n`;
}

export function treeToml(name: string, dir: string, store: string): string {
  return `\n[tree.${name}]\ndir = ${JSON.stringify(dir)}\nstore = ${JSON.stringify(store)}\n`;
}

export interface SqRun {
  ms: number;
  data: unknown;
  /** /usr/bin/time %M: the largest RSS of node and its children, KiB. */
  rssTreeKb?: number;
  /** node's own peak RSS (getrusage at exit), KiB. */
  rssNodeKb?: number;
}

export const hasTime = existsSync(TIME);

/** The probe squashtree's node loads with --import when RSS is measured. */
export async function writeRssProbe(dir: string): Promise<string> {
  const probe = join(dir, 'rss-probe.mjs');
  await fsp.writeFile(
    probe,
    `import { writeFileSync } from 'node:fs';
process.on('exit', () => {
  const f = process.env.BENCH_NODE_RSS_FILE;
  if (f) writeFileSync(f, String(process.resourceUsage().maxRSS));
});
`,
  );
  return probe;
}

/** Poll VmHWM of a pid (fallback when /usr/bin/time is missing). */
function pollHwm(pid: number): { stop: () => number } {
  let peak = 0;
  const read = (): void => {
    fsp
      .readFile(`/proc/${pid}/status`, 'utf8')
      .then((s) => {
        const m = /VmHWM:\s+(\d+) kB/.exec(s);
        if (m) peak = Math.max(peak, Number(m[1]));
      })
      .catch(() => undefined);
  };
  const timer = setInterval(read, 20);
  read();
  return {
    stop: () => {
      clearInterval(timer);
      return peak;
    },
  };
}

async function readNumber(path: string): Promise<number | undefined> {
  try {
    const text = await fsp.readFile(path, 'utf8');
    const nums = text.split('\n').filter((l) => /^\d+$/.test(l.trim()));
    const last = nums[nums.length - 1];
    return last === undefined ? undefined : Number(last);
  } catch {
    return undefined;
  } finally {
    await fsp.rm(path, { force: true });
  }
}

export class Squashtree {
  constructor(
    readonly config: string,
    readonly stateDir: string,
    readonly probe: string,
    readonly scratch: string,
  ) {}

  private async cli(args: readonly string[], rss: boolean): Promise<SqRun> {
    const sqArgs = ['--config', this.config, '--state-dir', this.stateDir, '--json', ...args];
    let r: RunResult;
    let rssTreeKb: number | undefined;
    let rssNodeKb: number | undefined;
    if (!rss) {
      r = await this.runChecked(process.execPath, [BIN, ...sqArgs]);
    } else {
      const nodeFile = join(this.scratch, 'rss-node');
      const timeFile = join(this.scratch, 'rss-time');
      const env = { ...process.env, BENCH_NODE_RSS_FILE: nodeFile };
      const node = [process.execPath, '--import', this.probe, BIN, ...sqArgs];
      if (hasTime) {
        const [cmd = '', ...rest] = node;
        r = await this.runChecked(TIME, ['-f', '%M', '-o', timeFile, cmd, ...rest], env);
        rssTreeKb = await readNumber(timeFile);
      } else {
        let poll: { stop: () => number } | undefined;
        const [cmd = '', ...rest] = node;
        r = await this.runChecked(cmd, rest, env, (pid) => (poll = pollHwm(pid)));
        rssTreeKb = poll?.stop();
      }
      rssNodeKb = await readNumber(nodeFile);
    }
    let data: unknown;
    try {
      data = JSON.parse(r.stdout);
    } catch {
      throw new BenchError(
        `squashtree ${args.join(' ')} printed no JSON:\n${r.stdout}\n${r.stderr}`,
      );
    }
    return {
      ms: r.ms,
      data,
      ...(rssTreeKb !== undefined ? { rssTreeKb } : {}),
      ...(rssNodeKb !== undefined ? { rssNodeKb } : {}),
    };
  }

  private async runChecked(
    cmd: string,
    args: string[],
    env?: NodeJS.ProcessEnv,
    onSpawn?: (pid: number) => void,
  ): Promise<RunResult> {
    try {
      return await run(cmd, args, { ...(env ? { env } : {}), ...(onSpawn ? { onSpawn } : {}) });
    } catch (e) {
      if (e instanceof BenchError) {
        throw new BenchError(`squashtree failed: ${e.message}`, e.stderr);
      }
      throw e;
    }
  }

  /** The result of the one tree a per-tree command ran on. */
  private static result(run: SqRun): unknown {
    const d = run.data as { trees?: { ok: boolean; result?: unknown; error?: unknown }[] };
    const t = d.trees?.[0];
    if (!t?.ok || t.result === undefined)
      throw new BenchError(`squashtree reported a failure: ${JSON.stringify(d)}`);
    return t.result;
  }

  async init(name: string, dir: string, store: string): Promise<SqRun & { result: InitOut }> {
    const r = await this.cli(['init', name, '--dir', dir, '--store', store], false);
    return { ...r, result: r.data as InitOut };
  }

  async start(): Promise<SqRun & { result: StartOut }> {
    const r = await this.cli(['start'], false);
    return { ...r, result: Squashtree.result(r) as StartOut };
  }

  async stop(): Promise<SqRun & { result: StopOut }> {
    const r = await this.cli(['stop'], false);
    return { ...r, result: Squashtree.result(r) as StopOut };
  }

  /** stop (whose on-stop commits pending changes) and start again, in one process. */
  async restart(): Promise<SqRun & { result: { stop: StopOut; start: StartOut } }> {
    const r = await this.cli(['restart'], false);
    return { ...r, result: Squashtree.result(r) as { stop: StopOut; start: StartOut } };
  }

  async commit(): Promise<SqRun & { result: CommitOut }> {
    const r = await this.cli(['commit'], true);
    return { ...r, result: Squashtree.result(r) as CommitOut };
  }

  async compact(): Promise<SqRun & { result: CompactOut }> {
    const r = await this.cli(['compact'], true);
    return { ...r, result: Squashtree.result(r) as CompactOut };
  }
}

/** squashtree's --json output: the library's own result types, so the two cannot drift apart. */
export type InitOut = InitResult;
export type StartOut = StartResult;
export type CommitOut = CommitResult;
export type StopOut = StopResult;
export type CompactOut = CompactResult;

/** Time `node bin/squashtree.js --version` and a bare `node -e 0`. */
export async function nodeStartup(runs: number): Promise<{ version: number[]; bare: number[] }> {
  const version: number[] = [];
  const bare: number[] = [];
  for (let i = 0; i < runs; i++) {
    version.push((await run(process.execPath, [BIN, '--version'])).ms);
    bare.push((await run(process.execPath, ['-e', '0'])).ms);
  }
  return { version, bare };
}
