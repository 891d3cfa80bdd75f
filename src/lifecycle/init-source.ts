/**
 * What init checks and does to the directory a tree is made from: it must
 * be a plain directory with nothing of ours mounted on it, an adopted image
 * must be a base (no whiteouts), and --remove-source deletes what the image
 * was verified to hold.
 */
import { promises as fsp, constants as C } from 'node:fs';
import { SquashtreeError } from '../errors.js';
import { displayPath, fsPath, joinRel } from '../fs/paths.js';
import { walk } from '../fs/walk.js';
import { mountSquashfs, unmount } from '../mount/mount.js';
import { readMounts, topMountAt } from '../mount/mountinfo.js';
import { isImageFstype, isOverlayFstype } from '../mount/engine.js';
import { holdsExcluded, isExcluded, skipExcluded } from '../config/exclude.js';
import { isWhiteout } from '../layer/whiteouts.js';

export async function checkDir(dir: string): Promise<void> {
  let st;
  try {
    st = await fsp.lstat(dir);
  } catch {
    throw new SquashtreeError('E_SOURCE', `${dir} does not exist`, {
      path: dir,
      hint: 'give the directory that holds the tree with --dir',
    });
  }
  if (!st.isDirectory())
    throw new SquashtreeError('E_SOURCE', `${dir} is not a directory`, {
      path: dir,
      hint: 'give a directory with --dir',
    });
  const top = topMountAt(await readMounts(), dir);
  if (top && (isOverlayFstype(top.fstype) || isImageFstype(top.fstype))) {
    throw new SquashtreeError('E_MOUNTED_ELSEWHERE', `${dir} has a ${top.fstype} mounted on it`, {
      path: dir,
      hint: 'unmount it first; to move an old squash_portage setup over, see squashtree doctor',
    });
  }
}

/**
 * A char device 0:0 is how overlayfs marks a deletion: packed into a base
 * it would hide its own name once the tree is mounted. Refused as an
 * adopted image's whiteout is, naming the path.
 */
export async function refuseWhiteouts(dir: string, exclude: readonly string[]): Promise<void> {
  const entries = await walk(dir, skipExcluded(exclude));
  const wh = entries.find(isWhiteout);
  if (wh) {
    const path = `${dir}/${displayPath(wh.path)}`;
    throw new SquashtreeError(
      'E_SOURCE',
      `${path} is a character device 0:0, which overlayfs takes for a whiteout: the entry would vanish from the tree`,
      {
        path,
        hint: `remove it (rm '${path}') or move it out of the tree, then run init again; nothing was written`,
      },
    );
  }
}

/** An adopted image is a base: it must not carry overlay whiteouts. */
export async function checkIsBase(
  image: string,
  mountPoint: string,
): Promise<{ files: number; bytes: number }> {
  await fsp.mkdir(mountPoint, { recursive: true, mode: 0o700 });
  await mountSquashfs(image, mountPoint);
  try {
    const entries = await walk(mountPoint);
    const wh = entries.find(isWhiteout);
    if (wh) {
      throw new SquashtreeError(
        'E_IMAGE_UNSAFE',
        `${image} contains an overlay whiteout (${wh.path}); it is a layer, not a base image`,
        {
          path: image,
          hint: 'adopt a complete image (for example a Gentoo repository snapshot), not a layer',
        },
      );
    }
    let files = 0;
    let bytes = 0;
    for (const e of entries) {
      if (e.type !== 'dir') files++;
      if (e.type === 'file') bytes += e.size;
    }
    return { files, bytes };
  } finally {
    await unmount(mountPoint);
  }
}

export async function copyIn(src: string, dest: string): Promise<void> {
  await fsp.copyFile(src, dest, C.COPYFILE_EXCL);
}

/** Delete DIR's contents except excluded paths; returns bytes freed on disk. */
export async function removeSource(dir: string, exclude: readonly string[]): Promise<number> {
  let freed = 0;
  const keep = (rel: string): 'keep' | 'descend' | 'remove' => {
    if (isExcluded(rel, exclude)) return 'keep';
    if (holdsExcluded(rel, exclude)) return 'descend';
    return 'remove';
  };
  const visit = async (rel: string): Promise<void> => {
    for (const n of await fsp.readdir(fsPath(dir, rel), { encoding: 'buffer' })) {
      const child = joinRel(rel, n.toString('latin1'));
      const what = keep(child);
      if (what === 'keep') continue;
      if (what === 'descend') {
        await visit(child);
        continue;
      }
      for (const e of await walk(dir, { under: child })) {
        const st = await fsp.lstat(fsPath(dir, e.path));
        if (st.nlink <= 1 || e.type === 'dir') freed += st.blocks * 512;
      }
      await fsp.rm(fsPath(dir, child), { recursive: true, force: true });
    }
  };
  await visit('');
  return freed;
}
