/**
 * The squashtree benchmark. Run as root from the repository:
 *
 *   node --import tsx bench/run.ts [--scale small|gentoo] [--compressors gzip,zstd,...] [--runs N]
 *
 * It builds the CLI if dist/ is stale, makes every corpus, config, state dir
 * and store below one temp dir, drives bin/squashtree.js as a user would,
 * prints the tables, writes bench/results/latest.{json,md}, and in any case
 * unmounts and detaches everything it made and removes the temp dir.
 */
import { promises as fsp, readFileSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { USAGE, parseBenchArgs } from './lib/args.js';
import { removeWorkDir, teardown } from './lib/cleanup.js';
import { generatedCorpus, guruCorpus, type Corpus } from './lib/corpus.js';
import { BenchError, abortAll, abortReason, canDropCaches, run } from './lib/exec.js';
import { describeMachine } from './lib/machine.js';
import { measureReads } from './lib/reads.js';
import {
  evaluate,
  markdownReport,
  terminalReport,
  type BenchResult,
  type CorpusResult,
} from './lib/report.js';
import { DEFAULT_DEPTH, MAX_LAYERS, READ_DEPTHS, STACK_TARGET, runCombo } from './lib/scenario.js';
import { BUILTIN_DEFAULTS } from '../src/config/schema.js';
import {
  BIN,
  ROOT,
  hasTime,
  nodeStartup,
  parseCompressor,
  writeRssProbe,
} from './lib/squashtree.js';
import { summarize } from './lib/stats.js';

const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

/** The file bin/squashtree.js loads (a bundle, or dist/cli/main.js). */
function builtEntry(): string {
  const launcher = readFileSync(BIN, 'utf8');
  const m = /from '\.\.\/(dist\/[^']+)'/.exec(launcher);
  return join(ROOT, m?.[1] ?? 'dist/cli/main.js');
}

/**
 * Build the CLI when dist/ is missing or older than any src file: with the
 * package's build script where there is one (tsc, and the bundle the
 * launcher loads), else with tsc alone.
 */
async function ensureBuilt(): Promise<void> {
  let built: number;
  try {
    built = statSync(builtEntry()).mtimeMs;
  } catch {
    built = -1;
  }
  const newer = async (dir: string): Promise<boolean> => {
    for (const e of await fsp.readdir(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory() ? await newer(p) : statSync(p).mtimeMs > built) return true;
    }
    return false;
  };
  if (built >= 0 && !(await newer(join(ROOT, 'src')))) return;
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    scripts?: Record<string, string>;
  };
  if (pkg.scripts?.build) {
    log('bench: dist/ is stale: npm run build');
    await run('npm', ['run', 'build'], { cwd: ROOT });
  } else {
    log('bench: dist/ is stale: npx tsc -p tsconfig.build.json');
    await run('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: ROOT });
  }
}

/** Write a result file the way the repository's prettier would, so format:check stays clean. */
async function writeFormatted(path: string, text: string): Promise<void> {
  let out = text;
  try {
    const prettier = await import('prettier');
    const options = (await prettier.resolveConfig(path)) ?? {};
    out = await prettier.format(text, { ...options, filepath: path });
  } catch {
    // prettier is a dev dependency; without it the file is written as it is
  }
  await fsp.writeFile(path, out);
}

async function main(argv: string[]): Promise<number> {
  const args = parseBenchArgs(argv);
  if (args.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (process.geteuid?.() !== 0) {
    process.stderr.write('bench: needs root (it mounts SquashFS images and overlays)\n');
    return 1;
  }
  const specs = args.compressors.map(parseCompressor);
  const t0 = performance.now();
  await ensureBuilt();
  const machine = await describeMachine();
  const outDir = args.out ?? join(ROOT, 'bench', 'results');
  const work = await fsp.mkdtemp(join(tmpdir(), 'squashtree-bench-'));
  log(`bench: working in ${work}`);
  const onSignal = (sig: NodeJS.Signals): void => {
    log(`bench: ${sig}: stopping and cleaning up`);
    abortAll(`interrupted by ${sig}`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const corpora: CorpusResult[] = [];
  let status = 0;
  let leftovers = { mounts: [] as string[], loops: [] as string[] };
  let result: BenchResult | undefined;
  try {
    const probe = await writeRssProbe(work);
    const cold = await canDropCaches();
    if (!cold) log('bench: cannot drop caches; cold figures are left out');
    const startup = await nodeStartup(Math.max(5, args.runs));
    for (const which of args.corpora) {
      const cdir = join(work, which);
      await fsp.mkdir(cdir);
      log(`bench: preparing corpus ${which}`);
      const prepared =
        which === 'generated'
          ? await generatedCorpus(cdir, args.scale)
          : await guruCorpus(cdir, args.corpusDir);
      if ('skipped' in prepared) {
        log(`bench: ${prepared.name} skipped: ${prepared.skipped}`);
        corpora.push({ name: prepared.name, skipped: prepared.skipped, combos: [], errors: [] });
        continue;
      }
      const corpus: Corpus = prepared;
      log(
        `bench: ${corpus.name}: ${corpus.files} files, ${corpus.bytes} bytes (${Math.round(corpus.prepareMs)} ms)`,
      );
      const res: CorpusResult = {
        name: corpus.name,
        description: corpus.description,
        files: corpus.files,
        bytes: corpus.bytes,
        prepareMs: corpus.prepareMs,
        combos: [],
        errors: [],
      };
      corpora.push(res);
      const plainDir = join(cdir, 'plain');
      for (const [i, spec] of specs.entries()) {
        const needPlain = res.plain === undefined;
        if (needPlain) await fsp.mkdir(plainDir, { recursive: true });
        try {
          res.combos.push(
            await runCombo(corpus, spec, i, {
              runs: args.runs,
              cold,
              work: cdir,
              probe,
              log,
              ...(needPlain ? { plainDir } : {}),
            }),
          );
          if (needPlain) {
            log(`  [${corpus.name}] reads of the plain directory`);
            res.plain = await measureReads(plainDir, args.runs, cold);
          }
        } catch (e) {
          if (abortReason() !== undefined) throw e;
          status = 1;
          const msg = e instanceof Error ? e.message : String(e);
          log(`bench: ${corpus.name} / ${spec.label} FAILED: ${msg}`);
          res.errors.push({ compressor: spec.label, error: msg });
          await fsp.rm(plainDir, { recursive: true, force: true });
        } finally {
          // Whatever happened, nothing of this run stays mounted, and its images go.
          const left = await removeWorkDir(join(cdir, `c${i}-${spec.compression}`));
          if (left.mounts.length > 0) log(`bench: still mounted: ${left.mounts.join(', ')}`);
        }
      }
      // The corpus (base, snapshots, plain copy) goes too; never rm through a mount.
      const left = await removeWorkDir(cdir);
      if (left.mounts.length > 0) throw new BenchError(`still mounted: ${left.mounts.join(', ')}`);
    }
    result = {
      format: 'squashtree-bench/1',
      loadAtEnd: NaN,
      machine,
      settings: {
        command: [
          'node --import tsx bench/run.ts',
          ...argv.map((a) => (/\s/.test(a) ? `'${a}'` : a)),
        ].join(' '),
        scale: args.scale,
        compressors: specs.map((s) => s.label),
        runs: args.runs,
        corpora: args.corpora,
        coldCaches: cold,
        readDepths: READ_DEPTHS.filter((d) => d <= MAX_LAYERS),
        stackTarget: STACK_TARGET,
        defaultDepth: DEFAULT_DEPTH,
        compactAfter: BUILTIN_DEFAULTS.compactAfter,
        rssSource: hasTime
          ? '/usr/bin/time -f %M around the squashtree process (the largest of node and the programs it ran); node alone from getrusage at its exit'
          : '/proc/PID/status VmHWM polled every 20 ms (node only)',
      },
      nodeStartup: { version: summarize(startup.version), bare: summarize(startup.bare) },
      corpora,
      checks: evaluate(corpora, STACK_TARGET, DEFAULT_DEPTH),
      wallMs: 0,
      leftovers,
    };
  } catch (e) {
    status = abortReason() !== undefined ? 130 : 1;
    log(
      `bench: ${e instanceof Error ? (e instanceof BenchError ? e.message : (e.stack ?? e.message)) : String(e)}`,
    );
  } finally {
    leftovers = await teardown(work);
    if (leftovers.mounts.length === 0) await fsp.rm(work, { recursive: true, force: true });
    else log(`bench: could not unmount ${leftovers.mounts.join(', ')}; left ${work} in place`);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  if (!result) return status || 1;
  result.wallMs = performance.now() - t0;
  result.loadAtEnd = loadavg()[0] ?? NaN;
  result.leftovers = leftovers;
  await fsp.mkdir(outDir, { recursive: true });
  await writeFormatted(join(outDir, 'latest.json'), `${JSON.stringify(result, null, 2)}\n`);
  await writeFormatted(join(outDir, 'latest.md'), markdownReport(result));
  process.stdout.write(`${terminalReport(result)}\n`);
  log(`bench: wrote ${join(outDir, 'latest.json')} and ${join(outDir, 'latest.md')}`);
  return status;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = e instanceof BenchError ? 2 : 1;
  },
);
