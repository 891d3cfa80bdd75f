/**
 * Everything the benchmark mounts lives below one temp dir. Teardown stops
 * what is mounted there, deepest first (lazily when a mount stays busy),
 * detaches loop devices whose backing file is in that dir, and deletes it.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { mountsUnder, readMounts } from '../../src/mount/mountinfo.js';
import { run } from './exec.js';

export interface Leftovers {
  mounts: string[];
  loops: string[];
}

async function loopsUnder(dir: string): Promise<{ device: string; backing: string }[]> {
  const out: { device: string; backing: string }[] = [];
  let names: string[];
  try {
    names = await fsp.readdir('/sys/block');
  } catch {
    return out;
  }
  for (const n of names.filter((x) => /^loop\d+$/.test(x))) {
    let backing: string;
    try {
      backing = (await fsp.readFile(join('/sys/block', n, 'loop', 'backing_file'), 'utf8')).trim();
    } catch {
      continue; // not attached
    }
    backing = backing.replace(/ \(deleted\)$/, '');
    if (backing === dir || backing.startsWith(`${dir}/`))
      out.push({ device: `/dev/${n}`, backing });
  }
  return out;
}

/** What is still mounted or attached below dir. */
export async function leftovers(dir: string): Promise<Leftovers> {
  return {
    mounts: mountsUnder(await readMounts(), dir).map((m) => m.mountPoint),
    loops: (await loopsUnder(dir)).map((l) => `${l.device} (${l.backing})`),
  };
}

/** Unmount and detach everything below dir. Never throws; returns what could not be undone. */
export async function teardown(dir: string): Promise<Leftovers> {
  for (let round = 0; round < 4; round++) {
    const mounts = mountsUnder(await readMounts(), dir);
    if (mounts.length === 0) break;
    for (const m of mounts) {
      try {
        await run('umount', round < 2 ? [m.mountPoint] : ['-l', m.mountPoint], {
          evenIfAborted: true,
        });
      } catch {
        // busy or gone: the next round retries, lazily from the third on
      }
    }
  }
  for (const l of await loopsUnder(dir)) {
    try {
      await run('losetup', ['-d', l.device], { evenIfAborted: true });
    } catch {
      // still in use
    }
  }
  return leftovers(dir);
}

/** Teardown, then delete dir unless something is still mounted in it. */
export async function removeWorkDir(dir: string): Promise<Leftovers> {
  const left = await teardown(dir);
  if (left.mounts.length === 0) await fsp.rm(dir, { recursive: true, force: true });
  return left;
}
