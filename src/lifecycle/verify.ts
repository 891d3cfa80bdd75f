/**
 * verify: check every image of a generation: its sha256 against the
 * manifest, its metadata with unsquashfs, and a full read of every file
 * through a read-only mount (a flipped bit in compressed data only shows up
 * as EIO when the data is read).
 */
import { promises as fsp } from 'node:fs';
import { SquashtreeError, errorMessage } from '../errors.js';
import { fsPath, displayPath } from '../fs/paths.js';
import { walk } from '../fs/walk.js';
import { sha256File } from '../fs/hash.js';
import { checkMetadata } from '../image/check.js';
import { mountSquashfs, unmount } from '../mount/mount.js';
import { generation } from '../store/manifest.js';
import { imagePath } from '../store/store.js';
import type { TreeContext } from './context.js';
import { observe, requireManifest } from './observe.js';

export interface ImageVerdict {
  file: string;
  ok: boolean;
  problems: string[];
  filesRead: number;
}

export interface VerifyResult {
  tree: string;
  generation: number;
  ok: boolean;
  images: ImageVerdict[];
}

async function readAll(root: string): Promise<{ files: number; problems: string[] }> {
  const problems: string[] = [];
  let files = 0;
  for (const e of await walk(root)) {
    if (e.type !== 'file') continue;
    files++;
    try {
      await sha256File(fsPath(root, e.path));
    } catch (err) {
      problems.push(`${displayPath(e.path)}: ${errorMessage(err)}`);
      if (problems.length >= 20) break;
    }
  }
  return { files, problems };
}

export async function verifyLocked(ctx: TreeContext, gen?: number): Promise<VerifyResult> {
  const { tree, layout } = ctx;
  const obs = await observe(ctx);
  const m = requireManifest(ctx, obs);
  const g = generation(m, gen ?? m.current);
  const images: ImageVerdict[] = [];
  for (const file of g.images) {
    const path = imagePath(tree.store, file);
    const problems: string[] = [];
    let filesRead = 0;
    const rec = m.images[file];
    try {
      const st = await fsp.stat(path);
      if (rec && st.size !== rec.bytes)
        problems.push(`size ${st.size} bytes, manifest says ${rec.bytes}`);
      if (rec && (await sha256File(path)) !== rec.sha256)
        problems.push('sha256 does not match the manifest');
      await checkMetadata(path);
      await fsp.mkdir(layout.verifyMount, { recursive: true, mode: 0o700 });
      await mountSquashfs(path, layout.verifyMount);
      try {
        const r = await readAll(layout.verifyMount);
        filesRead = r.files;
        problems.push(...r.problems);
      } finally {
        await unmount(layout.verifyMount);
      }
    } catch (e) {
      problems.push(
        e instanceof SquashtreeError
          ? `${e.message}${e.stderr ? `: ${e.stderr.split('\n').slice(-1)[0] ?? ''}` : ''}`
          : errorMessage(e),
      );
    }
    images.push({ file, ok: problems.length === 0, problems, filesRead });
  }
  return { tree: tree.name, generation: g.generation, ok: images.every((i) => i.ok), images };
}
