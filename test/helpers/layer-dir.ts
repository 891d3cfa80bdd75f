/**
 * A layer made without an overlay (and without root): the difference of two
 * trees on disk as a directory to pack, with whiteouts as mksquashfs pseudo
 * definitions (character devices 0/0).
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';

/** Relative paths of every entry below root, with a type letter. */
async function entries(
  root: string,
  rel = '',
  out = new Map<string, string>(),
): Promise<Map<string, string>> {
  for (const d of await fsp.readdir(join(root, rel), { withFileTypes: true })) {
    const p = rel ? `${rel}/${d.name}` : d.name;
    out.set(p, d.isDirectory() ? 'd' : 'f');
    if (d.isDirectory()) await entries(root, p, out);
  }
  return out;
}

/**
 * The layer that turns tree `a` into tree `b`: what is new or changed in b
 * (directories whose contents changed are carried with it), and a
 * whiteout for what b no longer has.
 */
export async function layerOf(a: string, b: string, layer: string): Promise<string[]> {
  const was = await entries(a);
  const now = await entries(b);
  const whiteouts: string[] = [];
  await fsp.mkdir(layer, { recursive: true });
  for (const [p, kind] of now) {
    const old = was.get(p);
    if (kind === 'd') {
      if (old !== 'd') await fsp.mkdir(join(layer, p), { recursive: true });
      continue;
    }
    const same =
      old === 'f' && (await fsp.readFile(join(a, p))).equals(await fsp.readFile(join(b, p)));
    if (same) continue;
    await fsp.mkdir(join(layer, p, '..'), { recursive: true });
    await fsp.copyFile(join(b, p), join(layer, p));
  }
  for (const [p] of was) {
    if (now.has(p)) continue;
    const parent = p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '';
    if (parent && !now.has(parent)) continue; // under a whiteout already
    await fsp.mkdir(join(layer, parent), { recursive: true });
    whiteouts.push(`${p} c 0 0 0 0 0`);
  }
  return whiteouts;
}
