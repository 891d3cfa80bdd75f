/**
 * Reading the lower stack a session stands on. The merged read-only view
 * (an overlay of every image) is exact but slow to list: it is mounted only
 * for commit and diff, so it is cold, and a directory listing through it
 * costs far more than one through the image that holds the directory. A
 * directory that exactly one image holds (a package dir that only the base
 * has, say) shows in the view exactly as in that image, whiteouts aside:
 * no other image can add to it, hide part of it or replace it, since each
 * would need an entry at that path. Such subtrees are read from the image.
 */
import { lstatSync } from 'node:fs';
import { errnoCode } from '../errors.js';
import { fsPath } from '../fs/paths.js';
import { readMounts, superOption, topMountAt } from '../mount/mountinfo.js';
import type { Layout } from './layout.js';

export interface LowerStack {
  /** The merged read-only view of all images. */
  view: string;
  /** Each image's mount point, top first, when known. */
  layers?: readonly string[];
}

/**
 * The lower stack of a mounted session, read off the mount table (after a
 * compaction of a mounted tree the session record names other images than
 * those still mounted).
 */
export async function mountedLower(layout: Layout): Promise<LowerStack> {
  const view = topMountAt(await readMounts(), layout.lowerView);
  if (!view) return { view: layout.image(0), layers: [layout.image(0)] };
  // lowerdir=TOP:...:BASE; our mount points hold no ':' (else the view alone is used).
  const dirs = superOption(view, 'lowerdir')?.split(':') ?? [];
  const ok = dirs.length > 1 && dirs.every((d) => d.startsWith(`${layout.imagesDir}/`));
  return ok ? { view: layout.lowerView, layers: dirs } : { view: layout.lowerView };
}

/** The one image that has an entry at `rel`, when exactly one has; else undefined. */
export function soleLayer(stack: LowerStack, rel: string): string | undefined {
  if (!stack.layers) return undefined;
  let found: string | undefined;
  for (const layer of stack.layers) {
    try {
      lstatSync(fsPath(layer, rel));
    } catch (e) {
      const code = errnoCode(e);
      if (code === 'ENOENT' || code === 'ENOTDIR') continue;
      return undefined;
    }
    if (found !== undefined) return undefined;
    found = layer;
  }
  return found;
}
