/**
 * Directory listings in the form the kernel reads: runs of entries under
 * headers. A run holds at most 256 entries whose inodes lie in one
 * metadata block of the inode table, with inode numbers within 32767 of
 * the run's base. A listing longer than a metadata block gets a directory
 * index, as mksquashfs writes it: a new run (and an index entry naming its
 * first entry) whenever the bytes since the last indexed run would pass
 * 8 KiB, so that a lookup (fs/squashfs/namei.c) reads the index, then one
 * or two blocks of the listing, instead of the listing from its start.
 */
import type { MetadataWriter } from './meta-writer.js';
import { METADATA_SIZE } from './metadata.js';

/** The entries of a listing, read by position (no object per entry). */
export interface ListingSource {
  readonly count: number;
  /** Entry i's name: bytes [namePos, namePos + nameLength) of nameData. */
  nameData(i: number): Buffer;
  namePos(i: number): number;
  nameLength(i: number): number;
  /** Its inode reference ((block << 16) | offset), number and basic type. */
  ref(i: number): number;
  number(i: number): number;
  basicType(i: number): number;
}

export interface WrittenListing {
  /** Listing block (relative to the directory table) and offset in it. */
  block: number;
  offset: number;
  /** Bytes of the listing. */
  bytes: number;
  /** The directory index, as stored after the extended directory inode (empty: none). */
  index: Buffer;
  indexCount: number;
}

const HEADER = 12;
const ENTRY = 8;

/** Write a listing straight into the directory table. */
export function writeListing(
  w: MetadataWriter,
  list: ListingSource,
  scratch: Buffer,
): WrittenListing {
  const at = w.position();
  const start = w.uncompressed;
  const index: { at: number; name: Buffer }[] = [];
  const n = list.count;
  let bytes = 0;
  let lastIndexed = 0;
  let i = 0;
  while (i < n) {
    const firstLen = list.nameLength(i);
    if (i > 0 && bytes + ENTRY + firstLen - lastIndexed > METADATA_SIZE) {
      const p = list.namePos(i);
      index.push({ at: bytes, name: Buffer.from(list.nameData(i).subarray(p, p + firstLen)) });
      lastIndexed = bytes;
    }
    const block = Math.floor(list.ref(i) / 65536);
    const base = list.number(i);
    let run = bytes + HEADER;
    let j = i;
    while (j < n && j - i < 256) {
      if (Math.floor(list.ref(j) / 65536) !== block || Math.abs(list.number(j) - base) > 32767) {
        break;
      }
      const len = list.nameLength(j);
      if (j > i && run + ENTRY + len - lastIndexed > METADATA_SIZE) break;
      run += ENTRY + len;
      j++;
    }
    scratch.writeUInt32LE(j - i - 1, 0);
    scratch.writeUInt32LE(block, 4);
    scratch.writeInt32LE(base, 8);
    w.writeRange(scratch, 0, HEADER);
    for (let k = i; k < j; k++) {
      const len = list.nameLength(k);
      scratch.writeUInt16LE(list.ref(k) % 65536, 0);
      scratch.writeInt16LE(list.number(k) - base, 2);
      scratch.writeUInt16LE(list.basicType(k), 4);
      scratch.writeUInt16LE(len - 1, 6);
      w.writeRange(scratch, 0, ENTRY);
      const p = list.namePos(k);
      w.writeRange(list.nameData(k), p, p + len);
    }
    bytes = run;
    i = j;
  }
  return {
    block: at.block,
    offset: at.offset,
    bytes,
    index: encodeIndex(w, start, index),
    indexCount: index.length,
  };
}

/** Index entries: listing offset of the run, the block that holds it, the first name's length - 1, the name. */
function encodeIndex(
  w: MetadataWriter,
  start: number,
  index: readonly { at: number; name: Buffer }[],
): Buffer {
  if (index.length === 0) return EMPTY;
  const size = index.reduce((n, x) => n + HEADER + x.name.length, 0);
  const out = Buffer.alloc(size);
  let pos = 0;
  for (const x of index) {
    out.writeUInt32LE(x.at, pos);
    out.writeUInt32LE(w.blockStartAt(start + x.at), pos + 4);
    out.writeUInt32LE(x.name.length - 1, pos + 8);
    x.name.copy(out, pos + HEADER);
    pos += HEADER + x.name.length;
  }
  return out;
}

const EMPTY = Buffer.alloc(0);
