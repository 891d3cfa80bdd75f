/**
 * The figures the issues set targets for, each with the peer it is measured
 * against, its target and the issue's "now" value (the before, unless a
 * baseline build measured it in the same run), and how a result becomes
 * PASS, MISS or UNRELIABLE.
 */
import type { Paired } from './pairs.js';

export type Verdict = 'PASS' | 'MISS' | 'UNRELIABLE' | 'INFO';

export const FULL_PACK =
  'full mksquashfs of the merged tree (what the old recipe and squashmount do at every shutdown)';
export const ONE_IMAGE = 'the single fresh mksquashfs image of the same tree, mounted the same way';

interface Definition {
  issue: string;
  title: string;
  peer: string;
  /** Target per compressor ('*' for any); none: informative figure. */
  limit?: Record<string, number>;
  /** The issue's value today, per compressor ('*' for any). */
  now?: Record<string, string>;
  /** Corpora the issue sets the target on; elsewhere the verdict is informative. */
  on?: readonly string[];
}

const GENTOO = ['generated-gentoo'];

export const DEFINITIONS = {
  'commit-patch': {
    issue: '15',
    title: 'commit of a patch-sized change / full pack (time)',
    peer: FULL_PACK,
    limit: { '*': 0.02 },
    now: { '*': '0.033 (1.26 s / 37.9 s)' },
    on: ['linux'],
  },
  'commit-day': {
    issue: '15',
    title: 'commit of a one-day sync / full pack (time)',
    peer: FULL_PACK,
    limit: { '*': 0.02 },
    now: { '*': '0.04 quiet, 0.067 loaded' },
    on: GENTOO,
  },
  'commit-most': {
    issue: '15',
    title: 'commit of a sync that changes most of the tree / full pack (time)',
    peer: FULL_PACK,
    limit: { '*': 1.0 },
    now: { '*': '1.57 (2.53 s / 1.61 s)' },
    on: ['guru'],
  },
  'compact-day': {
    issue: '15',
    title: 'compact of base + one day / full pack (time)',
    peer: FULL_PACK,
    limit: { gzip: 0.05, xz: 0.03 },
    now: { gzip: '0.10-0.14', xz: '0.06-0.10' },
    on: GENTOO,
  },
  'compact-rss': {
    issue: '15',
    title: 'compact peak RSS (MB, largest process)',
    peer: '-',
    limit: { '*': 150 },
    now: { '*': '161 MB' },
    on: GENTOO,
  },
  'size-8days': {
    issue: '15',
    title:
      'size after 8 days of the default policy (daily stop, compactions), compacted / fresh image',
    peer: 'one fresh mksquashfs image of the same tree (bytes)',
    limit: { '*': 1.02 },
    now: { gzip: '1.069 (one compaction of base + 8)', zstd: '1.08-1.15' },
  },
  'size-8layers': {
    issue: '15',
    title: 'size after one compaction of base + 8 daily layers / fresh image',
    peer: 'one fresh mksquashfs image of the same tree (bytes)',
    limit: { '*': 1.02 },
    now: { gzip: '1.069', zstd: '1.08-1.15' },
  },
  'read-stack-find-cold': {
    issue: '15',
    title: 'cold find+stat through the deepest default stack / one image',
    peer: ONE_IMAGE,
    limit: { '*': 1.1 },
    now: { '*': 'unknown (0.64x-3.2x)' },
    on: GENTOO,
  },
  'read-stack-read-cold': {
    issue: '15',
    title: 'cold read-all through the deepest default stack / one image',
    peer: ONE_IMAGE,
    limit: { '*': 1.1 },
    now: { '*': 'unknown (0.64x-3.2x)' },
    on: GENTOO,
  },
  'read-stack-find-warm': {
    issue: '15',
    title: 'warm find+stat through the deepest default stack / one image',
    peer: ONE_IMAGE,
  },
  'read-stack-read-warm': {
    issue: '15',
    title: 'warm read-all through the deepest default stack / one image',
    peer: ONE_IMAGE,
  },
  'read-compacted-find-cold': {
    issue: '13',
    title: 'cold find+stat of the compacted base (2 layers, compact) / fresh image',
    peer: ONE_IMAGE,
    limit: { '*': 1.05 },
    now: { '*': '1.33-1.38x (generated), 2.4-5.1x (linux)' },
    on: [...GENTOO, 'linux'],
  },
  'read-compacted-read-cold': {
    issue: '13',
    title: 'cold read-all of the compacted base (2 layers, compact) / fresh image',
    peer: ONE_IMAGE,
    limit: { '*': 1.05 },
    on: [...GENTOO, 'linux'],
  },
  'read-compacted-find-warm': {
    issue: '13',
    title: 'warm find+stat of the compacted base / fresh image',
    peer: ONE_IMAGE,
  },
  'read-compacted-read-warm': {
    issue: '13',
    title: 'warm read-all of the compacted base / fresh image',
    peer: ONE_IMAGE,
  },
  'fleet-daily-stop': {
    issue: '12',
    title: "follower download over 8 days / the days' own change, builder stops daily",
    peer: "each day's new and changed files packed alone with mksquashfs (bytes)",
    limit: { '*': 1.2 },
    now: { '*': '24.5x (GURU)' },
    on: ['guru', ...GENTOO],
  },
  'fleet-mounted': {
    issue: '12',
    title: "follower download over 8 days / the days' own change, builder stays mounted",
    peer: "each day's new and changed files packed alone with mksquashfs (bytes)",
    limit: { '*': 1.2 },
    now: { '*': '3.5x (GURU)' },
    on: ['guru', ...GENTOO],
  },
  'fleet-offline-daily-stop': {
    issue: '12',
    title: "catch-up after 5 days offline / those days' own change, builder stops daily",
    peer: "each day's new and changed files packed alone with mksquashfs (bytes)",
    limit: { '*': 1.2 },
    on: ['guru', ...GENTOO],
  },
  'fleet-offline-mounted': {
    issue: '12',
    title: "catch-up after 5 days offline / those days' own change, builder stays mounted",
    peer: "each day's new and changed files packed alone with mksquashfs (bytes)",
    limit: { '*': 1.2 },
    on: ['guru', ...GENTOO],
  },
} satisfies Record<string, Definition>;

export type FigureId = keyof typeof DEFINITIONS;

export interface Figure {
  id: FigureId;
  issue: string;
  corpus: string;
  compressor: string;
  build: string;
  title: string;
  peer: string;
  value: number;
  /** The value as the report shows it, with what it was computed from. */
  shown: string;
  paired?: Paired;
  target?: string;
  /** Why the verdict does not count (another scale or corpus than the issue's). */
  informative?: string;
  now?: string;
  verdict: Verdict;
  note?: string;
}

function pick<T>(m: Record<string, T> | undefined, compressor: string): T | undefined {
  if (!m) return undefined;
  return m[compressor] ?? m[compressor.split(' ')[0] ?? ''] ?? m['*'];
}

export interface FigureInput {
  corpus: string;
  compressor: string;
  build: string;
  value: number;
  shown: string;
  paired?: Paired;
  note?: string;
}

export function figure(id: FigureId, x: FigureInput): Figure {
  const d: Definition = DEFINITIONS[id];
  const limit = pick(d.limit, x.compressor);
  const now = pick(d.now, x.compressor);
  let verdict: Verdict = 'INFO';
  if (limit !== undefined) {
    if (x.paired && !x.paired.reliable) verdict = 'UNRELIABLE';
    else if (!Number.isFinite(x.value)) verdict = 'MISS';
    else verdict = x.value <= limit ? 'PASS' : 'MISS';
  }
  const elsewhere =
    d.on && !d.on.includes(x.corpus) ? `the issue sets it on ${d.on.join(', ')}` : undefined;
  return {
    id,
    issue: d.issue,
    corpus: x.corpus,
    compressor: x.compressor,
    build: x.build,
    title: d.title,
    peer: d.peer,
    value: x.value,
    shown: x.shown,
    ...(x.paired ? { paired: x.paired } : {}),
    ...(limit !== undefined ? { target: `<= ${limit}` } : {}),
    ...(elsewhere ? { informative: elsewhere } : {}),
    ...(now !== undefined ? { now } : {}),
    verdict,
    ...(x.note ? { note: x.note } : {}),
  };
}
