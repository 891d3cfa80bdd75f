/** A depth-first walk of an image's tree through the async reader. */
import { SquashfsFormatError } from './errors.js';
import type { DirInode, Inode } from './inode.js';
import type { ResolvedDirEntry } from './directory.js';

export interface WalkEntry {
  /** Path relative to the directory the walk started at, '/'-separated bytes. */
  path: Buffer;
  name: Buffer;
  inode: Inode;
  /** 1 for the start directory's entries. */
  depth: number;
}

interface Frame {
  entries: ResolvedDirEntry[];
  i: number;
  path: Buffer;
  depth: number;
}

/**
 * Every entry below a directory, depth first in stored (sorted) order, each
 * directory before its contents. A directory met twice (a cycle or a
 * directory hard link, which SquashFS cannot express) is a format error.
 */
export async function* walkTree(
  readdir: (dir: DirInode) => Promise<ResolvedDirEntry[]>,
  start: DirInode,
  inodeTableStart: number,
): AsyncGenerator<WalkEntry> {
  const seen = new Set<number>([start.ref]);
  const frames: Frame[] = [
    { entries: await readdir(start), i: 0, path: Buffer.alloc(0), depth: 1 },
  ];
  const slash = Buffer.from('/');
  while (frames.length > 0) {
    const f = frames[frames.length - 1];
    if (!f) break;
    const e = f.entries[f.i++];
    if (!e) {
      frames.pop();
      continue;
    }
    const path = f.path.length ? Buffer.concat([f.path, slash, e.name]) : e.name;
    yield { path, name: e.name, inode: e.inode, depth: f.depth };
    if (e.inode.kind === 'dir') {
      if (seen.has(e.inode.ref)) {
        throw new SquashfsFormatError(
          'directory listing',
          `directory inode ${e.inode.number} appears twice in the tree (a cycle)`,
          inodeTableStart + Math.floor(e.inode.ref / 65536),
        );
      }
      seen.add(e.inode.ref);
      frames.push({ entries: await readdir(e.inode), i: 0, path, depth: f.depth + 1 });
    }
  }
}
