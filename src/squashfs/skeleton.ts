/**
 * A scanned directory (dir-scan.ts) described as a SquashFS image of its
 * metadata alone: inodes, listings, ids and xattrs, in metadata blocks
 * stored uncompressed, and every regular file a hole of its size (no data).
 * The writer then takes the directory as one more layer of the stack, read
 * by the same code as every image (overlay semantics, hard links, listings,
 * xattrs, the check), and only its files' data is special: read from the
 * directory and compressed (pack-data.ts).
 *
 * Inodes are numbered depth first (a directory before its contents) and
 * hard links (same device and inode) share one inode, as mksquashfs does.
 */
import type { MetadataCompressor } from './compress.js';
import type { CompressorName } from './decompress.js';
import { COMPRESSORS } from './decompress.js';
import type { DirScan, ScanEntry } from './dir-scan.js';
import { SquashfsWriteError } from './errors.js';
import { writeListing } from './listing-write.js';
import { MetadataWriter, writeLookupTable } from './meta-writer.js';
import { encodeSuperblock, FLAGS, SUPERBLOCK_SIZE } from './superblock.js';
import { XattrTableWriter } from './xattr-write.js';

const ABSENT = 0xffffffff;
const BASIC: Record<ScanEntry['kind'], number> = {
  dir: 1,
  file: 2,
  symlink: 3,
  blockdev: 4,
  chardev: 5,
  fifo: 6,
  socket: 7,
};

export interface Skeleton {
  /** The image's bytes. */
  bytes: Buffer;
  /** Skeleton inode number -> index of its (first) entry in the scan. */
  entryOf: Int32Array;
}

export function compressorId(name: CompressorName): number {
  for (const [id, n] of Object.entries(COMPRESSORS)) if (n === name) return Number(id);
  throw new SquashfsWriteError('unsupported', `unknown compressor ${name}`);
}

const STORED = (name: CompressorName): MetadataCompressor => ({
  name,
  compresses: false,
  compress: () => null,
});

/** SquashFS's device number: 12 bits of major, 20 of minor, as the kernel's new_encode_dev. */
export function encodeDev(major: number, minor: number): number {
  return ((minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) << 12)) >>> 0;
}

export function buildSkeleton(scan: DirScan, name: CompressorName, blockSize: number): Skeleton {
  return new SkeletonWriter(scan, name, blockSize).write();
}

class SkeletonWriter {
  private readonly comp: MetadataCompressor;
  private readonly inodes: MetadataWriter;
  private readonly dirs: MetadataWriter;
  private readonly xattrs: XattrTableWriter;
  private readonly ids = new Map<number, number>();
  /** Per entry: its inode number, and its reference once written (-1 before). */
  private readonly number: Uint32Array;
  private readonly ref: Float64Array;
  private readonly scratch = Buffer.alloc(64);
  private inodeCount = 0;
  private exportRefs: number[] = [];

  constructor(
    private readonly scan: DirScan,
    private readonly name: CompressorName,
    private readonly blockSize: number,
  ) {
    this.comp = STORED(name);
    this.inodes = new MetadataWriter(this.comp);
    this.dirs = new MetadataWriter(this.comp);
    this.xattrs = new XattrTableWriter(this.comp);
    this.number = new Uint32Array(scan.entries.length);
    this.ref = new Float64Array(scan.entries.length).fill(-1);
  }

  /** Numbers depth first, a directory before its contents; hard links share their first name's. */
  private numberAll(): Int32Array {
    const entries = this.scan.entries;
    const links = new Map<string, number>();
    const owner: number[] = [0];
    const stack = [0];
    let next = 1;
    while (stack.length > 0) {
      const i = stack.pop() ?? 0;
      const e = entries[i];
      if (!e) continue;
      if (e.kind !== 'dir' && e.nlink > 1) {
        const key = `${e.dev}:${e.ino}`;
        const first = links.get(key);
        if (first !== undefined) {
          this.number[i] = this.number[first] ?? 0;
          continue;
        }
        links.set(key, i);
      }
      this.number[i] = next;
      owner[next++] = i;
      if (e.kind === 'dir') for (let k = e.first + e.count - 1; k >= e.first; k--) stack.push(k);
    }
    this.inodeCount = next - 1;
    return Int32Array.from(owner);
  }

  write(): Skeleton {
    const entryOf = this.numberAll();
    this.exportRefs = new Array<number>(this.inodeCount + 1).fill(-1);
    this.emitTree();
    const chunks: Buffer[] = [];
    const at = (): number => SUPERBLOCK_SIZE + chunks.reduce((n, c) => n + c.length, 0);
    const inodeTableStart = at();
    chunks.push(...this.inodes.finish());
    const directoryTableStart = at();
    chunks.push(...this.dirs.finish());
    const fragmentTableStart = writeLookupTable(chunks, at(), this.comp, []);
    const exp = Buffer.alloc(8 * this.inodeCount);
    for (let n = 1; n <= this.inodeCount; n++) {
      const r = Math.max(0, this.exportRefs[n] ?? 0);
      exp.writeUInt32LE(r % 2 ** 32, 8 * (n - 1));
      exp.writeUInt32LE(Math.floor(r / 2 ** 32), 8 * (n - 1) + 4);
    }
    const exportTableStart = writeLookupTable(chunks, at(), this.comp, [exp]);
    const idValues = [...this.ids.keys()];
    const idEntries = Buffer.alloc(4 * Math.max(1, idValues.length));
    idValues.forEach((v, i) => idEntries.writeUInt32LE(v >>> 0, 4 * i));
    const idTableStart = writeLookupTable(chunks, at(), this.comp, [idEntries]);
    const xattrTableStart = this.xattrs.finish(chunks, at());
    const bytesUsed = at();
    const sb = encodeSuperblock({
      inodeCount: this.inodeCount,
      modificationTime: this.scan.newest,
      blockSize: this.blockSize,
      blockLog: Math.log2(this.blockSize),
      fragmentCount: 0,
      compressionId: compressorId(this.name),
      flags:
        FLAGS.EXPORTABLE |
        FLAGS.UNCOMPRESSED_INODES |
        FLAGS.UNCOMPRESSED_DATA |
        FLAGS.UNCOMPRESSED_FRAGMENTS |
        (xattrTableStart === null ? FLAGS.NO_XATTRS : FLAGS.UNCOMPRESSED_XATTRS),
      idCount: Math.max(1, idValues.length),
      rootInodeRef: this.ref[0] ?? 0,
      bytesUsed,
      idTableStart,
      xattrTableStart,
      inodeTableStart,
      directoryTableStart,
      fragmentTableStart,
      exportTableStart,
    });
    return { bytes: Buffer.concat([sb, ...chunks]), entryOf };
  }

  /** Post-order: a directory's children, then its listing, then its inode. */
  private emitTree(): void {
    const entries = this.scan.entries;
    const stack: { i: number; next: number }[] = [{ i: 0, next: 0 }];
    while (stack.length > 0) {
      const f = stack[stack.length - 1];
      if (!f) break;
      const d = entries[f.i];
      if (!d) break;
      if (f.next < d.count) {
        const c = d.first + f.next++;
        const e = entries[c];
        if (e?.kind === 'dir') stack.push({ i: c, next: 0 });
        else if (e) this.leaf(c, e);
        continue;
      }
      stack.pop();
      this.dir(f.i, d, stack[stack.length - 1]?.i);
    }
  }

  private idIndex(v: number): number {
    let i = this.ids.get(v);
    if (i === undefined) {
      i = this.ids.size;
      if (i >= 65535) throw new SquashfsWriteError('too-large', 'more than 65,535 uids and gids');
      this.ids.set(v, i);
    }
    return i;
  }

  private header(type: number, e: ScanEntry, i: number, body: number): Buffer {
    const h = this.scratch;
    h.writeUInt16LE(type, 0);
    h.writeUInt16LE(e.permissions, 2);
    h.writeUInt16LE(this.idIndex(e.uid), 4);
    h.writeUInt16LE(this.idIndex(e.gid), 6);
    h.writeUInt32LE(e.mtime, 8);
    h.writeUInt32LE(this.number[i] ?? 0, 12);
    h.fill(0, 16, 16 + body);
    return h;
  }

  private put(i: number, len: number): void {
    const ref = this.inodes.ref();
    this.ref[i] = ref;
    this.exportRefs[this.number[i] ?? 0] = ref;
    this.inodes.writeRange(this.scratch, 0, len);
  }

  private leaf(i: number, e: ScanEntry): void {
    const n = this.number[i] ?? 0;
    // A second name of a hard-linked inode: the inode is already written.
    const written = this.exportRefs[n] ?? -1;
    if (written >= 0) {
      this.ref[i] = written;
      return;
    }
    const xattr = this.xattrs.add(e.xattrs) ?? ABSENT;
    const basic = BASIC[e.kind];
    if (basic === 2) {
      const b = this.header(9, e, i, 40);
      b.writeBigUInt64LE(0n, 16);
      b.writeBigUInt64LE(BigInt(e.size), 24);
      b.writeBigUInt64LE(0n, 32);
      b.writeUInt32LE(e.nlink, 40);
      b.writeUInt32LE(ABSENT, 44);
      b.writeUInt32LE(0, 48);
      b.writeUInt32LE(xattr, 52);
      this.put(i, 56);
      // Every block a hole: the data comes from the directory.
      const zeros = Math.ceil(e.size / this.blockSize);
      for (let k = 0; k < zeros; k += 16) {
        this.inodes.writeRange(ZEROS, 0, 4 * Math.min(16, zeros - k));
      }
    } else if (basic === 3) {
      const target = e.target ?? Buffer.alloc(0);
      const b = this.header(10, e, i, 8);
      b.writeUInt32LE(e.nlink, 16);
      b.writeUInt32LE(target.length, 20);
      this.put(i, 24);
      this.inodes.write(target);
      this.scratch.writeUInt32LE(xattr, 0);
      this.inodes.writeRange(this.scratch, 0, 4);
    } else if (basic === 4 || basic === 5) {
      const b = this.header(basic + 7, e, i, 12);
      b.writeUInt32LE(e.nlink, 16);
      b.writeUInt32LE(encodeDev(e.major, e.minor), 20);
      b.writeUInt32LE(xattr, 24);
      this.put(i, 28);
    } else {
      const b = this.header(basic + 7, e, i, 8);
      b.writeUInt32LE(e.nlink, 16);
      b.writeUInt32LE(xattr, 20);
      this.put(i, 24);
    }
  }

  private dir(i: number, d: ScanEntry, parent: number | undefined): void {
    const entries = this.scan.entries;
    const first = d.first;
    const listed = writeListing(
      this.dirs,
      {
        count: d.count,
        nameData: (k) => entries[first + k]?.name ?? ZEROS,
        namePos: () => 0,
        nameLength: (k) => entries[first + k]?.name.length ?? 0,
        ref: (k) => this.ref[first + k] ?? 0,
        number: (k) => this.number[first + k] ?? 0,
        basicType: (k) => BASIC[entries[first + k]?.kind ?? 'file'],
      },
      this.scratch,
    );
    let subdirs = 0;
    for (let k = first; k < first + d.count; k++) if (entries[k]?.kind === 'dir') subdirs++;
    const xattr = this.xattrs.add(d.xattrs) ?? ABSENT;
    const b = this.header(8, d, i, 24);
    b.writeUInt32LE(2 + subdirs, 16);
    b.writeUInt32LE(listed.bytes + 3, 20);
    b.writeUInt32LE(listed.block, 24);
    b.writeUInt32LE(parent === undefined ? this.inodeCount + 1 : (this.number[parent] ?? 0), 28);
    b.writeUInt16LE(0, 32);
    b.writeUInt16LE(listed.offset, 34);
    b.writeUInt32LE(xattr, 36);
    this.put(i, 40);
  }
}

const ZEROS = Buffer.alloc(64);
