/**
 * How a merge keeps its peak memory down. It keeps its working set in
 * typed arrays and buffers, outside V8's heap; what it allocates besides
 * (inflated and deflated metadata blocks, fragment blocks, promises) dies
 * young, but each buffer stays resident until a collection finds it dead.
 *
 * - The young generation: the launcher holds it at 1 MiB before the CLI
 *   loads (hold-at-launch.ts). Loading the CLI grows it to 4 MiB and a
 *   compaction of the 203k-file tree to 8 MiB, and the larger it is, the
 *   more dead buffers wait for the next scavenge. Commits allocate far more
 *   per byte (paths, listings, plans of the upper), and held from the start
 *   they lost about 5% of their time, so a commit lets it grow again; a
 *   merge holds it at the size it has then. V8 reads the flag whenever it
 *   would grow the space, so setting it at run time takes effect.
 * - One full collection before the check: the writer's dead buffers would
 *   otherwise still be resident when the check decodes the output's tables
 *   (14 MB at 203k files).
 * Peak RSS of a compaction of base + one day of the 203k-file tree
 * (/usr/bin/time): 160-168 MB with neither, 146-148 MB with both; the
 * collection costs about 40 ms of 1.7 s.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export function holdYoungGeneration(): void {
  setFlagsFromString('--semi-space-growth-factor=1');
}

/** Back to V8's own growth (its default factor, 2). */
export function releaseYoungGeneration(): void {
  setFlagsFromString('--semi-space-growth-factor=2');
}

let fullCollection: (() => void) | null = null;

/**
 * A full collection now. V8 offers it to code only behind --expose-gc,
 * which a context made after the flag is set gets as its `gc`.
 */
export function collectNow(): void {
  if (!fullCollection) {
    setFlagsFromString('--expose-gc');
    fullCollection = runInNewContext('gc') as () => void;
  }
  fullCollection();
}
