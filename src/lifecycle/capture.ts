/**
 * Nothing is packed from a live writable tree. A commit first copies the
 * upper into a private staging dir and checks, by lstat before and after,
 * that no entry changed during the copy (ctime moves on every write, and the
 * kernel gives it fine grain once it has been read). A copy that raced a
 * writer is thrown away and taken again; if the tree never holds still the
 * commit fails and the previous generation stays current.
 *
 * What a commit needs to know of the mounted tree (which upper dirs the
 * overlay merges) is read between the two scans too, so it describes
 * exactly the upper that was copied.
 */
import { promises as fsp } from 'node:fs';
import { SquashtreeError } from '../errors.js';
import { isInterrupted, run } from '../exec/run.js';
import type { Entry } from '../fs/walk.js';
import { displayPath } from '../fs/paths.js';
import { readMergedNlinks } from './opacity.js';
import { CAPTURE_HINT, scanUpper, signature, VanishedDuringScan } from './upper.js';

export interface Capture {
  /** The upper's entries as they were copied. */
  entries: Entry[];
  attempts: number;
  /** st_nlink the mounted tree showed for the upper's dirs (see opacity.ts), when it was given. */
  mergedNlinks: Map<string, number> | null;
}

export interface CaptureOptions {
  exclude?: readonly string[];
  attempts?: number;
  /**
   * A scan of the upper taken just now, used as the first attempt's "before":
   * whatever changed since it shows in the scan after the copy.
   */
  scanned?: Entry[];
  /** The mounted tree, to read the overlay's view of the upper's dirs off. */
  merged?: string;
}

function firstDifference(a: readonly Entry[], b: readonly Entry[]): string | undefined {
  const before = new Map(a.map((e) => [e.path, signature(e)]));
  for (const e of b) {
    if (e.path === '') continue;
    if (before.get(e.path) !== signature(e)) return e.path;
    before.delete(e.path);
  }
  for (const p of before.keys()) if (p !== '') return p;
  return undefined;
}

export async function captureUpper(
  upperData: string,
  stage: string,
  opts: CaptureOptions = {},
): Promise<Capture> {
  const { exclude = [], attempts = 4 } = opts;
  let changed = '';
  for (let i = 1; i <= attempts; i++) {
    // Back off between attempts: a writer that works in bursts leaves gaps to copy in.
    if (i > 1) await new Promise((r) => setTimeout(r, 200 * (i - 1)));
    await fsp.rm(stage, { recursive: true, force: true });
    let pre: Entry[];
    try {
      pre = i === 1 && opts.scanned ? opts.scanned : await scanUpper(upperData, exclude);
    } catch (e) {
      if (!(e instanceof VanishedDuringScan)) throw e;
      changed = '(entries vanishing during the scan)';
      continue;
    }
    const mergedNlinks = opts.merged !== undefined ? readMergedNlinks(opts.merged, pre) : null;
    // Explicit --preserve=xattr makes a lost xattr (an opaque dir marker) an error.
    let copyError: Error | undefined;
    try {
      await run(
        'cp',
        [
          '-dR',
          '--preserve=mode,ownership,timestamps,links,xattr',
          '--no-target-directory',
          upperData,
          stage,
        ],
        {
          interruptible: true,
          hint: 'the staging filesystem must support device nodes and trusted.* xattrs (tmpfs, ext4, xfs, btrfs do)',
        },
      );
    } catch (e) {
      copyError = e instanceof Error ? e : new Error(String(e));
    }
    let post: Entry[];
    try {
      post = await scanUpper(upperData, exclude);
    } catch (e) {
      if (!(e instanceof VanishedDuringScan)) throw e;
      changed = '(entries vanishing during the scan)';
      continue;
    }
    const diff = firstDifference(pre, post);
    // A copy that failed while the upper stood still failed for its own reasons.
    if (copyError !== undefined && (diff === undefined || isInterrupted(copyError)))
      throw copyError;
    if (diff === undefined) return { entries: pre, attempts: i, mergedNlinks };
    // A writer renamed or removed something under cp: a race, so take the copy again.
    changed = displayPath(diff);
  }
  await fsp.rm(stage, { recursive: true, force: true });
  throw new SquashtreeError(
    'E_CAPTURE',
    `the tree kept changing while its changes were captured (last: ${changed})`,
    { hint: CAPTURE_HINT },
  );
}
