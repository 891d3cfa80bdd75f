/**
 * Excluded paths (distfiles, packages, .git) stay on the real disk: before
 * the overlay goes on, each excluded directory of the plain tree is held by
 * a bind mount in the runtime dir; once the overlay is up it is bound onto
 * the same path in the merged tree. Writes there never reach the upper, so
 * they are neither packed into images nor lost with a tmpfs upper.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { errnoCode } from '../errors.js';
import { mountBind, unmount } from '../mount/mount.js';
import type { TreeContext, Reporter } from './context.js';

export interface Passthrough {
  /** Path relative to the tree. */
  rel: string;
  holder: string;
}

/** Step 1, before the overlay: hold each excluded dir of the plain tree; make its mount point in the upper. */
export async function holdExcluded(ctx: TreeContext, reporter: Reporter): Promise<Passthrough[]> {
  const { tree, layout } = ctx;
  const held: Passthrough[] = [];
  try {
    for (const [i, rel] of tree.exclude.entries()) {
      const under = join(tree.dir, rel);
      let st;
      try {
        st = await fsp.lstat(under);
      } catch (e) {
        if (errnoCode(e) !== 'ENOENT') throw e;
        await fsp.mkdir(under, { recursive: true, mode: 0o755 });
        st = await fsp.lstat(under);
      }
      if (!st.isDirectory()) {
        reporter.warn(
          `excluded path ${under} is not a directory; it is hidden while the tree is mounted`,
        );
        continue;
      }
      const holder = join(layout.passthrough, String(i));
      await fsp.mkdir(holder, { recursive: true, mode: 0o700 });
      await mountBind(under, holder);
      held.push({ rel, holder });
      const point = join(layout.upperData, rel);
      await fsp.mkdir(point, { recursive: true, mode: 0o755 });
      await fsp.chown(point, st.uid, st.gid);
      await fsp.chmod(point, st.mode & 0o7777);
    }
  } catch (e) {
    await releaseHolders(held);
    throw e;
  }
  return held;
}

/** Step 2, after the overlay: put each held dir on its path in the merged tree, drop the holder. */
export async function attachExcluded(
  ctx: TreeContext,
  held: readonly Passthrough[],
): Promise<void> {
  for (const p of held) {
    await mountBind(p.holder, join(ctx.tree.dir, p.rel));
    await unmount(p.holder);
  }
}

export async function releaseHolders(held: readonly Passthrough[]): Promise<void> {
  for (const p of [...held].reverse()) await unmount(p.holder).catch(() => undefined);
}
