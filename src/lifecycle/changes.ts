/**
 * What an upper changes in the tree below it, as A/M/D lines and as the
 * change in file count and bytes. Whiteouts (char 0/0) delete; an opaque dir
 * hides everything below it in the lower layers. Node cannot read xattrs, so
 * opacity is read off the merged view: a lower entry that the upper neither
 * shadows nor whites out, yet the merged tree does not show, was hidden by an
 * opaque dir. Without a merged view dirs are taken as not opaque.
 */
import { promises as fsp } from 'node:fs';
import { fsPath, joinRel } from '../fs/paths.js';
import { describe, walk, type Entry } from '../fs/walk.js';

export interface Change {
  kind: 'A' | 'M' | 'D';
  path: string;
  type: Entry['type'];
}

export interface ChangeSummary {
  changes: Change[];
  filesDelta: number;
  bytesDelta: number;
}

async function tryDescribe(root: string, rel: string): Promise<Entry | undefined> {
  try {
    return await describe(root, rel);
  } catch {
    // ENOENT, or ENOTDIR when a parent is not a dir below: not there
    return undefined;
  }
}

async function exists(root: string, rel: string): Promise<boolean> {
  try {
    await fsp.lstat(fsPath(root, rel));
    return true;
  } catch {
    return false;
  }
}

export const isWhiteout = (e: Entry): boolean => e.type === 'char' && e.rdev === 0;

export async function computeChanges(
  upperEntries: readonly Entry[],
  lowerRoot: string,
  mergedRoot: string | undefined,
): Promise<ChangeSummary> {
  const changes: Change[] = [];
  let filesDelta = 0;
  let bytesDelta = 0;
  const upper = new Map(upperEntries.map((e) => [e.path, e]));
  const removeLowerTree = async (rel: string, lower: Entry): Promise<void> => {
    const below = lower.type === 'dir' ? await walk(lowerRoot, { under: rel }) : [lower];
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
    const lower = await tryDescribe(lowerRoot, e.path);
    if (isWhiteout(e)) {
      if (lower) await removeLowerTree(e.path, lower);
      continue;
    }
    if (!lower) {
      changes.push({ kind: 'A', path: e.path, type: e.type });
    } else if (lower.type !== e.type) {
      await removeLowerTree(e.path, lower);
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
    if (e.type === 'dir' && lower?.type === 'dir' && mergedRoot) {
      // Lower entries the upper does not mention: opacity is all or nothing per dir,
      // so one of them missing from the merged view means all of them are hidden.
      const names = await fsp.readdir(fsPath(lowerRoot, e.path), { encoding: 'buffer' });
      const hidden = names
        .map((n) => joinRel(e.path, n.toString('latin1')))
        .filter((rel) => !upper.has(rel));
      const first = hidden[0];
      if (first !== undefined && !(await exists(mergedRoot, first))) {
        for (const rel of hidden) {
          const h = await tryDescribe(lowerRoot, rel);
          if (h) await removeLowerTree(rel, h);
        }
      }
    }
  }
  changes.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { changes, filesDelta, bytesDelta };
}
