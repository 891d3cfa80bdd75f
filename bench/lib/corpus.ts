/**
 * The trees the benchmark runs on, each with a base on disk and a source of
 * "sync" deltas to apply to the mounted tree, one per layer:
 *
 * - generated: the portage-like generator (Gentoo-shaped, see generate.ts)
 *   and applySync with one-day-sized deltas (~0.75% of the files changed,
 *   ~1,500 at 200k files), a new seed for each layer;
 * - guru: real snapshots of the GURU repository (../shared/corpus), synced
 *   with portage's rsync options. There are only two real deltas (one day
 *   and one week), so layers alternate base -> d1 and d1 -> base: every
 *   layer is the real one-day change, forwards or backwards. The one-week
 *   delta (base -> d7) is measured once on top.
 */
import { existsSync, promises as fsp } from 'node:fs';
import { join, resolve } from 'node:path';
import { applySync, type RepoStats } from '../../src/corpus/portage.js';
import { exists, run } from './exec.js';
import { SHAPES, generateGentooLike } from './generate.js';
import { PORTAGE_RSYNC } from '../../src/corpus/portage.js';

export interface DeltaInfo {
  label: string;
  /** What the delta source says it did (rsync's counts or applySync's). */
  detail: string;
  /** How long applying it took. */
  ms?: number;
}

export interface DeltaSource {
  /** Apply the delta that makes layer `layer` (1-based) to the mounted tree. */
  apply(layer: number, tree: string): Promise<DeltaInfo>;
  /** A one-week sync, applied on top of a tree that holds the base content. */
  week?: (tree: string) => Promise<DeltaInfo>;
}

export interface Corpus {
  name: string;
  description: string;
  baseDir: string;
  files: number;
  bytes: number;
  prepareMs: number;
  /** A fresh delta sequence (each compressor replays the same one from the base). */
  deltas(): DeltaSource;
}

export interface SkippedCorpus {
  name: string;
  skipped: string;
}

/** Counts of regular files and their apparent bytes. */
async function countTree(dir: string): Promise<{ files: number; bytes: number }> {
  const { stdout } = await run('find', [dir, '-type', 'f', '-printf', '%s\n']);
  let files = 0;
  let bytes = 0;
  for (const l of stdout.split('\n')) {
    if (!l) continue;
    files++;
    bytes += Number(l);
  }
  return { files, bytes };
}

/** Changes (entries in the upper) per package applySync touches, on average (measured: 43 for 18). */
const FILES_PER_SYNCED_PACKAGE = 2.4;
/** 1,500 changed files in a day at ~200k files. */
const DAILY_CHANGE_SHARE = 1500 / 200_000;

export async function generatedCorpus(work: string, scale: 'small' | 'gentoo'): Promise<Corpus> {
  const t0 = performance.now();
  const baseDir = join(work, 'base');
  const shape = SHAPES[scale];
  const stats = await generateGentooLike(baseDir, shape);
  const count = await countTree(baseDir);
  const perDay = Math.max(
    5,
    Math.round((count.files * DAILY_CHANGE_SHARE) / FILES_PER_SYNCED_PACKAGE),
  );
  return {
    name: `generated-${scale}`,
    description: `portage-like tree from src/corpus/portage.ts (${shape.categories} categories x ${shape.packagesPerCategory} packages, seed ${shape.seed}) plus Gentoo-shaped extras (files/, eclass/, metadata/glsa; bench/lib/generate.ts); one-day delta: applySync on ${perDay} packages, a new seed per layer`,
    baseDir,
    files: count.files,
    bytes: count.bytes,
    prepareMs: performance.now() - t0,
    deltas: () => {
      // Packages applySync deleted are dropped from the list, so later deltas do not write into them.
      const live: RepoStats = { ...stats.repo, packages: [...stats.repo.packages] };
      return {
        async apply(layer, tree) {
          const s = await applySync(tree, live, 9000 + layer, perDay);
          live.packages = live.packages.filter((cp) => existsSync(join(tree, cp)));
          return {
            label: `applySync seed ${9000 + layer}`,
            detail: `${s.added} bumps, ${s.deleted} removed, ${s.replacedDirs} dirs replaced`,
          };
        },
      };
    },
  };
}

/** ../shared/corpus next to the repository. */
export const DEFAULT_CORPUS_DIR = resolve(import.meta.dirname, '../../../shared/corpus');
const GURU = ['guru-base', 'guru-d1', 'guru-d7'] as const;

async function rsyncInto(snapshot: string, tree: string, label: string): Promise<DeltaInfo> {
  const { stdout } = await run('rsync', [...PORTAGE_RSYNC, '--stats', `${snapshot}/`, `${tree}/`]);
  const num = (re: RegExp): string => (re.exec(stdout)?.[1] ?? '?').replace(/,/g, '');
  return {
    label,
    detail: `${num(/Number of regular files transferred: ([\d,]+)/)} files transferred, ${num(/Number of deleted files: ([\d,]+)/)} deleted`,
  };
}

export async function guruCorpus(
  work: string,
  corpusDir = DEFAULT_CORPUS_DIR,
): Promise<Corpus | SkippedCorpus> {
  const tarballs = GURU.map((n) => join(corpusDir, `${n}.tar.xz`));
  const missing: string[] = [];
  for (const t of tarballs) if (!(await exists(t))) missing.push(t);
  if (missing.length > 0) {
    return { name: 'guru', skipped: `corpus not found (${missing.join(', ')})` };
  }
  const t0 = performance.now();
  const dirs = GURU.map((n) => join(work, n));
  await Promise.all(
    GURU.map(async (_, i) => {
      const d = dirs[i] ?? '';
      await fsp.mkdir(d, { recursive: true });
      await run('tar', ['-xJf', tarballs[i] ?? '', '-C', d]);
    }),
  );
  const [baseDir = '', d1 = '', d7 = ''] = dirs;
  const count = await countTree(baseDir);
  return {
    name: 'guru',
    description: `GURU repository snapshots (${corpusDir}): guru-base, then layers alternating base -> d1 (the real one-day sync) and d1 -> base (the same day backwards), with portage's rsync options; base -> d7 (one week) once on top`,
    baseDir,
    files: count.files,
    bytes: count.bytes,
    prepareMs: performance.now() - t0,
    deltas: () => ({
      apply: (layer, tree) =>
        layer % 2 === 1
          ? rsyncInto(d1, tree, 'rsync base -> d1')
          : rsyncInto(baseDir, tree, 'rsync d1 -> base'),
      week: (tree) => rsyncInto(d7, tree, 'rsync base -> d7'),
    }),
  };
}
