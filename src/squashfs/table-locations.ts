/**
 * Where an image's tables lie. The superblock gives each lookup table's
 * location list (u64 positions of its metadata blocks); the tables between
 * the directory table and the end are bounded by one another, so the
 * directory table ends where the first later table's blocks begin.
 */
import { SquashfsFormatError } from './errors.js';
import { LookupTable, type MetadataCache } from './metadata.js';
import type { BoundedReader } from './source.js';
import type { Superblock } from './superblock.js';
import { XattrReader } from './xattr-read.js';

export interface TableLocations {
  ids: LookupTable | null;
  fragments: LookupTable | null;
  exports: LookupTable | null;
  xattrs: XattrReader | null;
  /** Where the directory table ends. */
  directoryEnd: number;
}

export async function locateTables(
  reader: BoundedReader,
  meta: MetadataCache,
  sb: Superblock,
): Promise<TableLocations> {
  const dirStart = sb.directoryTableStart;
  const ends: number[] = [sb.bytesUsed];
  const table = (
    name: string,
    listPos: number | null,
    count: number,
    entrySize: number,
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
    return new LookupTable(reader, meta, listPos, count, entrySize, name, dirStart);
  };
  const ids = table('id table', sb.idTableStart, sb.idCount, 4);
  const fragments = table('fragment table', sb.fragmentTableStart, sb.fragmentCount, 16);
  const exports = table('export table', sb.exportTableStart, sb.inodeCount, 8);
  let xattrs: XattrReader | null = null;
  if (sb.xattrTableStart !== null) {
    xattrs = await XattrReader.open(reader, meta, sb.xattrTableStart, dirStart);
    ends.push(xattrs.kvStart);
  }
  for (const t of [fragments, exports, ids]) {
    if (t && t.count > 0) ends.push(await t.blockLocation(0));
  }
  return {
    ids,
    fragments,
    exports,
    xattrs,
    directoryEnd: Math.min(...ends.filter((v) => v > dirStart)),
  };
}
