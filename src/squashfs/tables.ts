/**
 * A synchronous view of one image for bulk work: its inode and directory
 * tables decoded whole, so inodes and listings are parsed without awaiting a
 * cursor for every field (the async reader spends most of a full walk in
 * promise machinery). Same checks as the reader: a malformed table is a
 * SquashfsFormatError, never a crash.
 */
import { checkEntryKind, scanListing, type DirEntry } from './directory.js';
import { SquashfsFormatError } from './errors.js';
import type { FragmentEntry } from './file-read.js';
import type { SquashfsImage } from './image.js';
import {
  InodeView,
  KIND_BY_BASIC_TYPE,
  parseInodeSync,
  type DirInode,
  type FileInode,
  type Inode,
} from './inode.js';
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

  /** The decoded inode table (for layout analysis). */
  get inodeTable(): DecodedTable {
    return this.inodes;
  }

  /** The decoded directory table (for layout analysis). */
  get directoryTable(): DecodedTable {
    return this.dirs;
  }

  get root(): DirInode {
    return this.image.root;
  }

  inode(ref: number): Inode {
    const block = Math.floor(ref / 65536);
    const offset = ref % 65536;
    const table = this.inodes;
    const sb = this.image.superblock;
    const pos = table.at(block, offset, byRef, ref);
    return parseInodeSync(
      table.data,
      pos,
      ref,
      sb.blockSize,
      sb.inodeCount,
      table.tableStart + block,
    );
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
   * How far into each fragment block its tails reach (the largest offset +
   * length of any file of this image, whether a merged view still shows it
   * or not). Tails are stored back to back from offset 0, so this is the
   * block's uncompressed size but for dead bytes after its last tail that
   * no file names: bytes below it that no shown tail covers are dead, even
   * those of files that an earlier merge already dropped.
   */
  fragmentExtents(): Map<number, number> {
    const extents = new Map<number, number>();
    const t = this.inodes;
    const sb = this.image.superblock;
    const v = new InodeView();
    let pos = 0;
    for (let n = 0; n < sb.inodeCount && pos < t.data.length; n++) {
      v.load(t.data, pos, sb.blockSize, sb.inodeCount, pos, t.tableStart);
      if (v.fragment >= 0 && v.basic === 2) {
        const end = v.fragmentOffset + (v.size % sb.blockSize);
        if (end > (extents.get(v.fragment) ?? 0)) extents.set(v.fragment, end);
      }
      pos += v.byteLength(t.data);
    }
    return extents;
  }

  /** A directory's entries in stored order. */
  entries(dir: DirInode): DirEntry[] {
    const out: DirEntry[] = [];
    const remaining = dir.listingSize - 3;
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
    const pos = t.at(dir.dirBlock, dir.dirOffset, byNumber, n);
    const inodeBlocks =
      this.image.superblock.directoryTableStart - this.image.superblock.inodeTableStart;
    scanListing(
      t.data,
      pos,
      dir.listingSize,
      inodeBlocks,
      fail,
      (np, nl, block, off, num, type) => {
        out.push({
          // A view into the decoded table, which lives as long as this object.
          name: t.data.subarray(np, np + nl),
          kind: KIND_BY_BASIC_TYPE[type] ?? 'file',
          inodeNumber: num,
          ref: block * 65536 + off,
        });
      },
    );
    return out;
  }

  /** An entry's inode, checked against the type the listing gives. */
  entryInode(e: DirEntry): Inode {
    const inode = this.inode(e.ref);
    checkEntryKind(e, inode, this.image.superblock.inodeTableStart);
    return inode;
  }
}
