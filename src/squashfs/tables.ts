/**
 * A synchronous view of one image for bulk work: its inode and directory
 * tables decoded whole, so inodes and listings are parsed without awaiting a
 * cursor for every field (the async reader spends most of a full walk in
 * promise machinery). Same checks as the reader: a malformed table is a
 * SquashfsFormatError, never a crash.
 */
import { SquashfsFormatError } from './errors.js';
import type { FragmentEntry, SquashfsImage } from './image.js';
import {
  KIND_BY_BASIC_TYPE,
  parseInodeSync,
  type DirInode,
  type FileInode,
  type Inode,
} from './inode.js';
import { METADATA_SIZE, type DecodedTable } from './metadata.js';
import type { DirEntry } from './image.js';

const MAX_NAME = 256;
const byRef = (ref: number): string => ` (inode reference 0x${ref.toString(16)})`;
const byNumber = (n: number): string => ` (inode ${n})`;

export class ImageTables {
  private constructor(
    readonly image: SquashfsImage,
    private readonly inodes: DecodedTable,
    private readonly dirs: DecodedTable,
    readonly fragments: readonly FragmentEntry[],
  ) {}

  static async load(image: SquashfsImage): Promise<ImageTables> {
    const inodes = await image.decodeTable('inode');
    const dirs = await image.decodeTable('directory');
    const fragments = await image.fragmentEntries();
    return new ImageTables(image, inodes, dirs, fragments);
  }

  get root(): DirInode {
    return this.image.root;
  }

  inode(ref: number): Inode {
    const block = Math.floor(ref / 65536);
    const offset = ref % 65536;
    const table = this.inodes;
    const bytes = new TableBytes(table, table.at(block, offset, byRef, ref), ref);
    const sb = this.image.superblock;
    return parseInodeSync(bytes, ref, sb.blockSize, sb.inodeCount, table.tableStart + block);
  }

  /** The raw block size words of a file (u32 LE each), as stored. */
  blockWords(file: FileInode): Buffer {
    return this.inodes.slice(file.blockListOffset, file.blockCount * 4, byNumber, file.number);
  }

  /** Bytes a file's data blocks take on disk (from blocksStart on). */
  storedBytes(file: FileInode): number {
    const words = this.blockWords(file);
    const bs = this.image.superblock.blockSize;
    let n = 0;
    for (let i = 0; i < words.length; i += 4) {
      const w = words.readUInt32LE(i);
      const size = w & 0xffffff;
      if (w & 0xfe000000 || size > bs) {
        throw new SquashfsFormatError(
          'block list',
          `block ${i / 4} of inode ${file.number} has invalid size word 0x${w.toString(16)}`,
          this.inodes.tableStart,
        );
      }
      n += size;
    }
    if (file.blocksStart + n > this.image.superblock.bytesUsed) {
      throw new SquashfsFormatError(
        'data block',
        `the blocks of inode ${file.number} run past the end of the image`,
        file.blocksStart,
      );
    }
    return n;
  }

  /**
   * Uncompressed bytes each fragment block holds, from a linear scan of the
   * inode table (every file of this image, whether a merged view still
   * shows it or not): with the bytes still in use, how much of a block is
   * dead.
   */
  fragmentTails(): Map<number, number> {
    const tails = new Map<number, number>();
    const t = this.inodes;
    const sb = this.image.superblock;
    const bytes = new TableBytes(t, 0, 0);
    for (let n = 0; n < sb.inodeCount && bytes.pos < t.data.length; n++) {
      const inode = parseInodeSync(bytes, bytes.pos, sb.blockSize, sb.inodeCount, t.tableStart);
      if (inode.kind === 'file') {
        bytes.pos += inode.blockCount * 4;
        if (inode.fragment !== null) {
          tails.set(inode.fragment, (tails.get(inode.fragment) ?? 0) + (inode.size % sb.blockSize));
        }
      } else if (inode.kind === 'dir') {
        // Extended directories carry their index after the inode.
        for (let i = 0; i < inode.indexCount; i++) bytes.read(bytes.read(12).readUInt32LE(8) + 1);
      }
    }
    return tails;
  }

  /** A directory's entries in stored order. */
  entries(dir: DirInode): DirEntry[] {
    const out: DirEntry[] = [];
    let remaining = dir.listingSize - 3;
    if (remaining <= 0) return out;
    const n = dir.number;
    const t = this.dirs;
    const fail = (msg: string): never => {
      throw new SquashfsFormatError(
        'directory listing',
        `${msg}${byNumber(n)}`,
        t.tableStart + dir.dirBlock,
      );
    };
    let pos = t.at(dir.dirBlock, dir.dirOffset, byNumber, n);
    const inodeBlocks =
      this.image.superblock.directoryTableStart - this.image.superblock.inodeTableStart;
    while (remaining > 0) {
      if (remaining < 12) fail(`${remaining} bytes left, too few for a header`);
      const h = t.slice(pos, 12, byNumber, n);
      pos += 12;
      remaining -= 12;
      const count = h.readUInt32LE(0) + 1;
      const inodeBlock = h.readUInt32LE(4);
      const base = h.readInt32LE(8);
      if (count > 256) fail(`header announces ${count} entries (at most 256)`);
      if (inodeBlock >= inodeBlocks)
        fail(`header's inode block ${inodeBlock} lies outside the inode table`);
      for (let i = 0; i < count; i++) {
        if (remaining < 8) fail(`${remaining} bytes left, too few for an entry`);
        const e = t.slice(pos, 8, byNumber, n);
        pos += 8;
        remaining -= 8;
        const offset = e.readUInt16LE(0);
        const delta = e.readInt16LE(2);
        const type = e.readUInt16LE(4);
        const nameLen = e.readUInt16LE(6) + 1;
        if (offset >= METADATA_SIZE) fail(`entry's inode offset ${offset} is invalid`);
        if (type < 1 || type > 7) fail(`entry type ${type} is not a basic inode type`);
        if (nameLen > MAX_NAME) fail(`entry name of ${nameLen} bytes is too long`);
        if (nameLen > remaining) fail('entry name runs past the listing');
        // A view into the decoded table, which lives as long as this object.
        const name = t.slice(pos, nameLen, byNumber, n);
        pos += nameLen;
        remaining -= nameLen;
        if (!isFileName(name)) {
          fail(`entry name ${JSON.stringify(name.toString('latin1'))} is not a file name`);
        }
        out.push({
          name,
          kind: KIND_BY_BASIC_TYPE[type] ?? 'file',
          inodeNumber: base + delta,
          ref: inodeBlock * 65536 + offset,
        });
      }
    }
    return out;
  }

  /** An entry's inode, checked against the type the listing gives. */
  entryInode(e: DirEntry): Inode {
    const inode = this.inode(e.ref);
    if (inode.kind !== e.kind) {
      throw new SquashfsFormatError(
        'directory listing',
        `entry ${JSON.stringify(e.name.toString('latin1'))} says ${e.kind} but its inode is a ${inode.kind}`,
        this.image.superblock.inodeTableStart + Math.floor(e.ref / 65536),
      );
    }
    return inode;
  }
}

/** Sequential reads from a decoded table, for parseInodeSync. */
class TableBytes {
  constructor(
    private readonly table: DecodedTable,
    public pos: number,
    private readonly ref: number,
  ) {}

  read(n: number): Buffer {
    const b = this.table.slice(this.pos, n, byRef, this.ref);
    this.pos += n;
    return b;
  }
}

/** Not empty, no '/' or NUL, not '.' or '..'. */
function isFileName(name: Buffer): boolean {
  const n = name.length;
  if (n === 0) return false;
  if (name[0] === 0x2e && (n === 1 || (n === 2 && name[1] === 0x2e))) return false;
  for (let i = 0; i < n; i++) {
    const c = name[i];
    if (c === 0x2f || c === 0) return false;
  }
  return true;
}
