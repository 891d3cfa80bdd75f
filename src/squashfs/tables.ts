/**
 * A synchronous view of one image for bulk work: its inode and directory
 * tables decoded whole, so inodes and listings are parsed without awaiting a
 * cursor for every field (the async reader spends most of a full walk in
 * promise machinery). Same checks as the reader: a malformed table is a
 * SquashfsFormatError, never a crash.
 */
import {
  checkEntryKind,
  checkName,
  ENTRY_SIZE,
  HEADER_SIZE,
  parseEntry,
  parseHeader,
  type DirEntry,
} from './directory.js';
import { SquashfsFormatError } from './errors.js';
import type { FragmentEntry } from './file-read.js';
import type { SquashfsImage } from './image.js';
import { parseInodeSync, type DirInode, type FileInode, type Inode } from './inode.js';
import type { DecodedTable } from './metadata.js';

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
      if (remaining < HEADER_SIZE) fail(`${remaining} bytes left, too few for a header`);
      const h = parseHeader(t.slice(pos, HEADER_SIZE, byNumber, n), inodeBlocks, fail);
      pos += HEADER_SIZE;
      remaining -= HEADER_SIZE;
      for (let i = 0; i < h.count; i++) {
        if (remaining < ENTRY_SIZE) fail(`${remaining} bytes left, too few for an entry`);
        const raw = t.slice(pos, ENTRY_SIZE, byNumber, n);
        pos += ENTRY_SIZE;
        remaining -= ENTRY_SIZE;
        const e = parseEntry(raw, remaining, fail);
        // A view into the decoded table, which lives as long as this object.
        const name = t.slice(pos, e.nameLen, byNumber, n);
        pos += e.nameLen;
        remaining -= e.nameLen;
        checkName(name, fail);
        out.push({
          name,
          kind: e.kind,
          inodeNumber: h.base + e.delta,
          ref: h.inodeBlock * 65536 + e.offset,
        });
      }
    }
    return out;
  }

  /** An entry's inode, checked against the type the listing gives. */
  entryInode(e: DirEntry): Inode {
    const inode = this.inode(e.ref);
    checkEntryKind(e, inode, this.image.superblock.inodeTableStart);
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
