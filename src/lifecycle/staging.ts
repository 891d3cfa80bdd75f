/** Where a commit copies what it packs (never packed live). */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { canMountTmpfs, mountTmpfs, unmount } from '../mount/mount.js';
import { STAGE_PREFIX } from '../store/store.js';
import type { TreeContext } from './context.js';
import { teardownUnder } from '../mount/image-stack.js';

export interface Staging {
  dir: string;
  close(): Promise<void>;
}

async function memAvailable(): Promise<number> {
  const m = /MemAvailable:\s+(\d+) kB/.exec(await fsp.readFile('/proc/meminfo', 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/**
 * Where the copy goes: a private tmpfs when it fits easily in memory
 * (creating files on tmpfs is ten times faster than on a disk), the store
 * otherwise.
 */
export async function openStaging(ctx: TreeContext, bytes: number): Promise<Staging> {
  const { layout, tree } = ctx;
  await teardownUnder(layout.stage, tree.store);
  const avail = await memAvailable();
  // A user cannot mount a tmpfs: the copy then goes into the store.
  if (bytes < avail / 4 && canMountTmpfs()) {
    await fsp.mkdir(layout.stage, { recursive: true, mode: 0o700 });
    const size = Math.min(Math.floor(avail / 2), Math.max(64 << 20, 2 * bytes + (64 << 20)));
    await mountTmpfs(layout.stage, String(size));
    return {
      dir: join(layout.stage, 'upper'),
      close: async () => {
        await unmount(layout.stage);
      },
    };
  }
  const dir = join(tree.store, `${STAGE_PREFIX}${process.pid}-${randomBytes(4).toString('hex')}`);
  return {
    dir,
    close: async () => {
      await fsp.rm(dir, { recursive: true, force: true });
      await fsp.rm(`${dir}.list`, { force: true });
    },
  };
}
