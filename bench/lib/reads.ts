/**
 * Reading a tree the way portage and friends do: a metadata walk (find +
 * stat of every file) and a read of every file (tar to a pipe; GNU tar
 * skips reading contents when the archive itself is /dev/null). Each is
 * timed cold (after drop_caches) and then warm, right after.
 */
import { dropCaches, run, shell, shellQuote } from './exec.js';
import { summarize, type Summary } from './stats.js';

export interface ReadResult {
  traverseCold: Summary;
  traverseWarm: Summary;
  readCold: Summary;
  readWarm: Summary;
}

export const TRAVERSE = (dir: string): string =>
  `find ${shellQuote(dir)} -type f -print0 | xargs -0 stat -c %s > /dev/null`;
export const READ_ALL = (dir: string): string =>
  `tar -cf - -C ${shellQuote(dir)} . | cat > /dev/null`;

export const WARM_REPEATS = 1;

export async function measureReads(dir: string, runs: number, cold: boolean): Promise<ReadResult> {
  const s = {
    traverseCold: [] as number[],
    traverseWarm: [] as number[],
    readCold: [] as number[],
    readWarm: [] as number[],
  };
  // Nothing read here dirties pages: one sync up front lets each drop_caches drop everything.
  if (cold) await run('sync', []);
  for (let i = 0; i < runs; i++) {
    if (cold) {
      await dropCaches();
      s.traverseCold.push((await shell(TRAVERSE(dir))).ms);
    }
    for (let w = 0; w < WARM_REPEATS; w++) s.traverseWarm.push((await shell(TRAVERSE(dir))).ms);
    if (cold) {
      await dropCaches();
      s.readCold.push((await shell(READ_ALL(dir))).ms);
    }
    for (let w = 0; w < WARM_REPEATS; w++) s.readWarm.push((await shell(READ_ALL(dir))).ms);
  }
  return {
    traverseCold: summarize(s.traverseCold),
    traverseWarm: summarize(s.traverseWarm),
    readCold: summarize(s.readCold),
    readWarm: summarize(s.readWarm),
  };
}
