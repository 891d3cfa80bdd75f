/**
 * Reading extended attributes: the xattr id table (per id: where its
 * key/value pairs start, how many) and the key/value metadata blocks, with
 * out-of-line values (type bit 0x100: the value is a reference to a value
 * stored elsewhere in the same blocks).
 */
import { SquashfsFormatError } from './errors.js';
import type { Inode } from './inode.js';
import {
  LookupTable,
  METADATA_SIZE,
  MetadataCursor,
  readU64,
  type MetadataCache,
} from './metadata.js';
import type { BoundedReader } from './source.js';

export interface Xattr {
  /** Full name with its prefix ("user.foo"). */
  name: Buffer;
  value: Buffer;
}

export const XATTR_PREFIXES = ['user.', 'trusted.', 'security.'];
const MAX_XATTR_COUNT = 65536;
const MAX_XATTR_VALUE = 65536;
const MAX_XATTR_TOTAL = 16 << 20;

export class XattrReader {
  private constructor(
    private readonly meta: MetadataCache,
    private readonly table: LookupTable,
    /** Where the key/value blocks start. */
    readonly kvStart: number,
    /** The xattr table header's position, which ends the key/value blocks. */
    private readonly at: number,
  ) {}

  /** The table whose 16-byte header is at `at`; key/value blocks lie between lowest and it. */
  static async open(
    reader: BoundedReader,
    meta: MetadataCache,
    at: number,
    lowest: number,
  ): Promise<XattrReader> {
    const h = await reader.read(at, 16, 'xattr table header');
    const kvStart = readU64(h, 0, 'xattr table header', at);
    if (kvStart < lowest || kvStart >= at) {
      throw new SquashfsFormatError(
        'xattr table header',
        `key/value start ${kvStart} lies outside ${lowest}..${at}`,
        at,
      );
    }
    const count = h.readUInt32LE(8);
    const bytes = LookupTable.listBytes(count, 16);
    if (at + 16 + bytes > reader.limit) {
      throw new SquashfsFormatError(
        'xattr id table',
        `location list of ${bytes} bytes (${count} entries) runs past the end of the image`,
        at + 16,
      );
    }
    const table = new LookupTable(reader, meta, at + 16, count, 16, 'xattr id table', kvStart);
    return new XattrReader(meta, table, kvStart, at);
  }

  private cursorAt(r: number): MetadataCursor {
    const pos = this.kvStart + Math.floor(r / 65536);
    const off = r % 65536;
    if (pos >= this.at || off >= METADATA_SIZE) {
      throw new SquashfsFormatError(
        'xattr',
        `reference 0x${r.toString(16)} is out of range`,
        this.at,
      );
    }
    return new MetadataCursor(this.meta, pos, off, this.at, 'xattr');
  }

  /** The xattrs with this id, in stored order. */
  async read(inode: Inode, index: number): Promise<Xattr[]> {
    const at = this.at;
    const entry = await this.table.entry(index);
    const ref = readU64(entry, 0, 'xattr id table', at);
    const count = entry.readUInt32LE(8);
    if (count > MAX_XATTR_COUNT) {
      throw new SquashfsFormatError('xattr id table', `${count} xattrs for one inode`, at);
    }
    const cur = this.cursorAt(ref);
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
        const vcur = this.cursorAt(vref);
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
}
