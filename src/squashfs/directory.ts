/**
 * Directory listings as stored in the directory table: runs of entries
 * under 12-byte headers (count - 1, the inode block every entry of the run
 * shares, a base inode number), each entry 8 bytes (inode offset, inode
 * number delta, basic type, name length - 1) and its name. Parsed here for
 * the async reader (through a cursor) and for bulk readers (from a decoded
 * table), with the same checks.
 */
import { SquashfsFormatError } from './errors.js';
import { KIND_BY_BASIC_TYPE, type DirInode, type Inode, type InodeKind } from './inode.js';
import { METADATA_SIZE, type MetadataCursor } from './metadata.js';

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

export const MAX_NAME = 256;
export const HEADER_SIZE = 12;
export const ENTRY_SIZE = 8;

/** Not empty, no '/' or NUL, not '.' or '..'. */
export function isFileName(name: Buffer): boolean {
  const n = name.length;
  if (n === 0) return false;
  if (name[0] === 0x2e && (n === 1 || (n === 2 && name[1] === 0x2e))) return false;
  for (let i = 0; i < n; i++) {
    const c = name[i];
    if (c === 0x2f || c === 0) return false;
  }
  return true;
}

/** A run's header, checked; `fail` throws with the listing's context. */
export function parseHeader(
  h: Buffer,
  inodeTableSize: number,
  fail: (msg: string) => never,
): { count: number; inodeBlock: number; base: number } {
  const count = h.readUInt32LE(0) + 1;
  const inodeBlock = h.readUInt32LE(4);
  const base = h.readInt32LE(8);
  if (count > 256) fail(`header announces ${count} entries (at most 256)`);
  if (inodeBlock >= inodeTableSize) {
    fail(`header's inode block ${inodeBlock} lies outside the inode table`);
  }
  return { count, inodeBlock, base };
}

/** An entry's fixed part, checked against what is left of the listing. */
export function parseEntry(
  e: Buffer,
  remaining: number,
  fail: (msg: string) => never,
): { offset: number; delta: number; kind: InodeKind; nameLen: number } {
  const offset = e.readUInt16LE(0);
  const delta = e.readInt16LE(2);
  const type = e.readUInt16LE(4);
  const nameLen = e.readUInt16LE(6) + 1;
  if (offset >= METADATA_SIZE) fail(`entry's inode offset ${offset} is invalid`);
  if (type < 1 || type > 7) fail(`entry type ${type} is not a basic inode type`);
  if (nameLen > MAX_NAME) fail(`entry name of ${nameLen} bytes is too long`);
  if (nameLen > remaining) fail('entry name runs past the listing');
  return { offset, delta, kind: KIND_BY_BASIC_TYPE[type] ?? 'file', nameLen };
}

export function checkName(name: Buffer, fail: (msg: string) => never): void {
  if (!isFileName(name)) {
    fail(`entry name ${JSON.stringify(name.toString('latin1'))} is not a file name`);
  }
}

/** An entry's inode must be of the type its listing gives. */
export function checkEntryKind(e: DirEntry, inode: Inode, inodeTableStart: number): void {
  if (inode.kind !== e.kind) {
    throw new SquashfsFormatError(
      'directory listing',
      `entry ${JSON.stringify(e.name.toString('latin1'))} says ${e.kind} but its inode is a ${inode.kind}`,
      inodeTableStart + Math.floor(e.ref / 65536),
    );
  }
}

/** The entries of a listing read through a cursor placed at its start. */
export async function* readListing(
  cur: MetadataCursor,
  dir: DirInode,
  inodeTableSize: number,
): AsyncGenerator<DirEntry> {
  let remaining = dir.listingSize - 3;
  const fail = (msg: string): never => {
    throw new SquashfsFormatError('directory listing', `${msg} (inode ${dir.number})`, cur.block);
  };
  while (remaining > 0) {
    if (remaining < HEADER_SIZE) fail(`${remaining} bytes left, too few for a header`);
    const { count, inodeBlock, base } = parseHeader(
      await cur.read(HEADER_SIZE),
      inodeTableSize,
      fail,
    );
    remaining -= HEADER_SIZE;
    for (let i = 0; i < count; i++) {
      if (remaining < ENTRY_SIZE) fail(`${remaining} bytes left, too few for an entry`);
      remaining -= ENTRY_SIZE;
      const e = parseEntry(await cur.read(ENTRY_SIZE), remaining, fail);
      const name = Buffer.from(await cur.read(e.nameLen));
      remaining -= e.nameLen;
      checkName(name, fail);
      yield {
        name,
        kind: e.kind,
        inodeNumber: base + e.delta,
        ref: inodeBlock * 65536 + e.offset,
      };
    }
  }
}

/** What scanListing reports for each entry: its name's place in the table's bytes and its inode. */
export type ListingVisitor = (
  namePos: number,
  nameLength: number,
  inodeBlock: number,
  inodeOffset: number,
  inodeNumber: number,
  basicType: number,
  /** Where the header of the entry's run starts in data. */
  headerPos: number,
) => void;

/**
 * The entries of a listing held whole in `data` from `pos` (a decoded
 * directory table), without allocating: the checks of readListing, names
 * reported as positions.
 */
export function scanListing(
  data: Buffer,
  pos: number,
  listingSize: number,
  inodeTableSize: number,
  fail: (msg: string) => never,
  visit: ListingVisitor,
): void {
  let remaining = listingSize - 3;
  let p = pos;
  while (remaining > 0) {
    if (remaining < HEADER_SIZE) fail(`${remaining} bytes left, too few for a header`);
    if (p + HEADER_SIZE > data.length) fail('the listing runs past the end of the table');
    const header = p;
    const count = data.readUInt32LE(p) + 1;
    const inodeBlock = data.readUInt32LE(p + 4);
    const base = data.readInt32LE(p + 8);
    if (count > 256) fail(`header announces ${count} entries (at most 256)`);
    if (inodeBlock >= inodeTableSize) {
      fail(`header's inode block ${inodeBlock} lies outside the inode table`);
    }
    p += HEADER_SIZE;
    remaining -= HEADER_SIZE;
    for (let i = 0; i < count; i++) {
      if (remaining < ENTRY_SIZE) fail(`${remaining} bytes left, too few for an entry`);
      if (p + ENTRY_SIZE > data.length) fail('the listing runs past the end of the table');
      const offset = data.readUInt16LE(p);
      const delta = data.readInt16LE(p + 2);
      const type = data.readUInt16LE(p + 4);
      const nameLen = data.readUInt16LE(p + 6) + 1;
      p += ENTRY_SIZE;
      remaining -= ENTRY_SIZE;
      if (offset >= METADATA_SIZE) fail(`entry's inode offset ${offset} is invalid`);
      if (type < 1 || type > 7) fail(`entry type ${type} is not a basic inode type`);
      if (nameLen > MAX_NAME) fail(`entry name of ${nameLen} bytes is too long`);
      if (nameLen > remaining || p + nameLen > data.length)
        fail('entry name runs past the listing');
      if (!isFileNameAt(data, p, nameLen)) {
        fail(
          `entry name ${JSON.stringify(data.toString('latin1', p, p + nameLen))} is not a file name`,
        );
      }
      visit(p, nameLen, inodeBlock, offset, base + delta, type, header);
      p += nameLen;
      remaining -= nameLen;
    }
  }
}

function isFileNameAt(data: Buffer, pos: number, n: number): boolean {
  if (n === 0) return false;
  if (data[pos] === 0x2e && (n === 1 || (n === 2 && data[pos + 1] === 0x2e))) return false;
  for (let i = pos; i < pos + n; i++) {
    const c = data[i];
    if (c === 0x2f || c === 0) return false;
  }
  return true;
}

/** Byte order of two names held in buffers (as strcmp: unsigned bytes, shorter first on a tie). */
export function compareNames(
  a: Buffer,
  aPos: number,
  aLen: number,
  b: Buffer,
  bPos: number,
  bLen: number,
): number {
  const n = Math.min(aLen, bLen);
  for (let i = 0; i < n; i++) {
    const x = a[aPos + i] ?? 0;
    const y = b[bPos + i] ?? 0;
    if (x !== y) return x - y;
  }
  return aLen - bLen;
}

/** A path's components ('/'-separated bytes; empty components dropped). */
export function splitPath(bytes: Buffer): Buffer[] {
  const parts: Buffer[] = [];
  let from = 0;
  for (let i = 0; i <= bytes.length; i++) {
    if (i === bytes.length || bytes[i] === 0x2f) {
      if (i > from) parts.push(bytes.subarray(from, i));
      from = i + 1;
    }
  }
  return parts;
}
