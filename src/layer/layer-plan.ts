/**
 * What a commit packs, worked out from the upper and the images the new
 * layer will stand on (the stack: the current generation's images), and
 * what that changes in the tree (diff's A/M/D lines, the generation's file
 * and byte counts). Only what changed since the stack's snapshot of the
 * upper goes in (snapshot.ts; no snapshot: all of the upper):
 *
 * - every upper entry new or changed since then, with its parent dirs;
 * - a whiteout for every entry the snapshot had that is gone now (also one
 *   created and deleted within the session: an earlier layer has it) and
 *   for every upper whiteout over a name the stack shows;
 * - a dir made opaque since then (removed and recreated) hides everything
 *   the stack has below it, the lower images and earlier layers of the
 *   session alike: each such name gets a whiteout of its own, since the
 *   layer form has no opaque dirs (whiteouts.ts).
 *
 * Opacity is read off the engine's own marks: fuse-overlayfs leaves a
 * `.wh..wh..opq` file in the dir; the kernel overlay shows a merged dir with
 * st_nlink 1 (opacity.ts). Its bookkeeping files (`.wh.NAME`, the markers)
 * never reach a layer.
 */
import { lstatSync } from 'node:fs';
import { fsPath, joinRel, parentOf } from '../fs/paths.js';
import type { Entry, EntryType } from '../fs/walk.js';
import { isOpaque } from './opacity.js';
import { entrySize, type StackEntry, type StackView } from './stack-view.js';

/** What planning reads of the images below: a StackView (a fake in unit tests). */
export type PlanStack = Pick<StackView, 'lookup' | 'names' | 'subtree' | 'stat'>;
import { signature, signatureIdentity, type UpperSnapshot } from './upper-scan.js';
import { OPAQUE_MARKERS, isWhiteout } from './whiteouts.js';
import { isExcluded } from '../config/exclude.js';

export interface Change {
  kind: 'A' | 'M' | 'D';
  path: string;
  type: EntryType;
}

/** An upper entry as the layer form sees it. */
export interface Logical {
  path: string;
  /** A deletion: a whiteout device, or fuse-overlayfs's `.wh.NAME` for NAME. */
  whiteout: boolean;
  /** The upper's entry (for a `.wh.NAME` deletion: that file). */
  entry: Entry;
  changed: boolean;
}

export interface PlanInput {
  /** The upper's entries, parents first. */
  entries: readonly Entry[];
  /** What of the upper the stack holds already (null: nothing). */
  snapshot: UpperSnapshot | null;
  stack: PlanStack;
  /** The upper is fuse-overlayfs's (its bookkeeping names and opaque markers). */
  fuse: boolean;
  /** The mounted tree (absent for an interrupted session). */
  merged?: string;
  /** st_nlink the mounted tree showed for the upper's dirs, when read already (capture.ts). */
  nlinks?: ReadonlyMap<string, number> | null;
  exclude?: readonly string[];
}

export interface Plan {
  /** Upper entries to copy into the layer ('' is the root), parents first. */
  copy: Entry[];
  /** Paths that get a whiteout in the layer. */
  whiteouts: string[];
  changes: Change[];
  filesDelta: number;
  bytesDelta: number;
  /** Anything to commit: an entry changed or gone since the snapshot. */
  any: boolean;
  /** Bytes of the regular files to copy. */
  copyBytes: number;
  /**
   * What the new layer can change, for checking the new stack
   * (stack-check.ts): each path it holds, with the upper entry the tree
   * shows there (none for a whiteout), and the dirs it holds, whose listings
   * it can change.
   */
  checks: { path: string; entry?: Entry }[];
  dirs: string[];
}

const WH = '.wh.';
const OPAQUE_FILE = '.wh..wh..opq';
const baseName = (rel: string): string => rel.slice(rel.lastIndexOf('/') + 1);

function exists(root: string, rel: string): boolean {
  try {
    lstatSync(fsPath(root, rel));
    return true;
  } catch {
    return false;
  }
}

export async function planLayer(input: PlanInput): Promise<Plan> {
  const { entries, snapshot, stack, fuse, merged } = input;
  const exclude = input.exclude ?? [];
  const excluded = (rel: string): boolean => isExcluded(rel, exclude);
  const upper = new Map(entries.map((e) => [e.path, e]));
  const changedEntry = (e: Entry): boolean =>
    snapshot === null || snapshot.get(e.path) !== signature(e);

  // The upper as the layer form sees it.
  const logical = new Map<string, Logical>();
  const marked = new Set<string>();
  for (const e of entries) {
    const name = baseName(e.path);
    // A name the mounted tree shows is content, whatever it is called.
    if (fuse && e.path !== '' && name.startsWith(WH) && !(merged && exists(merged, e.path))) {
      if (name === OPAQUE_FILE) marked.add(parentOf(e.path));
      if (OPAQUE_MARKERS.has(name) || e.type !== 'file' || e.size !== 0) continue;
      const target = joinRel(parentOf(e.path), name.slice(WH.length));
      if (!upper.has(target))
        logical.set(target, { path: target, whiteout: true, entry: e, changed: changedEntry(e) });
      continue;
    }
    logical.set(e.path, {
      path: e.path,
      whiteout: isWhiteout(e),
      entry: e,
      changed: changedEntry(e),
    });
  }

  const copy = new Set<string>(['']);
  const whiteouts = new Set<string>();
  const changes: Change[] = [];
  // Upper dirs with no stack dir below them: nothing under them needs looking up.
  const fresh = new Set<string>();
  // Dirs opaque since the snapshot, and every upper dir below one: the stack shows nothing below them.
  const covered = new Set<string>();
  let filesDelta = 0;
  let bytesDelta = 0;
  let any = false;

  const withParents = (rel: string): void => {
    for (let p = parentOf(rel); p !== '' && !copy.has(p); p = parentOf(p)) copy.add(p);
  };
  const shadowed = (rel: string): boolean => {
    const l = logical.get(rel);
    return l !== undefined && !l.whiteout;
  };
  /** D lines for what the stack shows at rel, except what the upper puts back. */
  const removeTree = async (rel: string): Promise<void> => {
    for (const s of await stack.subtree(rel)) {
      if (shadowed(s.path)) continue;
      changes.push({ kind: 'D', path: s.path, type: s.type });
      if (s.type !== 'dir') filesDelta--;
      bytesDelta -= entrySize(s);
    }
  };
  const hide = async (rel: string): Promise<void> => {
    if (whiteouts.has(rel)) return;
    any = true;
    whiteouts.add(rel);
    withParents(rel);
    await removeTree(rel);
  };
  /** Whether upper dir e, new since the snapshot over a stack dir, hides what the stack has below it. */
  const opaque = async (e: Entry): Promise<boolean> => {
    if (fuse) return marked.has(e.path);
    if (merged === undefined) return false;
    const below = async (): Promise<Iterable<string>> => (await stack.names(e.path))?.keys() ?? [];
    const view = { root: merged, ...(input.nlinks ? { nlinks: input.nlinks } : {}) };
    return (await isOpaque(e, below, logical, view)) ?? false;
  };
  const recreated = (e: Entry): boolean => {
    const before = signatureIdentity(snapshot?.get(e.path));
    return before === null || before.type !== 'dir' || before.ino !== String(e.ino);
  };

  for (const l of logical.values()) {
    if (l.path === '' || !l.changed) continue;
    any = true;
    const parent = parentOf(l.path);
    const s: StackEntry | undefined = fresh.has(parent) ? undefined : await stack.lookup(l.path);
    if (l.whiteout) {
      if (s) await hide(l.path);
      continue;
    }
    const e = l.entry;
    copy.add(l.path);
    withParents(l.path);
    if (e.type === 'dir' && s?.type !== 'dir') fresh.add(l.path);
    if (!s) changes.push({ kind: 'A', path: l.path, type: e.type });
    else if (s.type !== e.type) {
      await removeTree(l.path);
      changes.push({ kind: 'A', path: l.path, type: e.type });
    } else if (e.type !== 'dir') changes.push({ kind: 'M', path: l.path, type: e.type });
    else {
      const st = await stack.stat(s);
      if (st.permissions !== e.mode || st.uid !== e.uid || st.gid !== e.gid)
        changes.push({ kind: 'M', path: l.path, type: e.type });
    }
    if (e.type !== 'dir') {
      if (!s || s.type === 'dir') filesDelta++;
      if (e.type === 'file') bytesDelta += e.size;
      if (s?.type === 'file') bytesDelta -= entrySize(s);
    } else if (s && s.type !== 'dir') {
      // A dir where a file was: removeTree leaves what the upper shadows to this loop.
      filesDelta--;
      bytesDelta -= entrySize(s);
    }
    if (e.type === 'dir' && s?.type === 'dir') {
      const hides = covered.has(parent) || (recreated(e) && (await opaque(e)));
      if (hides) {
        covered.add(l.path);
        for (const n of (await stack.names(l.path))?.keys() ?? []) {
          const rel = joinRel(l.path, n);
          if (!logical.has(rel) && !excluded(rel)) await hide(rel);
        }
      }
    }
  }

  // What the snapshot had and the upper lost: the stack still shows it.
  for (const p of snapshot?.keys() ?? []) {
    if (p === '' || upper.has(p) || logical.has(p) || whiteouts.has(p)) continue;
    if (fuse && baseName(p).startsWith(WH)) continue;
    const parent = parentOf(p);
    // Its parent went too (a whiteout or a file hides it now), or has nothing below it in the stack.
    if (upper.get(parent)?.type !== 'dir' || fresh.has(parent)) continue;
    if (await stack.lookup(p)) await hide(p);
  }

  changes.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const copied = entries.filter((e) => copy.has(e.path));
  return {
    copy: copied,
    whiteouts: [...whiteouts],
    changes,
    filesDelta,
    bytesDelta,
    any,
    copyBytes: copied.reduce((n, e) => n + (e.type === 'file' ? e.size : 0), 0),
    checks: [
      ...copied.map((e) => ({ path: e.path, entry: e })),
      ...[...whiteouts].map((w) => ({ path: w })),
    ],
    dirs: copied.filter((e) => e.type === 'dir').map((e) => e.path),
  };
}
