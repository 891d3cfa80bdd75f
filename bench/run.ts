/**
 * The squashtree benchmark. Run as root from the repository:
 *
 *   node --import tsx bench/run.ts [--scale small|gentoo] [--runs N] [--baseline REV] ...
 *
 * It builds the CLI if dist/ is stale, takes its corpora from the cache
 * (preparing them the first time), makes every config, state dir and store
 * below one temp dir, drives bin/squashtree.js as a user would, prints the
 * targets, writes bench/results/latest.{json,md}, and in any case unmounts
 * and detaches everything it made and removes the temp dir.
 */
import { promises as fsp, readFileSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { USAGE, parseBenchArgs, type BenchArgs, type CorpusName } from './lib/args.js';
import { baselineBuild } from './lib/baseline.js';
import { cacheRoot } from './lib/cache.js';
import { removeWorkDir, teardown } from './lib/cleanup.js';
import type { Corpus, SkippedCorpus } from './lib/corpus.js';
import { generatedCorpus } from './lib/corpus-generated.js';
import { guruCorpus } from './lib/corpus-guru.js';
import { linuxCorpus } from './lib/corpus-linux.js';
import { BenchError, abortAll, abortReason, canDropCaches, run } from './lib/exec.js';
import { describeMachine } from './lib/machine.js';
import { plan } from './lib/plan.js';
import { haveRegistry, startRegistry, type Registry } from './lib/registry.js';
import {
  markdownReport,
  terminalReport,
  type BenchResult,
  type CorpusInfo,
  type Detail,
} from './lib/report.js';
import { runDaily } from './lib/scenario-daily.js';
import { runMost } from './lib/scenario-most.js';
import { runStack, type Ctx } from './lib/scenario-stack.js';
import { BIN, ROOT, nodeStartup, writeRssProbe, type Build } from './lib/squashtree.js';
import { summarize } from './lib/stats.js';
import { BenchTree } from './lib/tree.js';
import type { Figure } from './lib/figures.js';

const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

/** The file bin/squashtree.js loads (a bundle, or dist/cli/main.js). */
function builtEntry(): string {
  const m = /from '\.\.\/(dist\/[^']+)'/.exec(readFileSync(BIN, 'utf8'));
  return join(ROOT, m?.[1] ?? 'dist/cli/main.js');
}

/** Build the CLI when dist/ is missing or older than any src file. */
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
  log('bench: dist/ is stale: npm run build');
  await run('npm', ['run', 'build'], { cwd: ROOT });
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

async function prepare(
  name: CorpusName,
  args: BenchArgs,
  cache: string,
): Promise<Corpus | SkippedCorpus> {
  if (name === 'generated') return generatedCorpus(cache, args.scale);
  if (name === 'guru') return guruCorpus(cache, args.corpusDir);
  return linuxCorpus(cache, args.scale);
}

interface Shared {
  args: BenchArgs;
  ctx: Ctx;
  builds: Build[];
  probe: string;
  registry: () => Promise<Registry | undefined>;
  figures: Figure[];
  details: Detail[];
  errors: { where: string; error: string }[];
}

async function runCorpus(corpus: Corpus, name: CorpusName, cdir: string, s: Shared): Promise<void> {
  for (const [j, job] of plan(name, s.args.compressors, s.args.only, s.args.scale).entries()) {
    for (const [b, build] of s.builds.entries()) {
      const dir = join(cdir, `j${j}-${job.spec.compression}-b${b}`);
      const where = `${corpus.name} / ${job.spec.label} / ${build.label}`;
      const detail: Detail = {
        corpus: corpus.name,
        compressor: job.spec.label,
        build: build.label,
      };
      s.details.push(detail);
      try {
        log(`bench: ${where}: init`);
        const env = { build, spec: job.spec, probe: s.probe };
        const { tree, init } = await BenchTree.init(join(dir, 'init'), env, corpus.baseDir);
        detail.initMs = init.wallMs;
        if (job.stack) {
          detail.stack = await runStack(corpus, tree, join(dir, 'stack'), s.ctx, job.stack);
          s.figures.push(...detail.stack.figures);
        }
        if (job.most) {
          detail.most = await runMost(corpus, tree, join(dir, 'most'), s.ctx);
          s.figures.push(...detail.most.figures);
        }
        if (job.daily) {
          const registry = job.daily.fleet ? await s.registry() : undefined;
          const checksum = s.args.scale === 'small';
          detail.daily = await runDaily(
            corpus,
            tree,
            join(dir, 'daily'),
            { ...s.ctx, checksum },
            registry,
          );
          s.figures.push(...detail.daily.figures);
        }
      } catch (e) {
        if (abortReason() !== undefined) throw e;
        const msg = e instanceof Error ? e.message : String(e);
        log(`bench: ${where} FAILED: ${msg}`);
        s.errors.push({ where, error: msg });
      } finally {
        // Whatever happened, nothing of this job stays mounted, and its stores go.
        const left = await removeWorkDir(dir);
        if (left.mounts.length > 0) log(`bench: still mounted: ${left.mounts.join(', ')}`);
      }
    }
  }
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
  const t0 = performance.now();
  await ensureBuilt();
  const cache = cacheRoot(args.cacheDir);
  const builds: Build[] = [{ label: 'current', bin: BIN }];
  if (args.baseline !== undefined) {
    log(`bench: building baseline ${args.baseline} into ${cache}/builds`);
    builds.push(await baselineBuild(cache, args.baseline));
  }
  const machine = await describeMachine();
  const outDir = args.out ?? join(ROOT, 'bench', 'results');
  const work = await fsp.mkdtemp(join(tmpdir(), 'squashtree-bench-'));
  log(`bench: working in ${work}, cache ${cache}`);
  const onSignal = (sig: NodeJS.Signals): void => {
    log(`bench: ${sig}: stopping and cleaning up`);
    abortAll(`interrupted by ${sig}`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let registry: Registry | undefined;
  let status = 0;
  let result: BenchResult | undefined;
  const corpora: CorpusInfo[] = [];
  const shared: Shared = {
    args,
    ctx: { runs: args.runs, cold: false, log },
    builds,
    probe: '',
    figures: [],
    details: [],
    errors: [],
    registry: async () => {
      if (registry) return registry;
      if (!haveRegistry()) {
        log(
          'bench: docker-registry is not installed (apt-get install docker-registry): no fleet figures',
        );
        return undefined;
      }
      registry = await startRegistry(join(work, 'registry'));
      return registry;
    },
  };
  try {
    shared.probe = await writeRssProbe(work);
    shared.ctx.cold = await canDropCaches();
    if (!shared.ctx.cold) log('bench: cannot drop caches; cold figures are left out');
    const startup: BenchResult['nodeStartup'] = {};
    for (const b of builds) {
      const s = await nodeStartup(b.bin, 5);
      startup[b.label] = { version: summarize(s.version), bare: summarize(s.bare) };
    }
    for (const name of args.corpora) {
      log(`bench: preparing corpus ${name}`);
      const corpus = await prepare(name, args, cache);
      if ('skipped' in corpus) {
        log(`bench: ${corpus.name} skipped: ${corpus.skipped}`);
        corpora.push({ name: corpus.name, skipped: corpus.skipped });
        continue;
      }
      corpora.push({
        name: corpus.name,
        description: corpus.description,
        files: corpus.files,
        bytes: corpus.bytes,
        prepareMs: corpus.prepareMs,
        cacheHit: corpus.cacheHit,
      });
      log(
        `bench: ${corpus.name}: ${corpus.files} files, ${corpus.bytes} bytes (${Math.round(corpus.prepareMs)} ms${corpus.cacheHit ? ', cached' : ''})`,
      );
      const cdir = join(work, name);
      await fsp.mkdir(cdir);
      await runCorpus(corpus, name, cdir, shared);
      const left = await removeWorkDir(cdir);
      if (left.mounts.length > 0) throw new BenchError(`still mounted: ${left.mounts.join(', ')}`);
    }
    if (shared.errors.length > 0) status = 1;
    result = {
      format: 'squashtree-bench/2',
      machine,
      settings: {
        command: [
          'node --import tsx bench/run.ts',
          ...argv.map((a) => (/\s/.test(a) ? `'${a}'` : a)),
        ].join(' '),
        scale: args.scale,
        compressors: args.compressors,
        runs: args.runs,
        corpora: args.corpora,
        only: [...args.only],
        builds,
        cache,
        coldCaches: shared.ctx.cold,
      },
      nodeStartup: startup,
      corpora,
      figures: shared.figures,
      details: shared.details,
      errors: shared.errors,
      loadAtEnd: NaN,
      wallMs: 0,
      leftovers: { mounts: [], loops: [] },
    };
  } catch (e) {
    status = abortReason() !== undefined ? 130 : 1;
    log(
      `bench: ${e instanceof Error ? (e instanceof BenchError ? e.message : (e.stack ?? e.message)) : String(e)}`,
    );
  } finally {
    await registry?.stop();
    const leftovers = await teardown(work);
    if (leftovers.mounts.length === 0) await fsp.rm(work, { recursive: true, force: true });
    else log(`bench: could not unmount ${leftovers.mounts.join(', ')}; left ${work} in place`);
    if (result) result.leftovers = leftovers;
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  if (!result) return status || 1;
  result.wallMs = performance.now() - t0;
  result.loadAtEnd = loadavg()[0] ?? NaN;
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
