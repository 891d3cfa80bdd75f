/**
 * The generated Gentoo-shaped tree (generate.ts on top of the portage
 * generator), cached by its shape and the generators' sources. A day is
 * applySync on ~0.75% of the files (~1,500 at 200k), a new seed a day.
 * With a reference, days also land on a mirror: a plain overlay on the
 * cached base, whose upper shows what each day wrote.
 */
import { existsSync, promises as fsp } from 'node:fs';
import { join, resolve } from 'node:path';
import { applySync, type RepoStats } from '../../src/corpus/portage.js';
import { cached, keyOf } from './cache.js';
import { copyListed, countTree, fileStamps, type Corpus, type Days } from './corpus.js';
import { run } from './exec.js';
import { SHAPES, generateGentooLike } from './generate.js';

/** Changes (entries in the upper) per package applySync touches, on average (measured: 43 for 18). */
const FILES_PER_SYNCED_PACKAGE = 2.4;
/** 1,500 changed files in a day at ~200k files. */
const DAILY_CHANGE_SHARE = 1500 / 200_000;

const HERE = import.meta.dirname;
const SOURCES = [
  join(HERE, 'generate.ts'),
  resolve(HERE, '../../src/corpus/portage.ts'),
  resolve(HERE, '../../src/corpus/random.ts'),
];

interface Meta {
  repo: RepoStats;
  files: number;
  bytes: number;
}

/** A plain overlay with its own upper over a read-only dir. */
async function mirrorOf(base: string, work: string): Promise<{ tree: string; upper: string }> {
  const upper = join(work, 'mirror-upper');
  const wk = join(work, 'mirror-work');
  const tree = join(work, 'mirror');
  for (const d of [upper, wk, tree]) await fsp.mkdir(d, { recursive: true });
  await run('mount', [
    '-t',
    'overlay',
    '-o',
    `lowerdir=${base},upperdir=${upper},workdir=${wk},redirect_dir=off,index=off,metacopy=off`,
    'overlay',
    tree,
  ]);
  return { tree, upper };
}

export async function generatedCorpus(
  cacheDir: string,
  scale: 'small' | 'gentoo',
): Promise<Corpus> {
  const t0 = performance.now();
  const shape = SHAPES[scale];
  const name = `generated-${scale}-${keyOf([JSON.stringify(shape)], SOURCES)}`;
  const entry = await cached<Meta>(cacheDir, name, async (dir) => {
    const stats = await generateGentooLike(join(dir, 'tree'), shape);
    return { repo: stats.repo, ...(await countTree(join(dir, 'tree'))) };
  });
  const baseDir = join(entry.dir, 'tree');
  const { files, bytes, repo } = entry.meta;
  const perDay = Math.max(5, Math.round((files * DAILY_CHANGE_SHARE) / FILES_PER_SYNCED_PACKAGE));
  return {
    name: `generated-${scale}`,
    description: `portage-like tree from src/corpus/portage.ts (${shape.categories} categories x ${shape.packagesPerCategory} packages, seed ${shape.seed}) plus Gentoo-shaped extras (files/, eclass/, metadata/glsa; bench/lib/generate.ts); a day: applySync on ${perDay} packages, seed 9000 + day`,
    baseDir,
    files,
    bytes,
    prepareMs: performance.now() - t0,
    cacheHit: entry.hit,
    change: 'one-day sync',
    days: (work): Promise<Days> => {
      // Packages applySync deleted leave the list, so later days do not write into them.
      const live: RepoStats = { ...repo, packages: [...repo.packages] };
      let mirror: { tree: string; upper: string } | undefined;
      const written = new Map<number, string[]>();
      return Promise.resolve({
        count: Number.POSITIVE_INFINITY,
        async apply(day, trees) {
          mirror ??= await mirrorOf(baseDir, work);
          const before = await fileStamps(mirror.upper);
          const snapshot: RepoStats = { ...live, packages: [...live.packages] };
          let detail = '';
          for (const t of [mirror.tree, ...trees]) {
            const s = await applySync(
              t,
              { ...snapshot, packages: [...snapshot.packages] },
              9000 + day,
              perDay,
            );
            detail = `${s.added} bumps, ${s.deleted} removed, ${s.replacedDirs} dirs replaced`;
          }
          const m = mirror;
          live.packages = live.packages.filter((cp) => existsSync(join(m.tree, cp)));
          const after = await fileStamps(mirror.upper);
          written.set(
            day,
            [...after].filter(([p, st]) => before.get(p) !== st).map(([p]) => p),
          );
          return { label: `applySync seed ${9000 + day}`, detail };
        },
        async changed(day, into) {
          if (!mirror) throw new Error(`day ${day} was not applied`);
          await copyListed(mirror.tree, written.get(day) ?? [], into);
        },
        async close() {
          if (mirror) await run('umount', [mirror.tree], { evenIfAborted: true });
          mirror = undefined;
        },
      });
    },
  };
}
