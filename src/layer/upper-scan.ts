/**
 * The overlay's upper dir: what changed since the tree was mounted. A
 * snapshot of its entries' signatures is recorded at each commit
 * (snapshot.ts); what differs from that snapshot is what is still pending.
 */
import { existsSync } from 'node:fs';
import { walk, type Entry } from '../fs/walk.js';
import { SquashtreeError, errnoCode } from '../errors.js';
import { skipExcluded } from '../config/exclude.js';

export function signature(e: Entry): string {
  return [
    e.type,
    e.mode,
    e.uid,
    e.gid,
    e.size,
    e.mtimeNs,
    e.ctimeNs,
    e.ino,
    e.rdev,
    e.target ?? '',
  ].join(':');
}

export type UpperSnapshot = Map<string, string>;

/** The type and inode number a signature records (ctime and the rest left out). */
export function signatureIdentity(sig: string | undefined): { type: string; ino: string } | null {
  if (sig === undefined) return null;
  const f = sig.split(':');
  return { type: f[0] ?? '', ino: f[7] ?? '' };
}

export function snapshotOf(entries: readonly Entry[]): UpperSnapshot {
  return new Map(entries.filter((e) => e.path !== '').map((e) => [e.path, signature(e)]));
}

export interface Pending {
  /** Entries (files, links, whiteouts, empty dirs, removals) not yet in a committed layer. */
  files: number;
  /** Bytes of regular files among them. */
  bytes: number;
  /** True when anything at all differs, including directory metadata. */
  any: boolean;
}

export function pendingChanges(
  entries: readonly Entry[],
  committed: UpperSnapshot | null,
): Pending {
  let files = 0;
  let bytes = 0;
  let any = false;
  const seen = new Set<string>();
  const parents = new Set(
    entries.map((e) => e.path.slice(0, Math.max(0, e.path.lastIndexOf('/')))),
  );
  for (const e of entries) {
    if (e.path === '') continue;
    seen.add(e.path);
    const before = committed?.get(e.path);
    if (before === signature(e)) continue;
    any = true;
    // A dir with entries is counted through them; an empty one (new, or emptied and opaque) counts itself.
    if (e.type === 'dir' && parents.has(e.path)) continue;
    files++;
    if (e.type === 'file') bytes += e.size;
  }
  if (committed) {
    for (const p of committed.keys()) {
      if (!seen.has(p)) {
        any = true;
        files++;
      }
    }
  }
  return { files, bytes, any };
}

/** The upper's entries, without excluded paths (their mount points live there). */
export async function scanUpper(
  upperData: string,
  exclude: readonly string[] = [],
): Promise<Entry[]> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await walk(upperData, skipExcluded(exclude));
    } catch (e) {
      const code = errnoCode(e);
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw e;
      // No upper at all: nothing pending. An entry that vanished mid-walk: a writer is busy; walk again.
      if (!existsSync(upperData)) return [];
      if (attempt >= 5) throw new VanishedDuringScan(upperData, e);
    }
  }
}

/** The one hint of every E_CAPTURE, whichever scan or copy met the busy writer. */
export const CAPTURE_HINT =
  'nothing was committed; run the command again once the writer is done, or use squashtree run NAME -- COMMAND';

/**
 * The upper kept changing under the walk. Capture retries on it; any other
 * caller (the pending scan at the start of a commit, diff, status) reports
 * it as the E_CAPTURE it is, never as an internal error.
 */
export class VanishedDuringScan extends SquashtreeError {
  constructor(
    readonly upperData: string,
    cause: unknown,
  ) {
    super('E_CAPTURE', `entries of ${upperData} kept vanishing while it was read`, {
      path: upperData,
      hint: CAPTURE_HINT,
      cause,
    });
  }
}
