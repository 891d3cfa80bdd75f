/** A generation as a fresh start would show it, mounted on its own beside the tree. */
import { promises as fsp } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

/**
 * Mount the images of a store's current generation read-only in a dir of
 * their own (loop devices and, for more than one image, an overlay), call
 * fn with the merged view, and undo all of it, also when fn fails: what a
 * fresh start of that generation would show, without touching the tree.
 */
export async function withGeneration<T>(
  store: string,
  scratch: string,
  fn: (view: string) => Promise<T>,
): Promise<T> {
  const m = JSON.parse(await fsp.readFile(join(store, 'manifest.json'), 'utf8')) as {
    current: number;
    generations: { generation: number; images: string[] }[];
  };
  const images = m.generations.find((g) => g.generation === m.current)?.images ?? [];
  const mounted: string[] = [];
  try {
    for (const [i, file] of images.entries()) {
      const point = join(scratch, String(i));
      await fsp.mkdir(point, { recursive: true });
      execFileSync('mount', ['-t', 'squashfs', '-o', 'loop,ro', join(store, file), point]);
      mounted.push(point);
    }
    let view = mounted[0] ?? '';
    if (mounted.length > 1) {
      view = join(scratch, 'view');
      await fsp.mkdir(view, { recursive: true });
      const lower = [...mounted].reverse().join(':');
      execFileSync('mount', [
        '-t',
        'overlay',
        'overlay',
        '-o',
        `ro,lowerdir=${lower},redirect_dir=off,index=off,metacopy=off`,
        view,
      ]);
      mounted.push(view);
    }
    return await fn(view);
  } finally {
    for (const point of mounted.reverse()) execFileSync('umount', [point]);
    await fsp.rm(scratch, { recursive: true, force: true });
  }
}
