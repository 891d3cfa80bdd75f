/**
 * The cost of each commit of one long session: a tree stays mounted and
 * gets a day's sync and a commit, day after day, as a builder that commits
 * and publishes daily does. For each commit: the layer's bytes, what it
 * reports packing, and the wall time of `commit` (spawn to exit), with the
 * ratio of each to the first commit's. Run it against another build with
 * --bin to compare (for example a checkout of main).
 *
 *   node --import tsx bench/session-commits.ts [--bin PATH] [--corpus guru,generated]
 *        [--scale small|gentoo] [--days N] [--corpus-dir DIR] [--json FILE]
 *
 * guru: init from guru-base, then rsync (portage's options) d1, d7, s1 .. s5;
 * generated: generateGentooLike + applySync with a new seed each day. Needs
 * root; everything lives in one temp dir, torn down at the end.
 */
import { existsSync, promises as fsp } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { applySync, PORTAGE_RSYNC, type RepoStats } from '../src/corpus/portage.js';
import { run } from './lib/exec.js';
import { removeWorkDir } from './lib/cleanup.js';
import { SHAPES, generateGentooLike } from './lib/generate.js';
import { DEFAULT_CORPUS_DIR } from './lib/corpus-guru.js';
import { BIN } from './lib/squashtree.js';

interface Args {
  bin: string;
  corpora: string[];
  scale: 'small' | 'gentoo';
  days: number;
  corpusDir: string;
  json?: string;
  /** Write a CPU profile of each commit here (node --cpu-prof). */
  cpuProf?: string;
}

function parseArgs(argv: readonly string[]): Args {
  const a: Args = {
    bin: BIN,
    corpora: ['guru', 'generated'],
    scale: 'small',
    days: 8,
    corpusDir: DEFAULT_CORPUS_DIR,
  };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1] ?? '';
    switch (argv[i]) {
      case '--bin':
        a.bin = resolve(v);
        i++;
        break;
      case '--corpus':
        a.corpora = v.split(',');
        i++;
        break;
      case '--scale':
        a.scale = v === 'gentoo' ? 'gentoo' : 'small';
        i++;
        break;
      case '--days':
        a.days = Number(v);
        i++;
        break;
      case '--corpus-dir':
        a.corpusDir = resolve(v);
        i++;
        break;
      case '--json':
        a.json = resolve(v);
        i++;
        break;
      case '--cpu-prof':
        a.cpuProf = resolve(v);
        i++;
        break;
      default:
        throw new Error(`unknown argument ${argv[i] ?? ''}`);
    }
  }
  return a;
}

interface CommitRow {
  n: number;
  day: string;
  layerBytes: number;
  pendingFiles: number;
  /** Bytes of regular files in the upper (what a commit of the whole upper copies). */
  upperBytes: number;
  /** Bytes the commit copied: what changed (a stacked commit), or the whole upper. */
  copiedBytes: number;
  reportedMs: number;
  wallMs: number;
  /** CPU time (user + system) of the commit and the programs it ran, from /usr/bin/time. */
  cpuMs: number;
  layers: number;
  mode: string;
  load: number;
}

interface Day {
  label: string;
  apply(tree: string): Promise<void>;
}

async function guruDays(work: string, corpusDir: string, days: number): Promise<Day[] | null> {
  const names = ['d1', 'd7', 's1', 's2', 's3', 's4', 's5'].slice(0, days);
  const all = ['base', ...names];
  if (!all.every((n) => existsSync(join(corpusDir, `guru-${n}.tar.xz`)))) return null;
  for (const n of all) {
    await fsp.mkdir(join(work, n));
    await run('tar', ['-xJf', join(corpusDir, `guru-${n}.tar.xz`), '-C', join(work, n)]);
  }
  await run('cp', ['-a', join(work, 'base'), join(work, 'tree')]);
  return names.map((n) => ({
    label: `guru-${n}`,
    apply: async (tree) => {
      await run('rsync', [...PORTAGE_RSYNC, `${join(work, n)}/`, `${tree}/`]);
    },
  }));
}

async function generatedDays(
  work: string,
  scale: 'small' | 'gentoo',
  days: number,
): Promise<Day[]> {
  const tree = join(work, 'tree');
  const stats = await generateGentooLike(tree, SHAPES[scale]);
  // About 1,500 files a day at 200k, as in bench/lib/corpus.ts.
  const perDay = Math.max(5, Math.round((stats.files * (1500 / 200_000)) / 2.4));
  const live: RepoStats = { ...stats.repo, packages: [...stats.repo.packages] };
  return Array.from({ length: days }, (_, i) => ({
    label: `applySync seed ${9000 + i + 1} (${perDay} packages)`,
    apply: async (t) => {
      await applySync(t, live, 9000 + i + 1, perDay);
      live.packages = live.packages.filter((cp) => existsSync(join(t, cp)));
    },
  }));
}

async function session(args: Args, corpus: string): Promise<CommitRow[] | null> {
  const work = await fsp.mkdtemp(join(tmpdir(), 'st-session-bench-'));
  try {
    const days =
      corpus === 'guru'
        ? await guruDays(work, args.corpusDir, args.days)
        : await generatedDays(work, args.scale, args.days);
    if (!days) return null;
    const tree = join(work, 'tree');
    const cfg = join(work, 'c.toml');
    await fsp.writeFile(cfg, '[defaults]\ncompression = "gzip"\ncompact-after = 400\n');
    const sq = (...a: string[]) =>
      run(process.execPath, [args.bin, '--config', cfg, '--state-dir', join(work, 'st'), ...a]);
    await sq('init', 't', '--dir', tree, '--store', join(work, 'store'));
    await sq('start', 't');
    const rows: CommitRow[] = [];
    for (const [i, day] of days.entries()) {
      await day.apply(tree);
      await run('sync', []);
      const load = loadavg()[0] ?? 0;
      const du = await run('find', [
        join(work, 'st', 't', 'upper', 'data'),
        '-type',
        'f',
        '-printf',
        '%s\n',
      ]);
      const upperBytes = du.stdout.split('\n').reduce((n, l) => n + (l ? Number(l) : 0), 0);
      const r = await run('/usr/bin/time', [
        '-f',
        'cpu %U %S',
        process.execPath,
        ...(args.cpuProf
          ? [
              '--cpu-prof',
              `--cpu-prof-dir=${args.cpuProf}`,
              `--cpu-prof-name=commit-${i + 1}.cpuprofile`,
            ]
          : []),
        args.bin,
        '--config',
        cfg,
        '--state-dir',
        join(work, 'st'),
        '--json',
        'commit',
        't',
      ]);
      const cpu = /cpu ([\d.]+) ([\d.]+)\s*$/.exec(r.stderr);
      const res = (
        JSON.parse(r.stdout) as {
          trees: {
            result: {
              layerBytes: number;
              pendingFiles: number;
              pendingBytes: number;
              durationMs: number;
              layers: number;
              mode?: string;
              packMethod?: string;
              imageKind?: string;
            };
          }[];
        }
      ).trees[0]?.result;
      if (!res) throw new Error('commit --json printed no result');
      rows.push({
        n: i + 1,
        day: day.label,
        layerBytes: res.layerBytes,
        pendingFiles: res.pendingFiles,
        upperBytes,
        copiedBytes: res.mode === 'stacked' ? res.pendingBytes : upperBytes,
        reportedMs: Math.round(res.durationMs),
        wallMs: Math.round(r.ms),
        cpuMs: cpu ? Math.round((Number(cpu[1]) + Number(cpu[2])) * 1000) : -1,
        layers: res.layers,
        mode: `${res.mode ?? '(whole upper)'} ${res.imageKind ?? 'layer'} by ${res.packMethod ?? 'mksquashfs'}`,
        load: Math.round(load * 10) / 10,
      });
    }
    await sq('stop', 't', '--no-compact');
    return rows;
  } finally {
    const left = await removeWorkDir(work);
    if (left.mounts.length + left.loops.length > 0)
      console.error(`left behind: ${JSON.stringify(left)}`);
  }
}

function table(rows: readonly CommitRow[]): string {
  const first = rows[0];
  const ratio = (a: number, b: number | undefined): string => (b ? (a / b).toFixed(2) : '-');
  const lines = [
    '| commit | day | pending | upper bytes | copied bytes | layer bytes | vs 1st | cpu ms | vs 1st | wall ms | images | mode | load |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.n} | ${r.day} | ${r.pendingFiles} | ${r.upperBytes} | ${r.copiedBytes} | ${r.layerBytes} | ${ratio(r.layerBytes, first?.layerBytes)} | ${r.cpuMs} | ${ratio(r.cpuMs, first?.cpuMs)} | ${r.wallMs} | ${r.layers} | ${r.mode} | ${r.load} |`,
    );
  }
  return lines.join('\n');
}

const args = parseArgs(process.argv.slice(2));
const out: Record<string, CommitRow[] | string> = {};
for (const c of args.corpora) {
  const rows = await session(args, c);
  if (!rows) {
    const why = `skipped: no guru-*.tar.xz in ${args.corpusDir}`;
    out[c] = why;
    console.log(`${c}: ${why}`);
    continue;
  }
  out[c] = rows;
  console.log(`\n${c} (${args.bin})\n${table(rows)}`);
}
if (args.json) await fsp.writeFile(args.json, `${JSON.stringify(out, null, 2)}\n`);
