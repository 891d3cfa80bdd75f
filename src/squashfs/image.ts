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
import { makeDecompressor, type Decompressor } from './decompress.js';
import { SquashfsFormatError, SquashfsPathError } from './errors.js';
import {
  parseInode,
  S_IFMT,
  KIND_BY_BASIC_TYPE,
  type DirInode,
  type FileInode,
  type Inode,
  type InodeKind,
} from './inode.js';
import {
  decodeBlock,
  DecodedTable,
  LookupTable,
  METADATA_SIZE,
  MetadataCache,
  MetadataCursor,
  readU64,
} from './metadata.js';
import { BoundedReader, BufferSource, FileSource, type ByteSource } from './source.js';
import { FLAGS, parseSuperblock, SUPERBLOCK_SIZE, type Superblock } from './superblock.js';

export interface DirEntry {
  /** The name as stored: bytes, not necessarily UTF-8. */
  name: Buffer;
  kind: InodeKind;
  /** Inode number as recorded in the directory. */
  inodeNumber: number;
  /** Inode reference (see Inode.ref). */
  ref: number;
}

export interface ResolvedDirEntry extends DirEntry {
  inode: Inode;
}

export interface Xattr {
  /** Full name with its prefix ("user.foo"). */
  name: Buffer;
  value: Buffer;
}

export interface Stat {
  kind: InodeKind;
  /** st_mode: type bits | permissions. */
  mode: number;
  permissions: number;
  uid: number;
  gid: number;
  /** Seconds since the epoch. */
  mtime: number;
  /** Files: bytes; directories: the stored listing size; symlinks: target length; others 0. */
  size: number;
  nlink: number;
  inodeNumber: number;
  /** Devices only. */
  rdev?: { major: number; minor: number };
  /** Symlinks only. */
  target?: Buffer;
  xattrs: Xattr[];
}

export interface WalkEntry {
  /** Path relative to the directory the walk started at, '/'-separated bytes. */
  path: Buffer;
  name: Buffer;
  inode: Inode;
  /** 1 for the start directory's entries. */
  depth: number;
}

export interface FragmentEntry {
  /** Absolute position of the fragment block. */
  start: number;
  /** On-disk size in the low 24 bits; bit 24 set when stored uncompressed. */
  word: number;
}

export interface CompressorOptions {
  raw: Buffer;
  /** The fields this reader knows for the image's compressor. */
  fields: Record<string, number>;
}

export interface OpenOptions {
  /** Metadata blocks kept decoded (8 KiB each). Default 256. */
  metadataCacheBlocks?: number;
  /** Fragment blocks kept decoded (up to a block size each). Default 8. */
  fragmentCacheBlocks?: number;
  /** Most entries readdir() returns for one directory. Default 1,048,576. */
  maxDirEntries?: number;
}

const XATTR_PREFIXES = ['user.', 'trusted.', 'security.'];
const MAX_XATTR_COUNT = 65536;
const MAX_XATTR_VALUE = 65536;
const MAX_XATTR_TOTAL = 16 << 20;
const MAX_NAME = 256;

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
  private fragmentTable: LookupTable | null = null;
  private exportTable: LookupTable | null = null;
  private xattrTable: LookupTable | null = null;
  private xattrKvStart = 0;
  private readonly fragments = new Map<number, Promise<Buffer>>();
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
    const dirStart = sb.directoryTableStart;
    const ends: number[] = [sb.bytesUsed];
    const table = (
      name: string,
      listPos: number | null,
      count: number,
      entrySize: number,
      start: number,
    ): LookupTable | null => {
      if (listPos === null) return null;
      const bytes = LookupTable.listBytes(count, entrySize);
      if (listPos + bytes > sb.bytesUsed) {
        throw new SquashfsFormatError(
          name,
          `location list of ${bytes} bytes (${count} entries) runs past the end of the image`,
          listPos,
        );
      }
      ends.push(listPos);
      return new LookupTable(this.reader, this.meta, listPos, count, entrySize, name, start);
    };

    const idTable = table('id table', sb.idTableStart, sb.idCount, 4, dirStart);
    this.fragmentTable = table(
      'fragment table',
      sb.fragmentTableStart,
      sb.fragmentCount,
      16,
      dirStart,
    );
    this.exportTable = table('export table', sb.exportTableStart, sb.inodeCount, 8, dirStart);
    if (sb.xattrTableStart !== null) {
      const at = sb.xattrTableStart;
      const h = await this.reader.read(at, 16, 'xattr table header');
      this.xattrKvStart = readU64(h, 0, 'xattr table header', at);
      if (this.xattrKvStart < dirStart || this.xattrKvStart >= at) {
        throw new SquashfsFormatError(
          'xattr table header',
          `key/value start ${this.xattrKvStart} lies outside ${dirStart}..${at}`,
          at,
        );
      }
      ends.push(this.xattrKvStart);
      this.xattrTable = table('xattr id table', at + 16, h.readUInt32LE(8), 16, this.xattrKvStart);
    }
    // The directory table ends where the first later table begins.
    for (const t of [this.fragmentTable, this.exportTable, idTable]) {
      if (t && t.count > 0) ends.push(await t.blockLocation(0));
    }
    this.dirEnd = Math.min(...ends.filter((v) => v > dirStart));

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
    this.fragments.clear();
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
    const raw = Buffer.from(blk.data);
    const u32 = (o: number): number => (raw.length >= o + 4 ? raw.readUInt32LE(o) : 0);
    const u16 = (o: number): number => (raw.length >= o + 2 ? raw.readUInt16LE(o) : 0);
    const fields: Record<string, number> = {};
    switch (this.superblock.compression) {
      case 'gzip':
        fields.level = u32(0);
        fields.windowSize = u16(4);
        fields.strategies = u16(6);
        break;
      case 'xz':
        fields.dictionarySize = u32(0);
        fields.filters = u32(4);
        break;
      case 'lz4':
        fields.version = u32(0);
        fields.flags = u32(4);
        break;
      case 'zstd':
        fields.level = u32(0);
        break;
      case 'lzo':
        fields.algorithm = u32(0);
        fields.level = u32(4);
        break;
      case 'lzma':
        break;
    }
    return { raw, fields };
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
    let remaining = dir.listingSize - 3;
    if (remaining <= 0) return;
    const start = sb.directoryTableStart + dir.dirBlock;

    const fail = (msg: string, pos: number): never => {
      throw new SquashfsFormatError('directory listing', `${msg} (inode ${dir.number})`, pos);
    };
    if (start >= this.dirEnd) fail(`listing block ${dir.dirBlock} lies outside the table`, start);
    if (dir.dirOffset >= METADATA_SIZE) fail(`listing offset ${dir.dirOffset} is invalid`, start);
    const cur = new MetadataCursor(
      this.meta,
      start,
      dir.dirOffset,
      this.dirEnd,
      'directory listing',
      ` (inode ${dir.number})`,
    );
    const inodeTableSize = this.inodeEnd - sb.inodeTableStart;
    while (remaining > 0) {
      if (remaining < 12) fail(`${remaining} bytes left, too few for a header`, cur.block);
      const h = await cur.read(12);
      remaining -= 12;
      const count = h.readUInt32LE(0) + 1;
      const inodeBlock = h.readUInt32LE(4);
      const base = h.readInt32LE(8);
      if (count > 256) fail(`header announces ${count} entries (at most 256)`, cur.block);
      if (inodeBlock >= inodeTableSize) {
        fail(`header's inode block ${inodeBlock} lies outside the inode table`, cur.block);
      }
      for (let i = 0; i < count; i++) {
        if (remaining < 8) fail(`${remaining} bytes left, too few for an entry`, cur.block);
        const e = await cur.read(8);
        remaining -= 8;
        const offset = e.readUInt16LE(0);
        const delta = e.readInt16LE(2);
        const type = e.readUInt16LE(4);
        const nameLen = e.readUInt16LE(6) + 1;
        if (offset >= METADATA_SIZE) fail(`entry's inode offset ${offset} is invalid`, cur.block);
        if (type < 1 || type > 7) fail(`entry type ${type} is not a basic inode type`, cur.block);
        if (nameLen > MAX_NAME) fail(`entry name of ${nameLen} bytes is too long`, cur.block);
        if (nameLen > remaining) fail('entry name runs past the listing', cur.block);
        const name = Buffer.from(await cur.read(nameLen));
        remaining -= nameLen;
        if (
          name.includes(0x2f) ||
          name.includes(0) ||
          (name.length === 1 && name[0] === 0x2e) ||
          (name.length === 2 && name[0] === 0x2e && name[1] === 0x2e)
        ) {
          fail(
            `entry name ${JSON.stringify(name.toString('latin1'))} is not a file name`,
            cur.block,
          );
        }
        yield {
          name,
          kind: KIND_BY_BASIC_TYPE[type] ?? 'file',
          inodeNumber: base + delta,
          ref: inodeBlock * 65536 + offset,
        };
      }
    }
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
      this.checkEntryType(e, inode);
      out.push({ ...e, inode });
    }
    return out;
  }

  private checkEntryType(e: DirEntry, inode: Inode): void {
    if (inode.kind !== e.kind) {
      throw new SquashfsFormatError(
        'directory listing',
        `entry ${JSON.stringify(e.name.toString('latin1'))} says ${e.kind} but its inode is a ${inode.kind}`,
        this.superblock.inodeTableStart + Math.floor(e.ref / 65536),
      );
    }
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
    const parts: Buffer[] = [];
    let from = 0;
    for (let i = 0; i <= bytes.length; i++) {
      if (i === bytes.length || bytes[i] === 0x2f) {
        if (i > from) parts.push(bytes.subarray(from, i));
        from = i + 1;
      }
    }
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
          this.checkEntryType(e, found);
          break;
        }
      }
      if (!found)
        throw new SquashfsPathError('ENOENT', shown, `${shown}: no such file or directory`);
      stack.push(found);
    }
    return stack[stack.length - 1] ?? this.root;
  }

  private id(index: number, what: string, inode: Inode): number {
    const v = this.ids[index];
    if (v === undefined) {
      throw new SquashfsFormatError(
        'inode',
        `${what} index ${index} is outside the id table (${this.ids.length} ids) (inode ${inode.number})`,
        this.superblock.inodeTableStart + Math.floor(inode.ref / 65536),
      );
    }
    return v;
  }

  async stat(inode: Inode): Promise<Stat> {
    this.check();
    const st: Stat = {
      kind: inode.kind,
      mode: S_IFMT[inode.kind] | inode.permissions,
      permissions: inode.permissions,
      uid: this.id(inode.uidIndex, 'uid', inode),
      gid: this.id(inode.gidIndex, 'gid', inode),
      mtime: inode.mtime,
      size: 0,
      nlink: inode.nlink,
      inodeNumber: inode.number,
      xattrs: await this.xattrs(inode),
    };
    switch (inode.kind) {
      case 'file':
        st.size = inode.size;
        break;
      case 'dir':
        st.size = inode.listingSize;
        break;
      case 'symlink':
        st.size = inode.target.length;
        st.target = inode.target;
        break;
      case 'blockdev':
      case 'chardev':
        st.rdev = { major: inode.major, minor: inode.minor };
        break;
      default:
        break;
    }
    return st;
  }

  /** The extended attributes of an inode, in stored order. */
  async xattrs(inode: Inode): Promise<Xattr[]> {
    this.check();
    if (inode.xattrIndex === null) return [];
    const table = this.xattrTable;
    const at = this.superblock.xattrTableStart ?? -1;
    if (!table) {
      throw new SquashfsFormatError(
        'inode',
        `inode ${inode.number} has xattrs but the image has no xattr table`,
        this.superblock.inodeTableStart + Math.floor(inode.ref / 65536),
      );
    }
    const entry = await table.entry(inode.xattrIndex);
    const ref = readU64(entry, 0, 'xattr id table', at);
    const count = entry.readUInt32LE(8);
    if (count > MAX_XATTR_COUNT) {
      throw new SquashfsFormatError('xattr id table', `${count} xattrs for one inode`, at);
    }
    const end = this.superblock.xattrTableStart ?? 0;
    const cursorAt = (r: number): MetadataCursor => {
      const pos = this.xattrKvStart + Math.floor(r / 65536);
      const off = r % 65536;
      if (pos >= end || off >= METADATA_SIZE) {
        throw new SquashfsFormatError('xattr', `reference 0x${r.toString(16)} is out of range`, at);
      }
      return new MetadataCursor(this.meta, pos, off, end, 'xattr');
    };
    const cur = cursorAt(ref);
    const out: Xattr[] = [];
    let total = 0;
    for (let i = 0; i < count; i++) {
      const k = await cur.read(4);
      const type = k.readUInt16LE(0);
      const prefix = XATTR_PREFIXES[type & 0xff];
      if (prefix === undefined || (type & ~0x1ff) !== 0) {
        throw new SquashfsFormatError(
          'xattr',
          `unknown xattr type 0x${type.toString(16)}`,
          cur.block,
        );
      }
      const name = Buffer.concat([Buffer.from(prefix), await cur.read(k.readUInt16LE(2))]);
      const size = (await cur.read(4)).readUInt32LE(0);
      let value: Buffer;
      if (type & 0x100) {
        if (size !== 8) {
          throw new SquashfsFormatError(
            'xattr',
            `out-of-line value reference of ${size} bytes`,
            cur.block,
          );
        }
        const vref = readU64(await cur.read(8), 0, 'xattr', cur.block);
        const vcur = cursorAt(vref);
        const vsize = (await vcur.read(4)).readUInt32LE(0);
        if (vsize > MAX_XATTR_VALUE) {
          throw new SquashfsFormatError(
            'xattr',
            `value of ${vsize} bytes is too large`,
            vcur.block,
          );
        }
        value = Buffer.from(await vcur.read(vsize));
      } else {
        if (size > MAX_XATTR_VALUE) {
          throw new SquashfsFormatError('xattr', `value of ${size} bytes is too large`, cur.block);
        }
        value = Buffer.from(await cur.read(size));
      }
      total += name.length + value.length;
      if (total > MAX_XATTR_TOTAL) {
        throw new SquashfsFormatError('xattr', `xattrs of inode ${inode.number} are too large`, at);
      }
      out.push({ name, value });
    }
    return out;
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
    return which === 'inode'
      ? DecodedTable.load(
          this.reader,
          this.decompressor,
          sb.inodeTableStart,
          this.inodeEnd,
          'inode table',
          maxBytes,
        )
      : DecodedTable.load(
          this.reader,
          this.decompressor,
          sb.directoryTableStart,
          this.dirEnd,
          'directory table',
          maxBytes,
        );
  }

  /** Every fragment table entry: where its block lies and its size word (bit 24: stored uncompressed). */
  async fragmentEntries(): Promise<FragmentEntry[]> {
    this.check();
    const out: FragmentEntry[] = [];
    const count = this.fragmentTable?.count ?? 0;
    for (let i = 0; i < count; i++) out.push(await this.fragmentEntry(i));
    return out;
  }

  /** One fragment table entry, checked: a valid size word, a block inside the image. */
  private async fragmentEntry(index: number): Promise<FragmentEntry> {
    const table = this.fragmentTable;
    const at = this.superblock.fragmentTableStart ?? -1;
    if (!table)
      throw new SquashfsFormatError('fragment table', 'the image has no fragment table', at);
    const e = await table.entry(index);
    const start = readU64(e, 0, 'fragment table', at);
    const word = e.readUInt32LE(8);
    const size = word & 0xffffff;
    if (word & 0xfe000000 || size === 0 || size > this.superblock.blockSize) {
      throw new SquashfsFormatError(
        'fragment table',
        `fragment ${index} has invalid size word 0x${word.toString(16)}`,
        at,
      );
    }
    if (start + size > this.superblock.bytesUsed) {
      throw new SquashfsFormatError(
        'fragment table',
        `fragment ${index} (${size} bytes at ${start}) lies outside the image`,
        at,
      );
    }
    return { start, word };
  }

  /** A fragment block, decoded (the tails of small files, back to back). */
  fragmentData(index: number): Promise<Buffer> {
    this.check();
    return this.fragmentBlock(index);
  }

  /** The fragment block with this index, decoded. */
  private fragmentBlock(index: number): Promise<Buffer> {
    const hit = this.fragments.get(index);
    if (hit) {
      this.fragments.delete(index);
      this.fragments.set(index, hit);
      return hit;
    }
    const p = this.loadFragment(index);
    this.fragments.set(index, p);
    p.catch(() => this.fragments.delete(index));
    if (this.fragments.size > this.fragmentCapacity) {
      const oldest = this.fragments.keys().next().value;
      if (oldest !== undefined) this.fragments.delete(oldest);
    }
    return p;
  }

  private async loadFragment(index: number): Promise<Buffer> {
    const { start, word } = await this.fragmentEntry(index);
    const size = word & 0xffffff;
    const raw = await this.reader.read(start, size, 'fragment block');
    return decodeBlock(
      this.decompressor,
      raw,
      (word & 0x1000000) === 0,
      this.superblock.blockSize,
      'fragment block',
      start,
    );
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
    const bs = this.superblock.blockSize;
    const list = new MetadataCursor(
      this.meta,
      inode.blockListBlock,
      inode.blockListOffset,
      this.inodeEnd,
      'block list',
      ` (inode ${inode.number})`,
    );
    let pos = inode.blocksStart;
    let i = 0;
    while (i < inode.blockCount) {
      const n = Math.min(2048, inode.blockCount - i);
      const sizes = await list.read(n * 4);
      for (let j = 0; j < n; j++, i++) {
        yield await this.dataBlock(inode, i, sizes.readUInt32LE(j * 4), pos);
        pos += sizes.readUInt32LE(j * 4) & 0xffffff;
      }
    }
    if (inode.fragment !== null) {
      const tail = inode.size % bs;
      const frag = await this.fragmentBlock(inode.fragment);
      if (inode.fragmentOffset + tail > frag.length) {
        throw new SquashfsFormatError(
          'fragment block',
          `tail of inode ${inode.number} (${tail} bytes at ${inode.fragmentOffset}) lies outside the ${frag.length}-byte fragment ${inode.fragment}`,
          -1,
        );
      }
      yield Buffer.from(frag.subarray(inode.fragmentOffset, inode.fragmentOffset + tail));
    }
  }

  private async dataBlock(inode: FileInode, i: number, word: number, pos: number): Promise<Buffer> {
    const bs = this.superblock.blockSize;
    const last = i === inode.blockCount - 1 && inode.fragment === null;
    const expected = last ? inode.size - i * bs : bs;
    const size = word & 0xffffff;
    if (word & 0xfe000000 || size > bs) {
      throw new SquashfsFormatError(
        'data block',
        `block ${i} of inode ${inode.number} has invalid size word 0x${word.toString(16)}`,
        pos,
      );
    }
    if (size === 0) return Buffer.alloc(expected); // sparse
    const raw = await this.reader.read(pos, size, 'data block');
    const data = await decodeBlock(
      this.decompressor,
      raw,
      (word & 0x1000000) === 0,
      expected,
      'data block',
      pos,
    );
    if (data.length > expected) {
      throw new SquashfsFormatError(
        'data block',
        `block ${i} of inode ${inode.number} holds ${data.length} bytes, expected ${expected}`,
        pos,
      );
    }
    if (data.length < expected) {
      if (last) {
        throw new SquashfsFormatError(
          'data block',
          `last block of inode ${inode.number} holds ${data.length} bytes, expected ${expected}`,
          pos,
        );
      }
      // A short block other than the last is padded with zeros.
      return Buffer.concat([data, Buffer.alloc(expected - data.length)], expected);
    }
    return data;
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

  /**
   * Every entry below a directory, depth first in stored (sorted) order, each
   * directory before its contents. A directory met twice (a cycle or a
   * directory hard link, which SquashFS cannot express) is a format error.
   */
  async *walk(start: DirInode = this.root): AsyncGenerator<WalkEntry> {
    this.check();
    const seen = new Set<number>([start.ref]);
    interface Frame {
      entries: ResolvedDirEntry[];
      i: number;
      path: Buffer;
      depth: number;
    }
    const frames: Frame[] = [
      { entries: await this.readdir(start), i: 0, path: Buffer.alloc(0), depth: 1 },
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
            this.superblock.inodeTableStart + Math.floor(e.inode.ref / 65536),
          );
        }
        seen.add(e.inode.ref);
        frames.push({ entries: await this.readdir(e.inode), i: 0, path, depth: f.depth + 1 });
      }
    }
  }
}
