/**
 * Which scenarios run on which corpus with which compressor. The first
 * compressor is the primary one: it runs every figure its corpus has.
 * gzip and xz also run the compaction figure (the issue sets targets for
 * both) on the generated tree. Every compressor runs the size figure: on
 * the generated tree at small scale; at gentoo scale on GURU, whose full
 * packs take seconds where the 203k-file tree's take minutes with xz and
 * zstd (the generated tree's size figure then comes from the primary's
 * fleet builder). Linux runs the patch commit and the reads.
 */
import type { CorpusName, Part } from './args.js';
import type { StackOptions } from './scenario-stack.js';
import { parseCompressor, type CompressorSpec } from './squashtree.js';

export interface Job {
  spec: CompressorSpec;
  stack?: StackOptions;
  most?: boolean;
  /** Eight days of the default policy; fleet: with publishing builders and followers. */
  daily?: { fleet: boolean };
}

const ALL = ['gzip', 'xz', 'lz4', 'zstd'];

export function plan(
  corpus: CorpusName,
  compressors: readonly string[],
  only: ReadonlySet<Part>,
  scale: 'small' | 'gentoo',
): Job[] {
  const specs = compressors.map(parseCompressor);
  const primary = specs[0];
  if (!primary) return [];
  const jobs: Job[] = [];
  const has = (p: Part): boolean => only.has(p);
  if (corpus === 'linux') {
    if (has('commit') || has('reads'))
      jobs.push({ spec: primary, stack: { compact: false, reads: has('reads') } });
    return jobs;
  }
  if (corpus === 'guru') {
    const job: Job = { spec: primary };
    if (has('most')) job.most = true;
    if (has('size') || has('fleet')) job.daily = { fleet: has('fleet') };
    if (job.most || job.daily) jobs.push(job);
    if (scale === 'gentoo' && has('size')) {
      const more = [
        ...specs.slice(1),
        ...ALL.filter((c) => !specs.some((s) => s.label === c)).map(parseCompressor),
      ];
      for (const spec of more.filter((s) => s.label !== primary.label))
        jobs.push({ spec, daily: { fleet: false } });
    }
    return jobs;
  }
  for (const [i, spec] of specs.entries()) {
    const job: Job = { spec };
    const compact = has('compact') && (spec.compression === 'gzip' || spec.compression === 'xz');
    if (i === 0 && (has('commit') || compact || has('reads')))
      job.stack = { compact, reads: has('reads') };
    else if (compact) job.stack = { compact, reads: false };
    const size = has('size') && (i === 0 || scale === 'small');
    if (size || (i === 0 && has('fleet'))) job.daily = { fleet: i === 0 && has('fleet') };
    if (job.stack || job.daily) jobs.push(job);
  }
  return jobs;
}
