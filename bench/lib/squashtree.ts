/**
 * Driving squashtree the way a user does: `BIN --config CFG --state-dir
 * STATE --json ...`, the launcher itself (so the environment its first line
 * sets applies), one process per command, timed from spawn to exit with the
 * CPU time of its process tree. Commit and compact also report peak RSS:
 * /usr/bin/time's %M (the largest of node and the programs it ran, such as
 * mksquashfs) and node's own peak from a tiny probe NODE_OPTIONS imports.
 * The output is read defensively (fields.ts): the same harness drives older
 * and newer builds, whose --json may differ.
 */
import { existsSync, promises as fsp } from 'node:fs';
import { join, resolve } from 'node:path';
import { COMPRESSORS, type Compressor } from '../../src/config/schema.js';
import { BenchError, run, type RunResult } from './exec.js';
import { bool, num, obj, str } from './fields.js';
import type { Timed } from './pairs.js';

export const ROOT = resolve(import.meta.dirname, '../..');
export const BIN = join(ROOT, 'bin', 'squashtree.js');
const TIME = '/usr/bin/time';
export const hasTime = existsSync(TIME);

/** A build of squashtree: this checkout, or a baseline revision built elsewhere. */
export interface Build {
  label: string;
  bin: string;
}

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
  if (!(COMPRESSORS as readonly string[]).includes(name))
    throw new BenchError(`unknown compressor "${name}" (use one of ${COMPRESSORS.join(', ')})`);
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

/**
 * [defaults] for a benchmark tree. compactAfter undefined leaves the
 * product's default policy; a number pins it (400: nothing compacts).
 */
export function defaultsToml(spec: CompressorSpec, compactAfter?: number): string {
  const lines = ['# written by bench/run.ts for one benchmark run', '[defaults]'];
  lines.push(`compression = "${spec.compression}"`);
  if (compactAfter !== undefined) lines.push(`compact-after = ${compactAfter}`);
  if (spec.blockSize !== undefined) lines.push(`block-size = ${JSON.stringify(spec.blockSize)}`);
  if (spec.level !== undefined) lines.push(`compression-level = ${spec.level}`);
  if (spec.extra.length > 0) lines.push(`mksquashfs-args = ${JSON.stringify(spec.extra)}`);
  return `${lines.join('\n')}\n`;
}

export function treeToml(name: string, dir: string, store: string): string {
  return `\n[tree.${name}]\ndir = ${JSON.stringify(dir)}\nstore = ${JSON.stringify(store)}\n`;
}

/** A finished command: its --json data (the one tree's result where it reports per tree). */
export interface SqRun extends Timed {
  data: Record<string, unknown>;
}

/** The probe squashtree's node imports (NODE_OPTIONS) when RSS is measured. */
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

async function readNumber(path: string): Promise<number | undefined> {
  try {
    const nums = (await fsp.readFile(path, 'utf8'))
      .split('\n')
      .filter((l) => /^\d+$/.test(l.trim()));
    const last = nums[nums.length - 1];
    return last === undefined ? undefined : Number(last);
  } catch {
    return undefined;
  } finally {
    await fsp.rm(path, { force: true });
  }
}

/** A per-tree command's one result, or the data itself for commands that report one thing. */
function unwrap(data: unknown, what: string): Record<string, unknown> {
  const d = obj(data);
  const trees = d.trees;
  if (!Array.isArray(trees)) return d;
  const t = obj(trees[0]);
  if (t.ok !== true || typeof t.result !== 'object' || t.result === null)
    throw new BenchError(
      `squashtree ${what} reported a failure: ${JSON.stringify(d).slice(0, 2000)}`,
    );
  return obj(t.result);
}

export class Squashtree {
  constructor(
    readonly build: Build,
    readonly config: string,
    readonly stateDir: string,
    readonly probe: string,
    readonly scratch: string,
  ) {}

  async cli(
    args: readonly string[],
    o: { rss?: boolean; env?: NodeJS.ProcessEnv } = {},
  ): Promise<SqRun> {
    const sqArgs = ['--config', this.config, '--state-dir', this.stateDir, '--json', ...args];
    const what = args.join(' ');
    let r: RunResult;
    const info: Record<string, number> = {};
    try {
      if (!o.rss || !hasTime) {
        r = await run(this.build.bin, sqArgs, o.env ? { env: o.env } : {});
      } else {
        const nodeFile = join(this.scratch, 'rss-node');
        const timeFile = join(this.scratch, 'rss-time');
        const env = {
          ...(o.env ?? process.env),
          BENCH_NODE_RSS_FILE: nodeFile,
          NODE_OPTIONS: `--import=${this.probe}`,
        };
        const cmd = [this.build.bin, ...sqArgs];
        r = await run(TIME, ['-f', '%M', '-o', timeFile, ...cmd], { env });
        const tree = await readNumber(timeFile);
        const node = await readNumber(nodeFile);
        if (tree !== undefined) info.rssTreeKb = tree;
        if (node !== undefined) info.rssNodeKb = node;
      }
    } catch (e) {
      if (e instanceof BenchError)
        throw new BenchError(`squashtree ${what} failed: ${e.message}`, e.stderr);
      throw e;
    }
    let data: unknown;
    try {
      data = JSON.parse(r.stdout);
    } catch {
      throw new BenchError(`squashtree ${what} printed no JSON:\n${r.stdout}\n${r.stderr}`);
    }
    return { wallMs: r.ms, cpuMs: r.cpuMs, info, data: unwrap(data, what) };
  }

  init(name: string, dir: string, store: string): Promise<SqRun> {
    return this.cli(['init', name, '--dir', dir, '--store', store]);
  }

  /** Start; returns the run and the number of images mounted. */
  async start(name?: string): Promise<SqRun & { images: number }> {
    const r = await this.cli(['start', ...(name ? [name] : [])]);
    return { ...r, images: num(r.data, 'layers') };
  }

  stop(name?: string): Promise<SqRun> {
    return this.cli(['stop', ...(name ? [name] : [])]);
  }

  restart(name?: string): Promise<SqRun> {
    return this.cli(['restart', ...(name ? [name] : [])]);
  }

  /** Commit; fails when nothing was committed. */
  async commit(name?: string): Promise<SqRun> {
    const r = await this.cli(['commit', ...(name ? [name] : [])], { rss: true });
    if (!bool(r.data, 'committed'))
      throw new BenchError(`commit committed nothing: ${str(r.data, 'reason') ?? ''}`);
    return r;
  }

  /** Compact; fails when nothing was compacted. */
  async compact(name?: string): Promise<SqRun> {
    const r = await this.cli(['compact', ...(name ? [name] : [])], { rss: true });
    if (!bool(r.data, 'compacted'))
      throw new BenchError(`compact did nothing: ${str(r.data, 'reason') ?? ''}`);
    return r;
  }

  publish(name: string, ref: string): Promise<SqRun> {
    return this.cli(['publish', name, ref, '--plain-http']);
  }

  pull(name: string, ref: string, restart: boolean): Promise<SqRun> {
    return this.cli(['pull', name, ref, '--plain-http', ...(restart ? ['--restart'] : [])]);
  }
}

/** Time `BIN --version` (the launcher, as a user runs it) and a bare `node -e 0`. */
export async function nodeStartup(
  bin: string,
  runs: number,
): Promise<{ version: number[]; bare: number[] }> {
  const version: number[] = [];
  const bare: number[] = [];
  for (let i = 0; i < runs; i++) {
    version.push((await run(bin, ['--version'])).ms);
    bare.push((await run(process.execPath, ['-e', '0'])).ms);
  }
  return { version, bare };
}
