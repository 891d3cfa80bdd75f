/**
 * Nothing is packed from a live writable tree. A commit first copies what it
 * packs out of the upper into a private staging dir and checks, by lstat
 * before and after, that no entry changed during the copy (ctime moves on
 * every write, and the kernel gives it fine grain once it has been read). A
 * copy that raced a writer is thrown away and taken again; if the tree never
 * holds still the commit fails and the previous generation stays current.
 *
 * What is copied is chosen from the "before" scan (select: the plan of the
 * layer, layer-plan.ts, which reads the link counts of the overlay's dirs where it
 * needs them), and what a commit needs to know of the mounted tree (the
 * names it shows in the dirs the layer holds) is read between the two scans
 * too, so all of it describes exactly the upper that was copied.
 *
 * A scan cannot see a change that leaves an entry's signature as it was: a
 * second write within the same tick of a coarse clock (or the same second,
 * on a filesystem that keeps seconds). So an upper with an entry written
 * within that grain before its scan is scanned again once the grain has
 * passed: every later write then moves a time the snapshot can tell from.
 */
import { promises as fsp, readdirSync } from 'node:fs';
import { SquashtreeError } from '../errors.js';
import { isInterrupted } from '../exec/run.js';
import { displayPath, fsPath } from '../fs/paths.js';
import type { Entry } from '../fs/walk.js';
import { copyEntries } from './copy-entries.js';
import { CAPTURE_HINT, scanUpper, signature, VanishedDuringScan } from './upper-scan.js';

export interface Capture<T> {
  /** The upper's entries as they were when copied. */
  entries: Entry[];
  attempts: number;
  /** Names the mounted tree showed in each dir select listed, when it was given. */
  listings: Map<string, string[]> | null;
  /** What select chose. */
  selected: T;
}

/** A scan of the upper and when it began (ns since the epoch, as file times are). */
export interface Scan {
  entries: Entry[];
  startedNs: bigint;
}

export interface Selection<T> {
  /** Upper entries to copy, parents first ('' the root). */
  copy: readonly Entry[];
  /** Dirs whose listing in the mounted tree is wanted. */
  listed?: readonly string[];
  value: T;
}

export interface CaptureOptions<T> {
  exclude?: readonly string[];
  attempts?: number;
  /** A scan taken just now, used as the first attempt's "before". */
  scanned?: Scan;
  /** The mounted tree, to read the overlay's view of the upper's dirs off. */
  merged?: string;
  /** What to copy, from the "before" scan (the mounted tree may be read meanwhile). */
  select: (entries: Entry[]) => Promise<Selection<T>>;
  /** Copy the overlay's own xattrs too (a copy packed without the layer form). */
  keepOverlayXattrs?: boolean;
}

export const nowNs = (): bigint => BigInt(Date.now()) * 1_000_000n;

export async function scanWithTime(
  upperData: string,
  exclude: readonly string[] = [],
): Promise<Scan> {
  const startedNs = nowNs();
  return { entries: await scanUpper(upperData, exclude), startedNs };
}

/** The coarsest grain a scan must outwait: a clock tick, or a second where the upper keeps seconds. */
function grainNs(entries: readonly Entry[]): bigint {
  const fine = entries.some((e) => e.ctimeNs % 1_000_000_000n !== 0n);
  return fine || entries.length < 2 ? 20_000_000n : 1_020_000_000n;
}

/** When a scan that can tell every later write may begin, if this one began too early. */
function racyUntil(scan: Scan): bigint | null {
  let newest = 0n;
  for (const e of scan.entries) if (e.ctimeNs > newest) newest = e.ctimeNs;
  const safe = newest + grainNs(scan.entries);
  return safe > scan.startedNs ? safe : null;
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

/** The names the mounted tree shows in each of `dirs` (binary strings). */
function readMergedListings(root: string, dirs: readonly string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const d of dirs) {
    try {
      const names = readdirSync(fsPath(root, d), { encoding: 'buffer' });
      out.set(
        d,
        names.map((n) => n.toString('latin1')),
      );
    } catch {
      // not a dir of the tree (fuse-overlayfs bookkeeping, a mount on top): nothing to compare
    }
  }
  return out;
}

const sleepNs = (ns: bigint): Promise<void> =>
  new Promise((r) => setTimeout(r, ns > 0n ? Number(ns / 1_000_000n) + 1 : 0));

export async function captureUpper<T>(
  upperData: string,
  stage: string,
  opts: CaptureOptions<T>,
): Promise<Capture<T>> {
  const { exclude = [], attempts = 4 } = opts;
  let changed = '';
  for (let i = 1; i <= attempts; i++) {
    // Back off between attempts: a writer that works in bursts leaves gaps to copy in.
    if (i > 1) await new Promise((r) => setTimeout(r, 200 * (i - 1)));
    await fsp.rm(stage, { recursive: true, force: true });
    let pre: Scan;
    try {
      pre = i === 1 && opts.scanned ? opts.scanned : await scanWithTime(upperData, exclude);
      const until = racyUntil(pre);
      if (until !== null) {
        await sleepNs(until - nowNs());
        pre = await scanWithTime(upperData, exclude);
        if (racyUntil(pre) !== null) {
          changed = '(entries still being written)';
          continue;
        }
      }
    } catch (e) {
      if (!(e instanceof VanishedDuringScan)) throw e;
      changed = '(entries vanishing during the scan)';
      continue;
    }
    const selection = await opts.select(pre.entries);
    const listings =
      opts.merged !== undefined ? readMergedListings(opts.merged, selection.listed ?? []) : null;
    let copyError: Error | undefined;
    try {
      await copyEntries(upperData, stage, selection.copy, {
        keepOverlayXattrs: opts.keepOverlayXattrs === true,
      });
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
    const diff = firstDifference(pre.entries, post);
    // A copy that failed while the upper stood still failed for its own reasons.
    if (copyError !== undefined && (diff === undefined || isInterrupted(copyError)))
      throw copyError;
    if (diff === undefined)
      return {
        entries: pre.entries,
        attempts: i,
        listings,
        selected: selection.value,
      };
    // A writer renamed or removed something under the copy: a race, so take it again.
    changed = displayPath(diff);
  }
  await fsp.rm(stage, { recursive: true, force: true });
  throw new SquashtreeError(
    'E_CAPTURE',
    `the tree kept changing while its changes were captured (last: ${changed})`,
    { hint: CAPTURE_HINT },
  );
}
