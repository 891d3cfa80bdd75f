/**
 * One layer format for every engine. A layer must read the same through
 * the kernel overlay and through fuse-overlayfs run by a user, so what a
 * commit packs is brought into one form (layer-plan.ts works it out):
 *
 * - Deletions are whiteouts, char devices 0/0 (what the kernel writes, and
 *   what fuse-overlayfs writes too where it may mknod them; Linux lets any
 *   user make a 0/0 device since 5.8). A `.wh.NAME` file, fuse-overlayfs's
 *   fallback, becomes a whiteout NAME.
 * - An opaque directory hides all of what is below it. The kernel marks it
 *   with trusted.overlay.opaque, which a user's fuse-overlayfs cannot read;
 *   fuse-overlayfs marks it with a `.wh..wh..opq` file (plus a `.wh..opq`
 *   whiteout and user.fuseoverlayfs.opaque), which the kernel shows as a
 *   plain file. So every name an opaque dir hides gets an explicit
 *   whiteout, fuse-overlayfs's marker files are dropped, and no dir of a
 *   layer is opaque: the kernel lists a dir that is opaque (so not merged
 *   with anything) straight from the layer, and would show the whiteouts in
 *   it as names that cannot be opened, and a layer that packs a dir but not
 *   all of its entries (commits stack: only what changed) must merge it with
 *   the layers below.
 * - The upper's trusted.overlay.* xattrs (opaque, impure, origin) and
 *   fuse-overlayfs's user.fuseoverlayfs.* stay in the upper: they mean
 *   nothing below an upper, squashfuse 0.1.104 shows trusted.* xattrs of an
 *   image as security.*, which fuse-overlayfs then passes through as
 *   ordinary xattrs of the tree, and user.fuseoverlayfs.opaque in a layer
 *   would make fuse-overlayfs hide the layers below it. The copy leaves
 *   them out (copy-entries.ts).
 *
 * Measured with fuse-overlayfs 1.10, squashfuse 0.1.104, Linux 6.18.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { run } from '../exec/run.js';
import { fsPath } from '../fs/paths.js';
import type { Entry } from '../fs/walk.js';

/** fuse-overlayfs's opaque-dir markers: a plain file and a whiteout of that name. */
export const OPAQUE_MARKERS = new Set(['.wh..wh..opq', '.wh..opq']);

const baseName = (rel: string): string => rel.slice(rel.lastIndexOf('/') + 1);

export const isWhiteout = (e: Entry): boolean => e.type === 'char' && e.rdev === 0;

/** An entry of a fuse-overlayfs upper that is bookkeeping, not content. */
export function isFuseMarker(e: Entry): boolean {
  return OPAQUE_MARKERS.has(baseName(e.path));
}

/**
 * mknod has no Node API, and one mknod process per whiteout costs ~2 ms
 * (843 whiteouts for a day of Gentoo syncs: 1.8 s). So one device is made
 * under a plain temporary name and every whiteout is a hard link to it: a
 * char device 0/0 at a path is a whiteout whatever its link count, to the
 * kernel overlay, fuse-overlayfs and the SquashFS writer alike. link takes
 * binary names; a command line would have to be UTF-8.
 */
export async function makeWhiteouts(stage: string, rels: readonly string[]): Promise<void> {
  if (rels.length === 0) return;
  const temp = '.squashtree-whiteout';
  await run('mknod', ['-m', '000', temp, 'c', '0', '0'], {
    cwd: stage,
    hint: 'the staging filesystem must allow whiteout devices (char 0/0)',
  });
  try {
    for (const rel of rels) await fsp.link(join(stage, temp), fsPath(stage, rel));
  } finally {
    await fsp.rm(join(stage, temp), { force: true });
  }
}
