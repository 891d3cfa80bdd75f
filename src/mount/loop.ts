/**
 * Loop devices. `mount -o loop` attaches them with autoclear, so unmounting
 * frees them; this finds the ones a crash left attached to our images.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { run } from '../exec/run.js';

export interface LoopDevice {
  device: string;
  backingFile: string;
  deleted: boolean;
}

export async function listLoops(): Promise<LoopDevice[]> {
  let names: string[];
  try {
    names = await fsp.readdir('/sys/block');
  } catch {
    return [];
  }
  const out: LoopDevice[] = [];
  for (const n of names.filter((x) => /^loop\d+$/.test(x))) {
    try {
      const raw = (
        await fsp.readFile(join('/sys/block', n, 'loop', 'backing_file'), 'utf8')
      ).trim();
      const deleted = raw.endsWith(' (deleted)');
      out.push({ device: `/dev/${n}`, backingFile: deleted ? raw.slice(0, -10) : raw, deleted });
    } catch {
      // Not attached (ENOENT), or being detached right now (ENODEV, ENXIO): not ours to free.
    }
  }
  return out;
}

export async function detachLoop(device: string): Promise<void> {
  await run('losetup', ['-d', device]);
}
