/**
 * The merge itself: plan, copy the data, then emit the metadata in one
 * walk of the merged view (post-order, as mksquashfs: a directory's
 * children, then its listing, then its inode) and the tables after it.
 * Layout: superblock, compressor options, data, inode table, directory
 * table, fragment, export, id and xattr tables, padded to 4 KiB.
 */
import { dataCompressor, metadataCompressor, type MetadataCompressor } from './compress.js';
import { copyData, FragmentPacker, type CopiedData } from './data-copy.js';
import { SquashfsWriteError } from './errors.js';
import type { FileInode, Inode } from './inode.js';
import { ABSENT32, InodeWriter, type Written } from './inode-write.js';
import { writeListing, type ListingEntry } from './listing-write.js';
import { dropOverlayXattrs, OverlayMerge, type LayerDir, type MergedEntry } from './merge.js';
import { WASTE_FLOOR, type MergeImagesOptions, type MergeImagesResult } from './merge-options.js';
import { makePlan, planRepacking, type Plan } from './merge-plan.js';
import { MetadataWriter, writeLookupTable } from './meta-writer.js';
import type { ImageOutput } from './output.js';
import { encodeSuperblock, FLAGS, SUPERBLOCK_SIZE } from './superblock.js';
import type { ImageTables } from './tables.js';
import { XattrTableWriter } from './xattr-write.js';

export class MergeWriter {
  private readonly merge: OverlayMerge;
  private readonly keepXattr: (name: Buffer) => boolean;
  private plan!: Plan;
  private data!: CopiedData;
  private repack: Set<number>[] = [];
  private packer!: FragmentPacker;
  private inodes!: InodeWriter;
  private dirW!: MetadataWriter;
  private xattrs!: XattrTableWriter;
  private readonly linked = new Map<string, Written>();
  private nextNumber = 1;
  private readonly scratch = Buffer.alloc(64);

  constructor(
    private readonly tables: readonly ImageTables[],
    private readonly opts: MergeImagesOptions,
  ) {
    this.merge = new OverlayMerge(tables, opts.keepWhiteouts ?? false);
    this.keepXattr = opts.keepXattr ?? dropOverlayXattrs;
  }

  async write(out: ImageOutput): Promise<MergeImagesResult> {
    const base = this.tables[0];
    if (!base) throw new SquashfsWriteError('incompatible', 'no images to merge');
    const sb = base.image.superblock;
    const compOpts = await base.image.compressorOptions();
    const comp = metadataCompressor(sb.compression, compOpts?.fields ?? {});
    this.opts.onPhase?.('plan');
    this.plan = await makePlan(this.merge, this.tables, this.opts.signal);
    const packData = dataCompressor(sb.compression, compOpts?.fields ?? {});
    const { repack, wasted, total } = planRepacking(this.tables, this.plan, packData !== null);
    this.repack = repack;
    const limit = this.opts.maxWaste;
    if (limit !== undefined && total > 0 && wasted / total > limit && wasted > WASTE_FLOOR) {
      throw new SquashfsWriteError(
        'wasteful',
        `${((100 * wasted) / total).toFixed(1)}% of the blocks to copy hold replaced or deleted files (limit ${(100 * limit).toFixed(1)}%); recompressing reclaims that space`,
      );
    }

    await out.open();
    try {
      let pos = SUPERBLOCK_SIZE;
      if (compOpts) {
        const head = Buffer.alloc(2);
        head.writeUInt16LE(compOpts.raw.length | 0x8000, 0);
        await out.write(Buffer.concat([head, compOpts.raw]), pos);
        pos += 2 + compOpts.raw.length;
      }
      this.opts.onPhase?.('copy');
      this.data = await copyData(this.tables, this.plan, repack, out, pos, this.opts);
      const copied = this.data.copied;
      this.packer = new FragmentPacker(
        out,
        packData,
        this.data.fragEntries,
        pos + copied,
        sb.blockSize,
      );
      this.opts.onPhase?.('metadata');

      this.inodes = new InodeWriter(comp, this.plan.inodes);
      this.dirW = new MetadataWriter(comp);
      this.xattrs = new XattrTableWriter(comp);
      const root = await this.emitDir(
        await this.merge.rootDirs(),
        this.nextNumber++,
        this.plan.inodes + 1,
      );
      await this.packer.flush();
      pos = this.packer.dataEnd;
      if (this.nextNumber - 1 !== this.plan.inodes) {
        throw new SquashfsWriteError(
          'verify',
          `internal error: planned ${this.plan.inodes} inodes, wrote ${this.nextNumber - 1}`,
        );
      }

      this.opts.onPhase?.('tables');
      const t = this.finishTables(pos, comp);
      let bytesUsed = pos;
      for (const c of t.chunks) {
        await out.write(c, bytesUsed);
        bytesUsed += c.length;
      }
      const padded = Math.ceil(bytesUsed / 4096) * 4096;
      if (padded > bytesUsed) await out.write(Buffer.alloc(padded - bytesUsed), bytesUsed);

      const newest = Math.max(...this.tables.map((x) => x.image.superblock.modificationTime));
      const ids = this.inodes.idValues();
      const superblock = encodeSuperblock({
        inodeCount: this.plan.inodes,
        modificationTime: this.opts.mtime ?? newest,
        blockSize: sb.blockSize,
        blockLog: sb.blockLog,
        fragmentCount: this.data.fragEntries.length,
        compressionId: sb.compressionId,
        flags:
          FLAGS.EXPORTABLE |
          (sb.flags & FLAGS.DUPLICATES) |
          (compOpts ? FLAGS.COMPRESSOR_OPTIONS : 0) |
          (t.xattrTableStart === null ? FLAGS.NO_XATTRS : 0),
        idCount: Math.max(1, ids.length),
        rootInodeRef: root.ref,
        bytesUsed,
        ...t,
      });
      await out.write(superblock, 0);
      const inputData = this.tables.reduce(
        (n, x) => n + (x.image.superblock.inodeTableStart - SUPERBLOCK_SIZE),
        0,
      );
      return {
        bytes: padded,
        inodes: this.plan.inodes,
        files: this.plan.files,
        dirs: this.plan.dirs,
        fragments: this.data.fragEntries.length,
        copiedBytes: copied,
        repackedFragments: repack.reduce((n, r) => n + r.size, 0),
        wastedBytes: Math.round(wasted),
        droppedBytes: Math.max(
          0,
          inputData - copied - (compOpts ? 2 + compOpts.raw.length : 0) * this.tables.length,
        ),
        metadataCompressed: comp.compresses,
      };
    } finally {
      await out.close();
    }
  }

  /** The tables after the data, as chunks from `pos` on, and where each starts. */
  private finishTables(
    pos: number,
    comp: MetadataCompressor,
  ): {
    chunks: Buffer[];
    inodeTableStart: number;
    directoryTableStart: number;
    fragmentTableStart: number;
    exportTableStart: number;
    idTableStart: number;
    xattrTableStart: number | null;
  } {
    const chunks: Buffer[] = [];
    let size = 0;
    const at = (): number => {
      size = chunks.reduce((n, c) => n + c.length, 0);
      return pos + size;
    };
    const inodeTableStart = at();
    chunks.push(...this.inodes.table.finish());
    const directoryTableStart = at();
    chunks.push(...this.dirW.finish());
    const fragmentTableStart = writeLookupTable(chunks, at(), comp, this.data.fragEntries);
    const n = this.plan.inodes;
    const exportEntries = Buffer.alloc(8 * n);
    for (let i = 1; i <= n; i++) {
      exportEntries.writeBigUInt64LE(BigInt(this.inodes.exportRefs[i] ?? 0), 8 * (i - 1));
    }
    const exportTableStart = writeLookupTable(chunks, at(), comp, [exportEntries]);
    const ids = this.inodes.idValues();
    const idEntries = Buffer.alloc(4 * Math.max(1, ids.length));
    ids.forEach((v, i) => idEntries.writeUInt32LE(v >>> 0, 4 * i));
    const idTableStart = writeLookupTable(chunks, at(), comp, [idEntries]);
    const xattrTableStart = this.xattrs.finish(chunks, at());
    return {
      chunks,
      inodeTableStart,
      directoryTableStart,
      fragmentTableStart,
      exportTableStart,
      idTableStart,
      xattrTableStart,
    };
  }

  /** The new xattr id for an inode's kept xattrs, or null. */
  private async xattrId(inode: Inode, layer: number): Promise<number | null> {
    if (inode.xattrIndex === null) return null;
    const t = this.tables[layer];
    if (!t) return null;
    const kept = (await t.image.xattrs(inode)).filter((x) => this.keepXattr(x.name));
    return this.xattrs.add(kept);
  }

  private ids(layer: number): { ids: readonly number[]; layer: number } {
    return { ids: this.tables[layer]?.image.idList() ?? [], layer };
  }

  /** Post-order: a directory's children, then its listing, then its inode. */
  private async emitDir(dirs: LayerDir[], number: number, parent: number): Promise<Written> {
    this.opts.signal?.throwIfAborted();
    const top = dirs[0];
    if (!top) throw new SquashfsWriteError('verify', 'internal error: a directory without layers');
    const listing: ListingEntry[] = [];
    let subdirs = 0;
    for (const c of await this.merge.children(dirs)) {
      if (c.inode.kind === 'dir') {
        subdirs++;
        const w = await this.emitDir(c.dirs, this.nextNumber++, number);
        listing.push({ name: c.name, ...w });
      } else {
        listing.push({ name: c.name, ...(await this.emitLeaf(c)) });
      }
    }
    const at = this.dirW.position();
    const listed = writeListing(this.dirW, listing, this.scratch);
    const xattr = await this.xattrId(top.dir, top.layer);
    return this.inodes.dir(top.dir, this.ids(top.layer), number, {
      block: at.block,
      offset: at.offset,
      size: listed + 3,
      nlink: 2 + subdirs,
      parent,
      xattr,
    });
  }

  private async emitLeaf(c: MergedEntry): Promise<Written> {
    const inode = c.inode;
    let key: string | undefined;
    let nlink = 1;
    if (inode.nlink > 1) {
      key = `${c.layer}:${inode.number}`;
      const done = this.linked.get(key);
      if (done) return done;
      nlink = this.plan.links.get(key) ?? 1;
    }
    const number = this.nextNumber++;
    const xattr = await this.xattrId(inode, c.layer);
    const written =
      inode.kind === 'file'
        ? await this.emitFile(inode, c.layer, number, nlink, xattr)
        : this.inodes.leaf(inode, this.ids(c.layer), number, nlink, xattr);
    if (key) this.linked.set(key, written);
    return written;
  }

  private async emitFile(
    inode: FileInode,
    layer: number,
    number: number,
    nlink: number,
    xattr: number | null,
  ): Promise<Written> {
    const t = this.tables[layer];
    const map = this.data.maps[layer];
    if (!t || !map) throw new SquashfsWriteError('verify', `internal error: no image ${layer}`);
    const words = t.blockWords(inode);
    const start = t.storedBytes(inode) > 0 ? map.map(inode.blocksStart) : 0;
    let fragment = ABSENT32;
    let offset = 0;
    if (inode.fragment !== null && this.repack[layer]?.has(inode.fragment)) {
      ({ fragment, offset } = await this.packer.place(t, layer, inode));
    } else if (inode.fragment !== null) {
      const f = this.data.fragIndex[layer]?.get(inode.fragment);
      if (f === undefined)
        throw new SquashfsWriteError(
          'verify',
          `internal error: fragment ${inode.fragment} of image ${layer} was not copied`,
        );
      fragment = f;
      offset = inode.fragmentOffset;
    }
    return this.inodes.file(inode, this.ids(layer), number, {
      start,
      fragment,
      offset,
      nlink,
      xattr,
      words,
    });
  }
}
