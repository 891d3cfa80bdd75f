/**
 * A SquashFS 4.0 image opened for reading: lookups, directory listings,
 * stat, xattrs and file contents, read lazily through positional reads with a
 * small cache of metadata and fragment blocks.
 *
 *   const img = await SquashfsImage.open('/path/to/image.sqfs');
 *   const inode = await img.lookup('/etc/passwd');
 *   const st = await img.stat(inode);
 *   for await (const chunk of img.readFile(inode)) process.stdout.write(chunk);
 *   await img.close();
 *
 * Every problem with the image's bytes is a SquashfsFormatError; the reader
 * checks every size, count, offset and reference before it uses it, so a
 * hostile image cannot make it loop, recurse without end or allocate more
 * than a few blocks at a time.
 */
import { parseCompressorOptions, type CompressorOptions } from './compressor-options.js';
import { makeDecompressor, type Decompressor } from './decompress.js';
import {
  checkEntryKind,
  readListing,
  splitPath,
  type DirEntry,
  type ResolvedDirEntry,
} from './directory.js';
import { SquashfsFormatError, SquashfsPathError } from './errors.js';
import { FragmentReader, readFileData, type FragmentEntry } from './file-read.js';
import { parseInode, type DirInode, type Inode } from './inode.js';
import {
  DecodedTable,
  LookupTable,
  METADATA_SIZE,
  MetadataCache,
  MetadataCursor,
  readU64,
} from './metadata.js';
import { BoundedReader, BufferSource, FileSource, type ByteSource } from './source.js';
import { FLAGS, parseSuperblock, SUPERBLOCK_SIZE, type Superblock } from './superblock.js';
import { buildStat, type Stat } from './stat.js';
import { locateTables } from './table-locations.js';
import { walkTree, type WalkEntry } from './walk.js';
import type { XattrReader, Xattr } from './xattr-read.js';

export type { CompressorOptions } from './compressor-options.js';
export type { DirEntry, ResolvedDirEntry } from './directory.js';
export type { FragmentEntry } from './file-read.js';
export type { Xattr } from './xattr-read.js';
export type { Stat } from './stat.js';
export type { WalkEntry } from './walk.js';

export interface OpenOptions {
  /** Metadata blocks kept decoded (8 KiB each). Default 256. */
  metadataCacheBlocks?: number;
  /** Fragment blocks kept decoded (up to a block size each). Default 8. */
  fragmentCacheBlocks?: number;
  /** Most entries readdir() returns for one directory. Default 1,048,576. */
  maxDirEntries?: number;
}

export class SquashfsImage {
  readonly superblock: Superblock;
  /** The root directory's inode. */
  root!: DirInode;

  private readonly reader: BoundedReader;
  private readonly decompressor: Decompressor;
  private readonly meta: MetadataCache;
  private readonly inodeEnd: number;
  private dirEnd: number;
  private ids: number[] = [];
  private fragmentReader!: FragmentReader;
  private exportTable: LookupTable | null = null;
  private xattrReader: XattrReader | null = null;
  private readonly fragmentCapacity: number;
  private readonly maxDirEntries: number;
  private closed = false;

  private constructor(source: ByteSource, sb: Superblock, opts: OpenOptions) {
    this.superblock = sb;
    this.reader = new BoundedReader(source);
    this.reader.limit = sb.bytesUsed;
    this.decompressor = makeDecompressor(sb.compression);
    this.meta = new MetadataCache(this.reader, this.decompressor, opts.metadataCacheBlocks ?? 256);
    this.inodeEnd = sb.directoryTableStart;
    this.dirEnd = sb.bytesUsed;
    this.fragmentCapacity = opts.fragmentCacheBlocks ?? 8;
    this.maxDirEntries = opts.maxDirEntries ?? 1 << 20;
  }

  /** Open an image file (or block device). */
  static async open(path: string | Buffer, opts: OpenOptions = {}): Promise<SquashfsImage> {
    const source = await FileSource.open(path);
    return SquashfsImage.fromSource(source, opts);
  }

  /** Read an image held in memory. */
  static fromBuffer(buf: Buffer, opts: OpenOptions = {}): Promise<SquashfsImage> {
    return SquashfsImage.fromSource(new BufferSource(buf), opts);
  }

  /** Read an image from any ByteSource; the source is closed with the image (or on failure). */
  static async fromSource(source: ByteSource, opts: OpenOptions = {}): Promise<SquashfsImage> {
    try {
      const head = await source.readAt(0, Math.min(SUPERBLOCK_SIZE, source.size));
      const sb = parseSuperblock(head, source.size);
      const img = new SquashfsImage(source, sb, opts);
      await img.init();
      return img;
    } catch (e) {
      await source.close();
      throw e;
    }
  }

  private async init(): Promise<void> {
    const sb = this.superblock;
    const t = await locateTables(this.reader, this.meta, sb);
    this.fragmentReader = new FragmentReader(
      this.reader,
      this.decompressor,
      t.fragments,
      sb,
      this.fragmentCapacity,
    );
    this.exportTable = t.exports;
    this.xattrReader = t.xattrs;
    this.dirEnd = t.directoryEnd;
    const idTable = t.ids;
    if (idTable) {
      const ids: number[] = [];
      for (let i = 0; i < sb.idCount; i++) ids.push((await idTable.entry(i)).readUInt32LE(0));
      this.ids = ids;
    }

    const root = await this.inode(sb.rootInodeRef);
    if (root.kind !== 'dir') {
      throw new SquashfsFormatError(
        'superblock',
        `root inode is a ${root.kind}, not a directory`,
        0,
      );
    }
    this.root = root;
  }

  private check(): void {
    if (this.closed) throw new Error('the SquashFS image is closed');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.fragmentReader.clear();
    await this.reader.source.close();
  }

  /** The compressor options block, when the image has one. */
  async compressorOptions(): Promise<CompressorOptions | null> {
    this.check();
    if (!(this.superblock.flags & FLAGS.COMPRESSOR_OPTIONS)) return null;
    const blk = await this.meta.get(
      SUPERBLOCK_SIZE,
      this.superblock.inodeTableStart,
      'compressor options',
    );
    return parseCompressorOptions(this.superblock.compression, Buffer.from(blk.data));
  }

  /** The inode at a reference ((block << 16) | offset, block relative to the inode table). */
  async inode(ref: number): Promise<Inode> {
    this.check();
    const sb = this.superblock;
    const block = Math.floor(ref / 65536);
    const offset = ref % 65536;
    if (!Number.isSafeInteger(ref) || ref < 0 || block >= this.inodeEnd - sb.inodeTableStart) {
      throw new SquashfsFormatError(
        'inode',
        `reference 0x${ref.toString(16)} lies outside the inode table`,
        sb.inodeTableStart,
      );
    }
    if (offset >= METADATA_SIZE) {
      throw new SquashfsFormatError(
        'inode',
        `reference 0x${ref.toString(16)} has offset ${offset} past a metadata block`,
        sb.inodeTableStart + block,
      );
    }
    const cur = new MetadataCursor(
      this.meta,
      sb.inodeTableStart + block,
      offset,
      this.inodeEnd,
      'inode',
    );
    return parseInode(cur, ref, sb.blockSize, sb.inodeCount);
  }

  /** The inode with this number, through the export table (null when the image has none). */
  async inodeByNumber(n: number): Promise<Inode | null> {
    this.check();
    if (!this.exportTable) return null;
    const at = this.superblock.exportTableStart ?? 0;
    const raw = readU64(await this.exportTable.entry(n - 1), 0, 'export table', at);
    const block = Math.floor(raw / 65536);
    const ref = block * 65536 + (raw % 65536);
    const inode = await this.inode(ref);
    if (inode.number !== n) {
      throw new SquashfsFormatError(
        'export table',
        `entry ${n} points to inode number ${inode.number}`,
        at,
      );
    }
    return inode;
  }

  /** The entries of a directory in stored order, without reading their inodes. */
  async *entries(dir: DirInode): AsyncGenerator<DirEntry> {
    this.check();
    const sb = this.superblock;
    if (dir.listingSize - 3 <= 0) return;
    const start = sb.directoryTableStart + dir.dirBlock;
    const fail = (msg: string): never => {
      throw new SquashfsFormatError('directory listing', `${msg} (inode ${dir.number})`, start);
    };
    if (start >= this.dirEnd) fail(`listing block ${dir.dirBlock} lies outside the table`);
    if (dir.dirOffset >= METADATA_SIZE) fail(`listing offset ${dir.dirOffset} is invalid`);
    const cur = new MetadataCursor(
      this.meta,
      start,
      dir.dirOffset,
      this.dirEnd,
      'directory listing',
      ` (inode ${dir.number})`,
    );
    yield* readListing(cur, dir, this.inodeEnd - sb.inodeTableStart);
  }

  /** The entries of a directory with their inodes (at most maxDirEntries). */
  async readdir(dir: DirInode): Promise<ResolvedDirEntry[]> {
    const out: ResolvedDirEntry[] = [];
    for await (const e of this.entries(dir)) {
      if (out.length >= this.maxDirEntries) {
        throw new SquashfsFormatError(
          'directory listing',
          `inode ${dir.number} has more than ${this.maxDirEntries} entries`,
          this.superblock.directoryTableStart + dir.dirBlock,
        );
      }
      const inode = await this.inode(e.ref);
      checkEntryKind(e, inode, this.superblock.inodeTableStart);
      // A literal, not a spread, so entries share one hidden class (commonFields in inode.ts says why).
      out.push({ name: e.name, kind: e.kind, inodeNumber: e.inodeNumber, ref: e.ref, inode });
    }
    return out;
  }

  /**
   * The inode at a path ('/'-separated, relative to the root; '' and '/' are
   * the root). Symlinks are not followed. Strings are taken as UTF-8; pass a
   * Buffer for names that are not.
   */
  async lookup(path: string | Buffer): Promise<Inode> {
    this.check();
    const bytes = typeof path === 'string' ? Buffer.from(path, 'utf8') : path;
    const shown = bytes.toString('latin1');
    const parts = splitPath(bytes);
    const stack: Inode[] = [this.root];
    for (const part of parts) {
      if (part.length === 1 && part[0] === 0x2e) continue;
      if (part.length === 2 && part[0] === 0x2e && part[1] === 0x2e) {
        if (stack.length > 1) stack.pop();
        continue;
      }
      const cur = stack[stack.length - 1] ?? this.root;
      if (cur.kind !== 'dir') {
        throw new SquashfsPathError('ENOTDIR', shown, `${shown}: a component is not a directory`);
      }
      let found: Inode | null = null;
      for await (const e of this.entries(cur)) {
        if (e.name.equals(part)) {
          found = await this.inode(e.ref);
          checkEntryKind(e, found, this.superblock.inodeTableStart);
          break;
        }
      }
      if (!found)
        throw new SquashfsPathError('ENOENT', shown, `${shown}: no such file or directory`);
      stack.push(found);
    }
    return stack[stack.length - 1] ?? this.root;
  }

  async stat(inode: Inode): Promise<Stat> {
    this.check();
    const xattrs = await this.xattrs(inode);
    return buildStat(inode, this.ids, xattrs, this.superblock.inodeTableStart);
  }

  /** The extended attributes of an inode, in stored order. */
  async xattrs(inode: Inode): Promise<Xattr[]> {
    this.check();
    if (inode.xattrIndex === null) return [];
    if (!this.xattrReader) {
      throw new SquashfsFormatError(
        'inode',
        `inode ${inode.number} has xattrs but the image has no xattr table`,
        this.superblock.inodeTableStart + Math.floor(inode.ref / 65536),
      );
    }
    return this.xattrReader.read(inode, inode.xattrIndex);
  }

  /** Raw bytes of the image, as stored (for copying blocks verbatim), into `into` when given. */
  readRaw(pos: number, len: number, structure = 'image', into?: Buffer): Promise<Buffer> {
    this.check();
    return this.reader.read(pos, len, structure, into);
  }

  /** The id table: uids and gids by index. */
  idList(): readonly number[] {
    return this.ids;
  }

  /**
   * The whole inode or directory table decoded at once (at most maxBytes),
   * for bulk readers; see ImageTables.
   */
  decodeTable(which: 'inode' | 'directory', maxBytes = 512 << 20): Promise<DecodedTable> {
    this.check();
    const sb = this.superblock;
    const [start, end, name] =
      which === 'inode'
        ? [sb.inodeTableStart, this.inodeEnd, 'inode table']
        : [sb.directoryTableStart, this.dirEnd, 'directory table'];
    return DecodedTable.load(this.reader, this.decompressor, start, end, name, maxBytes);
  }

  /** Every fragment table entry: where its block lies and its size word (bit 24: stored uncompressed). */
  async fragmentEntries(): Promise<FragmentEntry[]> {
    this.check();
    const out: FragmentEntry[] = [];
    const count = this.fragmentReader.count;
    for (let i = 0; i < count; i++) out.push(await this.fragmentReader.entry(i));
    return out;
  }

  /** A fragment block, decoded (the tails of small files, back to back). */
  fragmentData(index: number): Promise<Buffer> {
    this.check();
    return this.fragmentReader.block(index);
  }

  /** The contents of a regular file, block by block (do not modify the chunks). */
  async *readFile(inode: Inode): AsyncGenerator<Buffer> {
    this.check();
    if (inode.kind !== 'file') {
      throw new SquashfsPathError(
        inode.kind === 'dir' ? 'EISDIR' : 'EINVAL',
        '',
        `inode ${inode.number} is a ${inode.kind}, not a regular file`,
      );
    }
    yield* readFileData(
      inode,
      this.reader,
      this.decompressor,
      this.meta,
      this.fragmentReader,
      this.superblock,
    );
  }

  /** A whole regular file in one Buffer (refused past maxBytes, default 256 MiB). */
  async readFileAll(inode: Inode, maxBytes = 256 << 20): Promise<Buffer> {
    if (inode.kind === 'file' && inode.size > maxBytes) {
      throw new SquashfsPathError(
        'EFBIG',
        '',
        `inode ${inode.number}: file of ${inode.size} bytes is larger than ${maxBytes}`,
      );
    }
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const c of this.readFile(inode)) {
      chunks.push(c);
      total += c.length;
    }
    return Buffer.concat(chunks, total);
  }

  /** Every entry below a directory, depth first in stored order (see walkTree). */
  walk(start: DirInode = this.root): AsyncGenerator<WalkEntry> {
    this.check();
    return walkTree((d) => this.readdir(d), start, this.superblock.inodeTableStart);
  }
}
