/**
 * What an upper changes in the tree below it, as A/M/D lines and as the
 * change in file count and bytes. Whiteouts (char 0/0) delete; an opaque dir
 * hides everything below it in the lower layers. Node cannot read xattrs, so
 * opacity is read off the mounted tree (see opacity.ts); without one, dirs
 * are taken as not opaque.
 */
import { describe, walkSync, type Entry } from '../fs/walk.js';
import { promises as fsp } from 'node:fs';
import { mapLimit } from '../fs/hash.js';
import { fsPath, parentOf } from '../fs/paths.js';
import { soleLayer, type LowerStack } from './lower.js';
import { hiddenBelow, isOpaque, type MergedView } from './opacity.js';

export interface Change {
  kind: 'A' | 'M' | 'D';
  path: string;
  type: Entry['type'];
}

export interface ChangeSummary {
  changes: Change[];
  filesDelta: number;
  bytesDelta: number;
  /**
   * For each upper dir that stands on a lower dir, and not below an opaque
   * one: whether it is opaque. Only there does its mark change what the tree
   * shows.
   */
  opaque: Map<string, boolean>;
}

async function tryDescribe(root: string, rel: string): Promise<Entry | undefined> {
  try {
    return await describe(root, rel);
  } catch {
    // ENOENT, or ENOTDIR when a parent is not a dir below: not there
    return undefined;
  }
}

export const isWhiteout = (e: Entry): boolean => e.type === 'char' && e.rdev === 0;

/**
 * Look the upper's paths up in the lower view without waiting for them: its
 * overlay is mounted only for this and starts cold, and a cold lookup through
 * many layers costs several times a warm one. Run from the thread pool while
 * the upper is being copied (a process of its own), computeChanges then finds
 * the dentries warm. Failures mean nothing here.
 */
export async function warmLowerView(
  upperEntries: readonly Entry[],
  lowerRoot: string,
): Promise<void> {
  await mapLimit(upperEntries, 4, async (e) => {
    await fsp.lstat(fsPath(lowerRoot, e.path)).catch(() => undefined);
  });
}

export async function computeChanges(
  upperEntries: readonly Entry[],
  stack: LowerStack,
  merged: MergedView | undefined,
): Promise<ChangeSummary> {
  const lowerRoot = stack.view;
  const changes: Change[] = [];
  const opaque = new Map<string, boolean>();
  let filesDelta = 0;
  let bytesDelta = 0;
  const upper = new Map(upperEntries.map((e) => [e.path, e]));
  // Upper dirs with no lower dir below them: nothing under them is in the lower, so nothing is looked up.
  const fresh = new Set<string>();
  // Opaque upper dirs and every upper dir below one: the lower below them is hidden.
  const covered = new Set<string>();
  // A subtree only one image holds is read from that image (see lower.ts), whiteouts left out.
  const lowerTree = (rel: string, layer: string | undefined): Entry[] =>
    layer !== undefined
      ? walkSync(layer, { under: rel }).filter((e) => !isWhiteout(e))
      : walkSync(lowerRoot, { under: rel });
  const removeLowerTree = (rel: string, gone: Entry, layer?: string): void => {
    const below = gone.type === 'dir' ? lowerTree(rel, layer ?? soleLayer(stack, rel)) : [gone];
    for (const e of below) {
      const shadow = upper.get(e.path);
      if (shadow && !isWhiteout(shadow)) continue;
      changes.push({ kind: 'D', path: e.path, type: e.type });
      if (e.type !== 'dir') filesDelta--;
      if (e.type === 'file') bytesDelta -= e.size;
    }
  };
  for (const e of upperEntries) {
    if (e.path === '') continue;
    const lower = fresh.has(parentOf(e.path)) ? undefined : await tryDescribe(lowerRoot, e.path);
    if (e.type === 'dir' && lower?.type !== 'dir') fresh.add(e.path);
    if (isWhiteout(e)) {
      if (lower) removeLowerTree(e.path, lower);
      continue;
    }
    if (!lower) {
      changes.push({ kind: 'A', path: e.path, type: e.type });
    } else if (lower.type !== e.type) {
      removeLowerTree(e.path, lower);
      changes.push({ kind: 'A', path: e.path, type: e.type });
    } else if (e.type !== 'dir') {
      changes.push({ kind: 'M', path: e.path, type: e.type });
    } else if (lower.mode !== e.mode || lower.uid !== e.uid || lower.gid !== e.gid) {
      changes.push({ kind: 'M', path: e.path, type: e.type });
    }
    if (e.type !== 'dir') {
      filesDelta += lower && lower.type !== 'dir' ? 0 : 1;
      if (e.type === 'file') bytesDelta += e.size;
      if (lower?.type === 'file') bytesDelta -= lower.size;
    } else if (lower && lower.type !== 'dir') {
      // A dir where a file was: removeLowerTree leaves what the upper shadows to this loop.
      filesDelta--;
      if (lower.type === 'file') bytesDelta -= lower.size;
    }
    if (e.type === 'dir' && lower?.type === 'dir' && merged) {
      // Below an opaque dir the overlay merges nothing, whatever a dir's own mark says.
      let o: boolean | undefined = true;
      if (!covered.has(parentOf(e.path))) {
        o = await isOpaque(e, lowerRoot, upper, merged);
        if (o !== undefined) opaque.set(e.path, o);
      }
      if (o === true) {
        covered.add(e.path);
        const layer = soleLayer(stack, e.path);
        const from = layer ?? lowerRoot;
        for (const rel of await hiddenBelow(e.path, from, upper)) {
          const h = await tryDescribe(from, rel);
          if (h && !(layer !== undefined && isWhiteout(h))) removeLowerTree(rel, h, layer);
        }
      }
    }
  }
  changes.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { changes, filesDelta, bytesDelta, opaque };
}
