/** Command-line options of bench/run.ts. */
import { parseArgs } from 'node:util';
import { BenchError } from './exec.js';

export const USAGE = `usage: node --import tsx bench/run.ts [options]

  --scale small|gentoo   corpus sizes (default small: a ~6.7k-file generated tree, GURU,
                         a 4.7k-file subset of Linux; gentoo: ~203k generated files,
                         GURU, the whole Linux 6.1 tree of ~78k files)
  --compressors LIST     comma-separated, each a compressor and optional mksquashfs
                         args ("gzip,xz -b 1M -Xdict-size 100%"). The first runs every
                         figure; gzip and xz the compaction figure; each one the
                         size figure (default small: gzip,xz,lz4,zstd; gentoo: gzip,xz;
                         GURU's size figure takes all four at gentoo scale)
  --runs N               rounds of each paired timing (default 3)
  --corpus LIST          generated,guru,linux (default all; guru is skipped, saying so,
                         without ../shared/corpus, linux without its Debian packages)
  --only LIST            figures to run: commit,compact,reads,most,size,fleet (default all)
  --baseline REV         also run every figure with that git revision of squashtree,
                         built into the cache, so before and after come from one run
  --corpus-dir DIR       where guru-*.tar.xz are (default ../shared/corpus)
  --cache-dir DIR        prepared corpora and builds (default $SQUASHTREE_BENCH_CACHE,
                         else /var/cache/squashtree-bench)
  --out DIR              where latest.json and latest.md go (default bench/results)
  -h, --help`;

export const PARTS = ['commit', 'compact', 'reads', 'most', 'size', 'fleet'] as const;
export type Part = (typeof PARTS)[number];
export const CORPORA = ['generated', 'guru', 'linux'] as const;
export type CorpusName = (typeof CORPORA)[number];

export interface BenchArgs {
  scale: 'small' | 'gentoo';
  compressors: string[];
  runs: number;
  corpora: CorpusName[];
  only: Set<Part>;
  baseline: string | undefined;
  out: string | undefined;
  corpusDir: string | undefined;
  cacheDir: string | undefined;
  help: boolean;
}

const DEFAULT_COMPRESSORS = { small: ['gzip', 'xz', 'lz4', 'zstd'], gentoo: ['gzip', 'xz'] };

function list<T extends string>(text: string, allowed: readonly T[], option: string): T[] {
  const items = text
    .split(',')
    .map((c) => c.trim())
    .filter(Boolean);
  for (const c of items)
    if (!(allowed as readonly string[]).includes(c))
      throw new BenchError(`${option} takes ${allowed.join(', ')}, not ${c}`);
  if (items.length === 0) throw new BenchError(`${option} is empty`);
  return items as T[];
}

export function parseBenchArgs(argv: string[]): BenchArgs {
  const { values } = parseArgs({
    args: argv,
    options: {
      scale: { type: 'string', default: 'small' },
      compressors: { type: 'string' },
      runs: { type: 'string', default: '3' },
      corpus: { type: 'string', default: CORPORA.join(',') },
      only: { type: 'string', default: PARTS.join(',') },
      baseline: { type: 'string' },
      out: { type: 'string' },
      'corpus-dir': { type: 'string' },
      'cache-dir': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  const scale = values.scale;
  if (scale !== 'small' && scale !== 'gentoo')
    throw new BenchError(`--scale takes small or gentoo, not ${scale}`);
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1 || runs > 16)
    throw new BenchError(`--runs takes a whole number from 1 to 16, not ${values.runs}`);
  const compressors = (values.compressors?.split(',') ?? DEFAULT_COMPRESSORS[scale])
    .map((c) => c.trim())
    .filter(Boolean);
  if (compressors.length === 0) throw new BenchError('--compressors is empty');
  return {
    scale,
    compressors,
    runs,
    corpora: list(values.corpus, CORPORA, '--corpus'),
    only: new Set(list(values.only, PARTS, '--only')),
    baseline: values.baseline,
    out: values.out,
    corpusDir: values['corpus-dir'],
    cacheDir: values['cache-dir'],
    help: values.help,
  };
}
