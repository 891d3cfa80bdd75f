/** Command-line options of bench/run.ts. */
import { parseArgs } from 'node:util';
import { BenchError } from './exec.js';

export const USAGE = `usage: node --import tsx bench/run.ts [options]

  --scale small|gentoo   size of the generated corpus (default small: ~8k files;
                         gentoo: ~200k files, 170 categories, 19k packages)
  --compressors LIST     comma-separated, each a compressor and optional mksquashfs
                         args, e.g. "gzip,zstd,xz -b 1M -Xdict-size 100%"
                         (default small: gzip,zstd; gentoo: gzip,xz,zstd,lz4,xz -b 1M -Xdict-size 100%)
  --runs N               repetitions of each measurement (default 3)
  --corpus LIST          generated,guru (default both; guru is skipped when
                         ../shared/corpus has no tarballs)
  --corpus-dir DIR       where guru-{base,d1,d7}.tar.xz are (default ../shared/corpus)
  --out DIR              where latest.json and latest.md go (default bench/results)
  -h, --help`;

export interface BenchArgs {
  scale: 'small' | 'gentoo';
  compressors: string[];
  runs: number;
  corpora: ('generated' | 'guru')[];
  out: string | undefined;
  corpusDir: string | undefined;
  help: boolean;
}

const DEFAULT_COMPRESSORS = {
  small: ['gzip', 'zstd'],
  gentoo: ['gzip', 'xz', 'zstd', 'lz4', 'xz -b 1M -Xdict-size 100%'],
};

export function parseBenchArgs(argv: string[]): BenchArgs {
  const { values } = parseArgs({
    args: argv,
    options: {
      scale: { type: 'string', default: 'small' },
      compressors: { type: 'string' },
      runs: { type: 'string', default: '3' },
      corpus: { type: 'string', default: 'generated,guru' },
      out: { type: 'string' },
      'corpus-dir': { type: 'string' },
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
  const corpora = values.corpus.split(',').map((c) => c.trim());
  for (const c of corpora)
    if (c !== 'generated' && c !== 'guru')
      throw new BenchError(`--corpus takes generated and/or guru, not ${c}`);
  return {
    scale,
    compressors,
    runs,
    corpora: corpora as ('generated' | 'guru')[],
    out: values.out,
    corpusDir: values['corpus-dir'],
    help: values.help,
  };
}
