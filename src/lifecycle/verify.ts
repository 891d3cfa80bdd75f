/**
 * verify: check every image of a generation: its size and sha256 against
 * the manifest, then a full read of every file and every metadata table
 * with the native reader (src/squashfs), so a flipped bit in compressed data
 * is found without mounting anything and without root. Images whose
 * compressor the reader lacks (lzma) are read through a read-only mount.
 */
import { promises as fsp } from 'node:fs';
import { SquashtreeError, errorMessage } from '../errors.js';
import { fsPath, displayPath } from '../fs/paths.js';
import { walk } from '../fs/walk.js';
import { sha256File } from '../fs/hash.js';
import { checkMetadata } from '../image/check.js';
import { mountSquashfs, unmount } from '../mount/mount.js';
import { generation, readManifest } from '../store/manifest.js';
import { imagePath } from '../store/store.js';
import { SquashfsImage, SquashfsUnsupportedError } from '../squashfs/index.js';
import type { TreeContext } from './context.js';
import { isRoot } from '../mount/engine.js';
import { subjectOf } from './observe.js';
import { refusalFor } from './transitions.js';

export interface ImageVerdict {
  file: string;
  ok: boolean;
  problems: string[];
  filesRead: number;
  /** reader: the native reader; mount: a kernel mount (compressor the reader lacks). */
  method: 'reader' | 'mount';
}

export interface VerifyResult {
  tree: string;
  generation: number;
  ok: boolean;
  images: ImageVerdict[];
}

const LIMIT = 20;

/** Read every entry, xattr and file of an image with the native reader. */
async function readWithReader(path: string): Promise<{ files: number; problems: string[] }> {
  const img = await SquashfsImage.open(path);
  const problems: string[] = [];
  let files = 0;
  try {
    for await (const e of img.walk()) {
      const where = displayPath(e.path.toString('latin1'));
      try {
        await img.xattrs(e.inode);
        if (e.inode.kind !== 'file') continue;
        files++;
        // Reading is the check: every block is decompressed on the way.
        for await (const chunk of img.readFile(e.inode)) if (chunk.length < 0) break;
      } catch (err) {
        problems.push(`${where}: ${errorMessage(err)}`);
        if (problems.length >= LIMIT) break;
      }
    }
  } finally {
    await img.close();
  }
  return { files, problems };
}

/** The same through a read-only mount (root only). */
async function readWithMount(
  path: string,
  mountPoint: string,
): Promise<{ files: number; problems: string[] }> {
  await checkMetadata(path);
  await fsp.mkdir(mountPoint, { recursive: true, mode: 0o700 });
  await mountSquashfs(path, mountPoint);
  const problems: string[] = [];
  let files = 0;
  try {
    for (const e of await walk(mountPoint)) {
      if (e.type !== 'file') continue;
      files++;
      try {
        await sha256File(fsPath(mountPoint, e.path));
      } catch (err) {
        problems.push(`${displayPath(e.path)}: ${errorMessage(err)}`);
        if (problems.length >= LIMIT) break;
      }
    }
  } finally {
    await unmount(mountPoint);
  }
  return { files, problems };
}

/** Read-only, so it takes no lock and needs no root (the store is world-readable). */
export async function verifyTree(ctx: TreeContext, gen?: number): Promise<VerifyResult> {
  const { tree, layout } = ctx;
  const m = await readManifest(tree.store);
  // verify reads only the store: the table's verdict on an uninitialized tree is the only one it needs.
  if (!m) {
    const uninitialized = { state: 'uninitialized', engine: 'none', foreign: false } as const;
    throw refusalFor('verify', uninitialized, subjectOf(ctx));
  }
  const g = generation(m, gen ?? m.current);
  const images: ImageVerdict[] = [];
  for (const file of g.images) {
    const path = imagePath(tree.store, file);
    const problems: string[] = [];
    let filesRead = 0;
    let method: ImageVerdict['method'] = 'reader';
    const rec = m.images[file];
    try {
      const st = await fsp.stat(path);
      if (rec && st.size !== rec.bytes)
        problems.push(`size ${st.size} bytes, manifest says ${rec.bytes}`);
      if (rec && (await sha256File(path)) !== rec.sha256)
        problems.push('sha256 does not match the manifest');
      let r;
      try {
        r = await readWithReader(path);
      } catch (e) {
        if (!(e instanceof SquashfsUnsupportedError) || !isRoot()) throw e;
        method = 'mount';
        r = await readWithMount(path, layout.verifyMount);
      }
      filesRead = r.files;
      problems.push(...r.problems);
    } catch (e) {
      problems.push(
        e instanceof SquashtreeError
          ? `${e.message}${e.stderr ? `: ${e.stderr.split('\n').slice(-1)[0] ?? ''}` : ''}`
          : errorMessage(e),
      );
    }
    images.push({ file, ok: problems.length === 0, problems, filesRead, method });
  }
  return { tree: tree.name, generation: g.generation, ok: images.every((i) => i.ok), images };
}
