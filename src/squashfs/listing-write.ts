/**
 * Directory listings in the form the kernel reads: runs of entries under
 * headers. A run holds at most 256 entries whose inodes lie in one
 * metadata block of the inode table, with inode numbers within 32767 of
 * the run's base.
 */
import type { MetadataWriter } from './meta-writer.js';

export interface ListingEntry {
  name: Buffer;
  /** Inode reference: (block << 16) | offset. */
  ref: number;
  number: number;
  basicType: number;
}

/** Write a listing straight into the directory table; returns its size in bytes. */
export function writeListing(
  w: MetadataWriter,
  list: readonly ListingEntry[],
  scratch: Buffer,
): number {
  let bytes = 0;
  let i = 0;
  while (i < list.length) {
    const first = list[i];
    if (!first) break;
    const block = Math.floor(first.ref / 65536);
    const base = first.number;
    let j = i;
    while (j < list.length && j - i < 256) {
      const e = list[j];
      if (!e || Math.floor(e.ref / 65536) !== block || Math.abs(e.number - base) > 32767) break;
      j++;
    }
    scratch.writeUInt32LE(j - i - 1, 0);
    scratch.writeUInt32LE(block, 4);
    scratch.writeInt32LE(base, 8);
    w.write(scratch.subarray(0, 12));
    bytes += 12;
    for (let k = i; k < j; k++) {
      const e = list[k];
      if (!e) continue;
      scratch.writeUInt16LE(e.ref % 65536, 0);
      scratch.writeInt16LE(e.number - base, 2);
      scratch.writeUInt16LE(e.basicType, 4);
      scratch.writeUInt16LE(e.name.length - 1, 6);
      w.write(scratch.subarray(0, 8));
      w.write(e.name);
      bytes += 8 + e.name.length;
    }
    i = j;
  }
  return bytes;
}
