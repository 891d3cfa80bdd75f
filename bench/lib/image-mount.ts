/**
 * Mounting a fresh mksquashfs image the way squashtree mounts its images,
 * so reads compare images and not mount options: a loop-mounted squashfs
 * with the options of squashtree's own image mounts, a tmpfs upper and an
 * overlay with the options of squashtree's own overlay, both copied from
 * a tree squashtree has mounted (from /proc/self/mountinfo).
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { readMounts, topMountAt, type MountEntry } from '../../src/mount/mountinfo.js';
import { BenchError, run } from './exec.js';

const PATHS = /^(lowerdir|upperdir|workdir|datadir)[+]?=/;

/** Mount options of m, its own and its superblock's, less paths and duplicates. */
function optionsOf(m: MountEntry, drop: RegExp): string {
  const seen = new Set<string>();
  for (const o of `${m.options},${m.superOptions}`.split(',')) {
    if (!o || drop.test(o) || o === 'rw' || o === 'ro') continue;
    seen.add(o);
  }
  return [...seen].join(',');
}

export interface ImageMount {
  tree: string;
  /** Loop devices of this mount, for counting what reads fetched. */
  loops: string[];
  close(): Promise<void>;
}

/** Loop devices (names in /sys/block) whose backing file is `path` or below it. */
export async function loopsBacking(path: string): Promise<string[]> {
  const out: string[] = [];
  for (const n of (await fsp.readdir('/sys/block')).filter((x) => /^loop\d+$/.test(x))) {
    try {
      const b = (await fsp.readFile(join('/sys/block', n, 'loop', 'backing_file'), 'utf8')).trim();
      const file = b.replace(/ \(deleted\)$/, '');
      if (file === path || file.startsWith(`${path}/`)) out.push(n);
    } catch {
      // not attached
    }
  }
  return out;
}

/** Sectors read from these loop devices so far, in bytes. */
export async function loopReadBytes(loops: readonly string[]): Promise<number> {
  let sectors = 0;
  for (const n of loops) {
    try {
      const f = (await fsp.readFile(join('/sys/block', n, 'stat'), 'utf8')).trim().split(/\s+/);
      sectors += Number(f[2] ?? 0);
    } catch {
      // detached meanwhile
    }
  }
  return sectors * 512;
}

/**
 * Mount image (inside dir/) on dir/tree like squashtree mounts the tree at
 * `like` (a squashtree tree that is mounted now, with one squashfs image
 * mounted from below `likeStore`).
 */
export async function mountLike(
  image: string,
  dir: string,
  like: string,
  likeStore: string,
): Promise<ImageMount> {
  const mounts = await readMounts();
  const overlay = topMountAt(mounts, like);
  if (overlay?.fstype !== 'overlay')
    throw new BenchError(`${like} is not an overlay mount (is the tree started?)`);
  const loops = await loopsBacking(likeStore);
  const sq = mounts.find(
    (m) => m.fstype === 'squashfs' && loops.some((l) => m.source === `/dev/${l}`),
  );
  const sqOpts = sq ? optionsOf(sq, /^$/) : 'nodev,nosuid';
  const img = join(dir, 'image');
  const up = join(dir, 'upper');
  const tree = join(dir, 'tree');
  for (const d of [img, up, tree]) await fsp.mkdir(d, { recursive: true });
  await run('mount', ['-t', 'squashfs', '-o', `loop,ro${sqOpts ? `,${sqOpts}` : ''}`, image, img]);
  await run('mount', ['-t', 'tmpfs', '-o', 'mode=0755,size=256m', 'bench-upper', up]);
  await fsp.mkdir(join(up, 'upper'));
  await fsp.mkdir(join(up, 'work'));
  const ovOpts = optionsOf(overlay, PATHS);
  await run('mount', [
    '-t',
    'overlay',
    '-o',
    `lowerdir=${img},upperdir=${up}/upper,workdir=${up}/work${ovOpts ? `,${ovOpts}` : ''}`,
    'overlay',
    tree,
  ]);
  return {
    tree,
    loops: await loopsBacking(image),
    close: async () => {
      for (const m of [tree, up, img]) await run('umount', [m], { evenIfAborted: true });
    },
  };
}
