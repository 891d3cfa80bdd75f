/**
 * How a cold walk through the kernel's squashfs touches an image, computed
 * from the image alone: which metadata blocks it decompresses when they are
 * kept in a cache of the kernel's kind (fs/squashfs/cache.c: 8 metadata
 * blocks, 3 fragment blocks, replaced round-robin: first in, first out),
 * following what the kernel reads for each step:
 *
 *   readdir  the listing in getdents-sized chunks, each resumed through the
 *            directory index (get_dir_index_using_offset);
 *   lookup   the directory index up to the first name past the one sought,
 *            then the listing from that point to the entry (namei.c);
 *   iget     the inode's fixed part (inode.c);
 *   read     a file's block list, its data blocks and its fragment, through
 *            the fragment table and the fragment cache.
 *
 * A layout figure that needs no mount, no root and no clock: the same walk
 * costs the same on any machine, so two images of the same tree compare.
 */
import { ENTRY_SIZE, HEADER_SIZE, parseEntry, parseHeader } from './directory.js';
import { SquashfsFormatError } from './errors.js';
import type { SquashfsImage } from './image.js';
import { inodeFixedBytes, type DirInode, type Inode } from './inode.js';
import { METADATA_SIZE, type DecodedTable } from './metadata.js';
import { ImageTables } from './tables.js';

export interface WalkCost {
  /** Entries visited. */
  entries: number;
  /** Metadata blocks decompressed, all tables. */
  metadataBlocks: number;
  inodeBlocks: number;
  directoryBlocks: number;
  /** Fragment table blocks (fragment lookups). */
  fragmentTableBlocks: number;
  /** Fragment blocks decompressed, and their bytes as stored (read from the device). */
  fragmentBlocks: number;
  fragmentBytes: number;
  /** Of those, decompressions of a block decompressed before (evicted while still needed). */
  fragmentRereads: number;
  /** Data blocks read (read walks). */
  dataBlocks: number;
  /** Data reads that do not start where the previous one ended. */
  dataJumps: number;
}

export interface WalkModel {
  /**
   * 'stat': find -type f | xargs stat: find reads each directory and looks
   * up its subdirectories, stat looks up every file, `lag` entries behind
   * (xargs batches paths); 'ls': readdir, then lookup + iget of every entry
   * in order (ls -lR); 'read': as 'ls', and every file's data (tar).
   */
  walk: 'stat' | 'ls' | 'read';
  /** For 'stat': how many entries find runs ahead of stat. Default 3000. */
  lag?: number;
  /** Metadata blocks the kernel caches (SQUASHFS_CACHED_BLKS). */
  cacheBlocks?: number;
  /** Fragment blocks the kernel caches (CONFIG_SQUASHFS_FRAGMENT_CACHE_SIZE). */
  fragmentCacheBlocks?: number;
  /** The getdents buffer glibc's readdir uses. */
  getdentsBytes?: number;
}

/** The kernel's cache replacement: look up by key; on a miss take the next slot round-robin. */
class RoundRobinCache {
  private readonly keys: number[];
  private next = 0;

  constructor(size: number) {
    this.keys = new Array<number>(size).fill(-1);
  }

  touch(key: number): boolean {
    if (this.keys.includes(key)) return false;
    this.keys[this.next] = key;
    this.next = (this.next + 1) % this.keys.length;
    return true;
  }
}

interface PlacedEntry {
  name: Buffer;
  ref: number;
  /** Decoded positions of the entry in the directory table: [start, end). */
  end: number;
}

interface IndexEntry {
  /** Listing offset of the header it points to. */
  index: number;
  name: Buffer;
  /** Decoded position range of the index entry in the inode table. */
  at: number;
  end: number;
}

export async function kernelWalkCost(image: SquashfsImage, model: WalkModel): Promise<WalkCost> {
  const tables = await ImageTables.load(image);
  return new Walker(tables, model).run();
}

type Stream = 'now' | 'find' | 'stat';

class Walker {
  private readonly meta: RoundRobinCache;
  private readonly frags: RoundRobinCache;
  private readonly it: DecodedTable;
  private readonly dt: DecodedTable;
  private readonly cost: WalkCost = {
    entries: 0,
    metadataBlocks: 0,
    inodeBlocks: 0,
    directoryBlocks: 0,
    fragmentTableBlocks: 0,
    fragmentBlocks: 0,
    fragmentBytes: 0,
    fragmentRereads: 0,
    dataBlocks: 0,
    dataJumps: 0,
  };
  private lastDataEnd = -1;
  private readonly decoded = new Set<number>();
  private readonly getdents: number;
  private readonly fragmentTableBlocks: number[] = [];
  /** For the 'stat' walk: per entry in walk order, the blocks find and stat touch there. */
  private readonly findSteps: number[][] = [];
  private readonly statSteps: number[][] = [];
  private stream: Stream = 'now';

  constructor(
    private readonly tables: ImageTables,
    private readonly model: WalkModel,
  ) {
    this.meta = new RoundRobinCache(model.cacheBlocks ?? 8);
    this.frags = new RoundRobinCache(model.fragmentCacheBlocks ?? 3);
    this.it = tables.inodeTable;
    this.dt = tables.directoryTable;
    this.getdents = model.getdentsBytes ?? 32768;
  }

  async run(): Promise<WalkCost> {
    const sb = this.tables.image.superblock;
    // The fragment table's block positions: the kernel reads its index at mount.
    const n = Math.ceil((sb.fragmentCount * 16) / METADATA_SIZE);
    for (let i = 0; i < n; i++) {
      const raw = await this.tables.image.readRaw((sb.fragmentTableStart ?? 0) + 8 * i, 8);
      this.fragmentTableBlocks.push(Number(raw.readBigUInt64LE(0)));
    }
    if (this.model.walk === 'stat') {
      this.stream = 'find';
      this.findSteps.push([]);
      this.statSteps.push([]);
    }
    this.visit(this.tables.root);
    if (this.model.walk === 'stat') this.replay(this.model.lag ?? 3000);
    return this.cost;
  }

  /** find runs `lag` entries ahead of stat; one step of each in turn. */
  private replay(lag: number): void {
    const steps = this.findSteps.length;
    for (let j = -lag; j < steps; j++) {
      for (const code of this.findSteps[j + lag] ?? []) this.hit(code);
      for (const code of this.statSteps[j] ?? []) this.hit(code);
    }
  }

  /** A block touched; `code` is its position * 4 + its table (0 inode, 1 directory, 2 fragment). */
  private hit(code: number): void {
    if (!this.meta.touch(code)) return;
    this.cost.metadataBlocks++;
    const table = code % 4;
    if (table === 0) this.cost.inodeBlocks++;
    else if (table === 1) this.cost.directoryBlocks++;
    else this.cost.fragmentTableBlocks++;
  }

  private touch(table: 'inode' | 'dir', from: number, to: number, stream = this.stream): void {
    const t = table === 'inode' ? this.it : this.dt;
    for (const b of t.blocksIn(from, to)) {
      const code = (t.tableStart + b) * 4 + (table === 'inode' ? 0 : 1);
      if (stream === 'now') this.hit(code);
      else (stream === 'find' ? this.findSteps : this.statSteps).at(-1)?.push(code);
    }
  }

  private inodePos(ref: number): number {
    return this.it.at(Math.floor(ref / 65536), ref % 65536, () => '', 0);
  }

  private visit(dir: DirInode): void {
    const entries = this.listing(dir);
    const index = this.index(dir);
    this.readdir(dir, entries, index);
    for (let k = 0; k < entries.length; k++) {
      const e = entries[k];
      if (!e) continue;
      const inode = this.tables.inode(e.ref);
      if (this.stream !== 'now') {
        this.findSteps.push([]);
        this.statSteps.push([]);
      }
      // find looks up directories (to enter them); stat looks up files.
      const who: Stream = this.stream === 'now' ? 'now' : inode.kind === 'dir' ? 'find' : 'stat';
      this.lookup(dir, entries, index, k, who);
      const at = this.inodePos(e.ref);
      this.touch('inode', at, at + inodeFixedBytes(inode.type), who);
      this.cost.entries++;
      if (inode.kind === 'dir') this.visit(inode);
      else if (this.model.walk === 'read' && inode.kind === 'file') this.read(inode, at);
    }
  }
  private listingStart(dir: DirInode): number {
    return this.dt.at(dir.dirBlock, dir.dirOffset, () => '', 0);
  }

  /** Every entry with the decoded position where it ends. */
  private listing(dir: DirInode): PlacedEntry[] {
    const out: PlacedEntry[] = [];
    let remaining = dir.listingSize - 3;
    if (remaining <= 0) return out;
    let pos = this.listingStart(dir);
    const fail = (msg: string): never => {
      throw new SquashfsFormatError('directory listing', msg, this.dt.tableStart);
    };
    const inodeBlocks =
      this.tables.image.superblock.directoryTableStart -
      this.tables.image.superblock.inodeTableStart;
    const ctx = (): string => '';
    while (remaining >= HEADER_SIZE) {
      const h = parseHeader(this.dt.slice(pos, HEADER_SIZE, ctx, 0), inodeBlocks, fail);
      pos += HEADER_SIZE;
      remaining -= HEADER_SIZE;
      for (let i = 0; i < h.count; i++) {
        const e = parseEntry(this.dt.slice(pos, ENTRY_SIZE, ctx, 0), remaining, fail);
        pos += ENTRY_SIZE;
        const name = this.dt.slice(pos, e.nameLen, ctx, 0);
        pos += e.nameLen;
        remaining -= ENTRY_SIZE + e.nameLen;
        out.push({ name, ref: h.inodeBlock * 65536 + e.offset, end: pos });
      }
    }
    return out;
  }

  /** The directory index stored after an extended directory inode. */
  private index(dir: DirInode): IndexEntry[] {
    const out: IndexEntry[] = [];
    let pos = this.inodePos(dir.ref) + inodeFixedBytes(dir.type);
    for (let i = 0; i < dir.indexCount; i++) {
      const h = this.it.slice(pos, 12, () => '', 0);
      const size = h.readUInt32LE(8) + 1;
      const name = this.it.slice(pos + 12, size, () => '', 0);
      out.push({ index: h.readUInt32LE(0), name, at: pos, end: pos + 12 + size });
      pos += 12 + size;
    }
    return out;
  }

  /**
   * getdents calls: each resumes at the index entry at or before its offset
   * and reads on until its buffer is full; the last call, which returns
   * nothing, reads from there to the end of the listing.
   */
  private readdir(dir: DirInode, entries: PlacedEntry[], index: IndexEntry[]): void {
    const start = this.listingStart(dir);
    const end = entries[entries.length - 1]?.end ?? start;
    let k = 0;
    for (;;) {
      let from = start;
      if (k > 0) {
        const fpos = (entries[k - 1]?.end ?? start) - start;
        for (const ix of index) {
          this.touch('inode', ix.at, ix.end);
          if (ix.index > fpos) break;
          from = start + ix.index;
        }
      }
      let used = k === 0 ? 48 : 0; // "." and ".." come first
      let last = k;
      while (last < entries.length) {
        const reclen = (19 + (entries[last]?.name.length ?? 0) + 1 + 7) & ~7;
        if (used + reclen > this.getdents) break;
        used += reclen;
        last++;
      }
      // The entry that did not fit was read too.
      const readTo = last < entries.length ? (entries[last]?.end ?? end) : end;
      if (entries.length > 0) this.touch('dir', from, readTo);
      if (k === entries.length) return;
      k = last;
    }
  }

  private lookup(
    dir: DirInode,
    entries: PlacedEntry[],
    index: IndexEntry[],
    k: number,
    who: Stream,
  ): void {
    const e = entries[k];
    if (!e) return;
    const start = this.listingStart(dir);
    let from = start;
    for (const ix of index) {
      this.touch('inode', ix.at, ix.end, who);
      if (Buffer.compare(ix.name, e.name) > 0) break;
      from = start + ix.index;
    }
    this.touch('dir', from, e.end, who);
  }

  private read(inode: Inode, at: number): void {
    if (inode.kind !== 'file') return;
    const listAt = at + inodeFixedBytes(inode.type);
    if (inode.blockCount > 0) this.touch('inode', listAt, listAt + 4 * inode.blockCount);
    const words = this.tables.blockWords(inode);
    let pos = inode.blocksStart;
    for (let i = 0; i < inode.blockCount; i++) {
      const size = words.readUInt32LE(4 * i) & 0xffffff;
      if (size === 0) continue;
      if (pos !== this.lastDataEnd) this.cost.dataJumps++;
      this.cost.dataBlocks++;
      pos += size;
      this.lastDataEnd = pos;
    }
    if (inode.fragment === null) return;
    const tableBlock = this.fragmentTableBlocks[Math.floor((inode.fragment * 16) / METADATA_SIZE)];
    if (tableBlock !== undefined) this.hit(tableBlock * 4 + 2);
    const f = this.tables.fragments[inode.fragment];
    if (f && this.frags.touch(f.start)) {
      this.cost.fragmentBlocks++;
      this.cost.fragmentBytes += f.word & 0xffffff;
      if (this.decoded.has(f.start)) this.cost.fragmentRereads++;
      this.decoded.add(f.start);
      if (f.start !== this.lastDataEnd) this.cost.dataJumps++;
      this.lastDataEnd = f.start + (f.word & 0xffffff);
    }
  }
}
