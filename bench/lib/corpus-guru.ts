/**
 * The GURU snapshots of ../shared/corpus, unpacked once into the cache:
 * base -> d1 -> d7 -> s1 .. s5 is a chain of real syncs (d1 -> d7 is a
 * week), and an eighth day, g8, is s5 with a generated sync on top
 * (applySync on GURU's own packages), so a scenario can run eight days.
 * A day is an rsync of the next snapshot with portage's options; its own
 * change is what `rsync -c --compare-dest` of the snapshot against the one
 * before finds new or changed.
 */
import { promises as fsp, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PORTAGE_RSYNC, applySync } from '../../src/corpus/portage.js';
import { cached, keyOf } from './cache.js';
import { countTree, type Corpus, type Days, type SkippedCorpus } from './corpus.js';
import { exists, run } from './exec.js';

/** ../shared/corpus next to the repository. */
export const DEFAULT_CORPUS_DIR = resolve(import.meta.dirname, '../../../shared/corpus');
export const GURU_CHAIN = ['base', 'd1', 'd7', 's1', 's2', 's3', 's4', 's5'] as const;
const G8_SEED = 8008;
const G8_PACKAGES = 80;

interface Meta {
  files: number;
  bytes: number;
}

/** Dirs CAT/PKG that hold an ebuild: the package list applySync draws from. */
async function packagesOf(root: string): Promise<string[]> {
  const { stdout } = await run('find', [
    root,
    '-mindepth',
    '3',
    '-maxdepth',
    '3',
    '-name',
    '*.ebuild',
  ]);
  const set = new Set<string>();
  for (const l of stdout.split('\n')) {
    const parts = l.slice(root.length + 1).split('/');
    if (parts.length === 3 && parts[0] !== 'metadata') set.add(`${parts[0]}/${parts[1]}`);
  }
  return [...set].sort();
}

export async function rsyncInto(snapshot: string, tree: string): Promise<string> {
  const { stdout } = await run('rsync', [...PORTAGE_RSYNC, '--stats', `${snapshot}/`, `${tree}/`]);
  const num = (re: RegExp): string => (re.exec(stdout)?.[1] ?? '?').replace(/,/g, '');
  return `${num(/Number of regular files transferred: ([\d,]+)/)} files transferred, ${num(/Number of deleted files: ([\d,]+)/)} deleted`;
}

export async function guruCorpus(
  cacheDir: string,
  corpusDir = DEFAULT_CORPUS_DIR,
): Promise<Corpus | SkippedCorpus> {
  const tarballs = GURU_CHAIN.map((n) => join(corpusDir, `guru-${n}.tar.xz`));
  const missing: string[] = [];
  for (const t of tarballs) if (!(await exists(t))) missing.push(t);
  if (missing.length > 0)
    return { name: 'guru', skipped: `corpus not found (${missing.join(', ')})` };
  const t0 = performance.now();
  const stamp = tarballs.map((t) => {
    const s = statSync(t);
    return `${t}:${s.size}:${s.mtimeMs}`;
  });
  const entry = await cached<Meta>(
    cacheDir,
    `guru-${keyOf([...stamp, String(G8_SEED)])}`,
    async (dir) => {
      for (const [i, n] of GURU_CHAIN.entries()) {
        await fsp.mkdir(join(dir, n));
        await run('tar', ['-xJf', tarballs[i] ?? '', '-C', join(dir, n)]);
      }
      const g8 = join(dir, 'g8');
      await run('cp', ['-a', join(dir, 's5'), g8]);
      const packages = await packagesOf(g8);
      await applySync(g8, { files: 0, bytes: 0, packages }, G8_SEED, G8_PACKAGES);
      return countTree(join(dir, 'base'));
    },
  );
  const snap = (i: number): string => join(entry.dir, i === 8 ? 'g8' : (GURU_CHAIN[i] ?? 'base'));
  return {
    name: 'guru',
    description: `GURU repository snapshots (${corpusDir}): guru-base, then a day is an rsync (portage's options) of the next of d1, d7, s1 .. s5 (real syncs; d1 -> d7 is a week), then g8 = s5 + applySync on ${G8_PACKAGES} of its packages`,
    baseDir: snap(0),
    files: entry.meta.files,
    bytes: entry.meta.bytes,
    prepareMs: performance.now() - t0,
    cacheHit: entry.hit,
    change: 'one-day sync',
    days: (): Promise<Days> =>
      Promise.resolve({
        count: 8,
        async apply(day, trees) {
          if (day < 1 || day > 8) throw new Error(`guru has days 1..8, not ${day}`);
          let detail = '';
          for (const t of trees) detail = await rsyncInto(snap(day), t);
          return { label: `rsync ${day === 8 ? 'g8' : GURU_CHAIN[day]}`, detail };
        },
        async changed(day, into) {
          await fsp.mkdir(into, { recursive: true });
          await run('rsync', [
            '-a',
            '-c',
            `--compare-dest=${snap(day - 1)}/`,
            `${snap(day)}/`,
            `${into}/`,
          ]);
        },
        close: () => Promise.resolve(),
      }),
  };
}
