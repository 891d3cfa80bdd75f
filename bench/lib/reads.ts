/**
 * Reading trees the way portage and friends do, several trees against one
 * another in alternating rounds: a metadata walk (find + stat of every
 * file) and a read of every file (tar to a pipe; GNU tar skips reading
 * contents when the archive itself is /dev/null). Each is timed cold
 * (sync, then drop_caches) and right after that warm. Every run also
 * records what it fetched from the tree's loop devices: a warm run that
 * fetched much was not warm (proactive reclaim pages out idle cache).
 */
import { loadavg } from 'node:os';
import { dropCaches, run, shell, shellQuote } from './exec.js';
import { loopReadBytes } from './image-mount.js';
import type { Sample } from './pairs.js';

export const TRAVERSE = (dir: string): string =>
  `find ${shellQuote(dir)} -type f -print0 | xargs -0 stat -c %s > /dev/null`;
export const READ_ALL = (dir: string): string =>
  `tar -cf - -C ${shellQuote(dir)} . | cat > /dev/null`;

export interface ReadTree {
  name: string;
  tree: string;
  /** Its loop devices (sdX names below /sys/block). */
  loops: string[];
}

export const READ_KINDS = ['findCold', 'findWarm', 'readCold', 'readWarm'] as const;
export type ReadKind = (typeof READ_KINDS)[number];
export type ReadSamples = Record<ReadKind, Sample[]>;

async function timed(script: string, loops: readonly string[]): Promise<Sample> {
  const load = loadavg()[0] ?? NaN;
  const before = await loopReadBytes(loops);
  const r = await shell(script);
  const fetched = (await loopReadBytes(loops)) - before;
  return { wallMs: r.ms, cpuMs: r.cpuMs, load, info: { loopReadBytes: fetched } };
}

export async function readRounds(
  trees: readonly ReadTree[],
  rounds: number,
  cold: boolean,
): Promise<Record<string, ReadSamples>> {
  const out: Record<string, ReadSamples> = {};
  for (const t of trees) out[t.name] = { findCold: [], findWarm: [], readCold: [], readWarm: [] };
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? trees : [...trees].reverse();
    for (const [script, c, w] of [
      [TRAVERSE, 'findCold', 'findWarm'],
      [READ_ALL, 'readCold', 'readWarm'],
    ] as const) {
      for (const t of order) {
        const s = out[t.name];
        if (!s) continue;
        if (cold) {
          await run('sync', []);
          await dropCaches();
          s[c].push(await timed(script(t.tree), t.loops));
        } else {
          // No cold runs possible (not root): the first run primes the cache.
          await shell(script(t.tree));
        }
        s[w].push(await timed(script(t.tree), t.loops));
      }
    }
  }
  return out;
}
