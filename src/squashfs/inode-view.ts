/**
 * One inode's fields read in place from decoded bytes, into a reused
 * object: bulk readers (the writer's plan, emission and check) visit
 * 200,000 inodes without allocating for each. The same checks as every
 * other inode parse (parseInode and parseInodeSync are built on this).
 *
 * Layout after the 16-byte header (type u16, permissions u16, uid and gid
 * index u16, mtime u32, number u32):
 *   dir 1:  block u32, nlink u32, size u16, offset u16, parent u32
 *   dir 8:  nlink u32, size u32, block u32, parent u32, index count u16,
 *           offset u16, xattr u32; then the directory index
 *   file 2: start u32, fragment u32, offset u32, size u32; then block sizes
 *   file 9: start u64, size u64, sparse u64, nlink u32, fragment u32,
 *           offset u32, xattr u32; then block sizes
 *   symlink 3/10: nlink u32, target size u32, target; (10) xattr u32
 *   device 4,5/11,12: nlink u32, rdev u32; (ext) xattr u32
 *   ipc 6,7/13,14: nlink u32; (ext) xattr u32
 */
import { SquashfsFormatError } from './errors.js';

/** Bytes after the 16-byte header that every inode of a type has (symlinks: before the target). */
const FIXED_SIZE = [0, 16, 16, 8, 8, 8, 4, 4, 24, 40, 8, 12, 12, 8, 8];
const ABSENT = 0xffffffff;

/** The longest symlink target accepted (Linux allows 4095 bytes). */
export const MAX_SYMLINK = 65535;

/** Bytes of an inode of this type up to its variable part (header included). */
export function inodeFixedBytes(type: number): number {
  return 16 + (FIXED_SIZE[type] ?? 0);
}

function xattrId(v: number): number {
  return v === ABSENT ? -1 : v;
}

export class InodeView {
  type = 0;
  permissions = 0;
  uidIndex = 0;
  gidIndex = 0;
  mtime = 0;
  number = 0;
  nlink = 0;
  /** Xattr id, or -1. */
  xattr = -1;
  // Directories.
  dirBlock = 0;
  dirOffset = 0;
  listingSize = 0;
  parent = 0;
  indexCount = 0;
  // Files.
  start = 0;
  size = 0;
  sparse = 0;
  /** Fragment index, or -1 when the file has no tail in a fragment. */
  fragment = -1;
  fragmentOffset = 0;
  blockCount = 0;
  // Symlinks.
  targetLength = 0;
  // Devices.
  rdev = 0;
  /** Where the inode starts in the bytes it was loaded from, and where its variable part starts. */
  pos = 0;
  varPos = 0;

  /** The basic type (1..7). */
  get basic(): number {
    return this.type > 7 ? this.type - 7 : this.type;
  }

  get extended(): boolean {
    return this.type > 7;
  }

  /** A whiteout: a character device 0/0. */
  get whiteout(): boolean {
    return this.basic === 5 && this.rdev === 0;
  }

  /**
   * Read the inode at `pos` of `data` (header, fixed part; for extended
   * symlinks also the xattr word after the target when `data` holds it).
   * `ref` and `at` only name the inode in errors.
   */
  load(
    data: Buffer,
    pos: number,
    blockSize: number,
    inodeCount: number,
    ref: number,
    at: number,
  ): this {
    if (pos + 16 > data.length) this.fail('the inode runs past the end of its table', ref, at);
    const type = data.readUInt16LE(pos);
    if (type < 1 || type > 14) this.fail(`unknown inode type ${type}`, ref, at);
    const number = data.readUInt32LE(pos + 12);
    if (number < 1 || number > inodeCount) {
      this.fail(`inode number ${number} is outside 1..${inodeCount}`, ref, at);
    }
    const fixed = FIXED_SIZE[type] ?? 0;
    if (pos + 16 + fixed > data.length) {
      this.fail('the inode runs past the end of its table', ref, at);
    }
    this.type = type;
    // Only permission bits are stored; the type comes from the inode type.
    this.permissions = data.readUInt16LE(pos + 2) & 0o7777;
    this.uidIndex = data.readUInt16LE(pos + 4);
    this.gidIndex = data.readUInt16LE(pos + 6);
    this.mtime = data.readUInt32LE(pos + 8);
    this.number = number;
    this.pos = pos;
    this.varPos = pos + 16 + fixed;
    // Fields of other kinds keep no stale values from the last load.
    this.xattr = -1;
    this.indexCount = 0;
    this.fragment = -1;
    this.fragmentOffset = 0;
    this.blockCount = 0;
    this.sparse = 0;
    this.targetLength = 0;
    this.rdev = 0;
    const b = pos + 16;
    switch (type) {
      case 1:
        this.dirBlock = data.readUInt32LE(b);
        this.nlink = data.readUInt32LE(b + 4);
        this.listingSize = data.readUInt16LE(b + 8);
        this.dirOffset = data.readUInt16LE(b + 10);
        this.parent = data.readUInt32LE(b + 12);
        break;
      case 8:
        this.nlink = data.readUInt32LE(b);
        this.listingSize = data.readUInt32LE(b + 4);
        this.dirBlock = data.readUInt32LE(b + 8);
        this.parent = data.readUInt32LE(b + 12);
        this.indexCount = data.readUInt16LE(b + 16);
        this.dirOffset = data.readUInt16LE(b + 18);
        this.xattr = xattrId(data.readUInt32LE(b + 20));
        break;
      case 2:
      case 9: {
        const ext = type === 9;
        this.start = ext ? this.u64(data, b, ref, at) : data.readUInt32LE(b);
        this.size = ext ? this.u64(data, b + 8, ref, at) : data.readUInt32LE(b + 12);
        this.sparse = ext ? this.u64(data, b + 16, ref, at) : 0;
        this.nlink = ext ? data.readUInt32LE(b + 24) : 1;
        const fragment = data.readUInt32LE(b + (ext ? 28 : 4));
        const offset = data.readUInt32LE(b + (ext ? 32 : 8));
        if (ext) this.xattr = xattrId(data.readUInt32LE(b + 36));
        const tail = fragment !== ABSENT && this.size % blockSize !== 0;
        if (tail && offset >= blockSize) {
          this.fail(`fragment offset ${offset} is beyond the block size`, ref, at);
        }
        this.fragment = tail ? fragment : -1;
        this.fragmentOffset = tail ? offset : 0;
        this.blockCount = tail
          ? Math.floor(this.size / blockSize)
          : Math.ceil(this.size / blockSize);
        break;
      }
      case 3:
      case 10: {
        this.nlink = data.readUInt32LE(b);
        const len = data.readUInt32LE(b + 4);
        if (len > MAX_SYMLINK) this.fail(`symlink target of ${len} bytes is too long`, ref, at);
        this.targetLength = len;
        if (type === 10 && this.varPos + len + 4 <= data.length) {
          this.xattr = xattrId(data.readUInt32LE(this.varPos + len));
        }
        break;
      }
      case 4:
      case 5:
      case 11:
      case 12:
        this.nlink = data.readUInt32LE(b);
        this.rdev = data.readUInt32LE(b + 4);
        if (type > 7) this.xattr = xattrId(data.readUInt32LE(b + 8));
        break;
      default:
        this.nlink = data.readUInt32LE(b);
        if (type > 7) this.xattr = xattrId(data.readUInt32LE(b + 4));
        break;
    }
    return this;
  }

  private u64(data: Buffer, p: number, ref: number, at: number): number {
    const lo = data.readUInt32LE(p);
    const hi = data.readUInt32LE(p + 4);
    // Above 2^53 a position or size is no longer exact.
    if (hi > 0x1fffff) this.fail(`64-bit value ${hi * 2 ** 32 + lo} is too large`, ref, at);
    return hi * 2 ** 32 + lo;
  }

  private fail(msg: string, ref: number, at: number): never {
    throw new SquashfsFormatError('inode', `${msg} (inode reference 0x${ref.toString(16)})`, at);
  }

  /** Bytes of the whole inode: fixed part and its block list, symlink target and xattr word, or directory index. */
  byteLength(data: Buffer): number {
    switch (this.basic) {
      case 2:
        return this.varPos - this.pos + 4 * this.blockCount;
      case 3:
        return this.varPos - this.pos + this.targetLength + (this.type === 10 ? 4 : 0);
      case 1: {
        let p = this.varPos;
        for (let i = 0; i < this.indexCount; i++) {
          if (p + 12 > data.length) break;
          p += 12 + data.readUInt32LE(p + 8) + 1;
        }
        return p - this.pos;
      }
      default:
        return this.varPos - this.pos;
    }
  }
}
