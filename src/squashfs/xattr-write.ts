/**
 * The xattr tables the writer makes: key/value pairs in metadata blocks
 * (written as inodes ask for them, each distinct set once), an id table of
 * 16-byte entries (where a set starts, how many pairs, their size), and the
 * 16-byte header followed by the id table's block locations.
 */
import type { MetadataCompressor } from './compress.js';
import { MetadataWriter } from './meta-writer.js';
import type { Xattr } from './xattr-read.js';

const PREFIXES: readonly [number, Buffer][] = [
  [0, Buffer.from('user.')],
  [1, Buffer.from('trusted.')],
  [2, Buffer.from('security.')],
];

/** One pair in the on-disk form (type, name without its prefix, value inline); null for an unknown prefix. */
export function encodeXattr(x: Xattr): Buffer | null {
  for (const [type, prefix] of PREFIXES) {
    if (x.name.length > prefix.length && prefix.equals(x.name.subarray(0, prefix.length))) {
      const key = x.name.subarray(prefix.length);
      const b = Buffer.alloc(4 + key.length + 4 + x.value.length);
      b.writeUInt16LE(type, 0);
      b.writeUInt16LE(key.length, 2);
      key.copy(b, 4);
      b.writeUInt32LE(x.value.length, 4 + key.length);
      x.value.copy(b, 8 + key.length);
      return b;
    }
  }
  return null;
}

export class XattrTableWriter {
  private readonly kv: MetadataWriter;
  private readonly entries: Buffer[] = [];
  private readonly known = new Map<string, number>();

  constructor(private readonly comp: MetadataCompressor) {
    this.kv = new MetadataWriter(comp);
  }

  /** The id of this set of pairs (stored once per distinct set), or null when none can be stored. */
  add(kept: readonly Xattr[]): number | null {
    const encoded = kept.map(encodeXattr).filter((b): b is Buffer => b !== null);
    if (encoded.length === 0) return null;
    const key = kept.map((x) => `${x.name.toString('hex')}=${x.value.toString('hex')}`).join(',');
    const known = this.known.get(key);
    if (known !== undefined) return known;
    const ref = this.kv.ref();
    let size = 0;
    for (const enc of encoded) {
      this.kv.write(enc);
      size += enc.length;
    }
    const e = Buffer.alloc(16);
    e.writeBigUInt64LE(BigInt(ref), 0);
    e.writeUInt32LE(encoded.length, 8);
    e.writeUInt32LE(size, 12);
    const id = this.entries.length;
    this.entries.push(e);
    this.known.set(key, id);
    return id;
  }

  get count(): number {
    return this.entries.length;
  }

  /** Append the tables to chunks, which start at `start`; returns the xattr table's position, or null without xattrs. */
  finish(chunks: Buffer[], start: number): number | null {
    if (this.entries.length === 0) return null;
    let at = start;
    const push = (bs: readonly Buffer[]): void => {
      for (const b of bs) {
        chunks.push(b);
        at += b.length;
      }
    };
    const kvStart = at;
    push(this.kv.finish());
    const idStart = at;
    const w = new MetadataWriter(this.comp);
    for (const e of this.entries) w.write(e);
    push(w.finish());
    const tableStart = at;
    const head = Buffer.alloc(16);
    head.writeBigUInt64LE(BigInt(kvStart), 0);
    head.writeUInt32LE(this.entries.length, 8);
    push([head, ...w.blockStarts.map((s) => u64(idStart + s))]);
    return tableStart;
  }
}

export function u64(v: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(v), 0);
  return b;
}
