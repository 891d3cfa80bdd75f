/**
 * The merge itself: plan (merge-plan.ts), place the tails
 * (fragment-plan.ts), copy the data and write the new fragment blocks, then
 * emit the metadata in one pass over the plan, in mksquashfs's order: a
 * directory's children (subdirectories depth first, each leaf where it
 * falls), then its listing, then its inode. Depth-first readers (find,
 * stat of every file, tar) then meet inodes in table order.
 * Layout: superblock, compressor options, data, inode table, directory
 * table, fragment, export, id and xattr tables, padded to 4 KiB.
 */
import {
  dataBlockLimit,
  dataCompressor,
  metadataCompressor,
  prepareEncoders,
  type MetadataCompressor,
} from './compress.js';
import { copyData, writeNewFragments, type CopiedData } from './data-copy.js';
import { SquashfsWriteError } from './errors.js';
import { placeFragments, type FragmentPlacement } from './fragment-plan.js';
import { InodeView } from './inode-view.js';
import { ABSENT32, InodeWriter, type InodeSource } from './inode-write.js';
import { writeListing, type ListingSource } from './listing-write.js';
import { dropOverlayXattrs } from './merge.js';
import { WASTE_FLOOR, type MergeImagesOptions, type MergeImagesResult } from './merge-options.js';
import { makePlan } from './merge-plan.js';
import type { Plan } from './plan.js';
import { MetadataWriter, writeLookupTable } from './meta-writer.js';
import type { ImageOutput } from './output.js';
import { encodeSuperblock, FLAGS, SUPERBLOCK_SIZE } from './superblock.js';
import type { ImageTables } from './tables.js';
import { XattrTableWriter } from './xattr-write.js';

/** What the check of the result needs from the writer besides the plan. */
export interface WrittenMerge {
  result: MergeImagesResult;
  plan: Plan;
  placement: FragmentPlacement;
  data: CopiedData;
}

export class MergeWriter {
  private readonly keepXattr: (name: Buffer) => boolean;
  private plan!: Plan;
  private placement!: FragmentPlacement;
  private data!: CopiedData;
  private inodes!: InodeWriter;
  private dirW!: MetadataWriter;
  private xattrs!: XattrTableWriter;
  /** Per plan entry: the output inode reference. */
  private refs = new Float64Array(0);
  private readonly view = new InodeView();
  private readonly scratch = Buffer.alloc(64);
  private readonly sources: InodeSource[];

  constructor(
    private readonly tables: readonly ImageTables[],
    private readonly opts: MergeImagesOptions,
  ) {
    this.keepXattr = opts.keepXattr ?? dropOverlayXattrs;
    this.sources = tables.map((t, layer) => ({
      data: t.inodeTable.data,
      ids: t.image.idList(),
      layer,
    }));
  }

  async write(out: ImageOutput): Promise<WrittenMerge> {
    const base = this.tables[0];
    if (!base) throw new SquashfsWriteError('incompatible', 'no images to merge');
    const sb = base.image.superblock;
    const compOpts = await base.image.compressorOptions();
    await prepareEncoders(sb.compression);
    const comp = metadataCompressor(sb.compression, compOpts?.fields ?? {});
    this.opts.onPhase?.('plan');
    const plan = await makePlan(this.tables, {
      keepWhiteouts: this.opts.keepWhiteouts ?? false,
      ...(this.opts.signal ? { signal: this.opts.signal } : {}),
    });
    this.plan = plan;
    const packData = dataCompressor(sb.compression, compOpts?.fields ?? {});
    const placement = placeFragments(
      plan,
      packData !== null,
      dataBlockLimit(sb.compression, sb.blockSize),
    );
    this.placement = placement;
    const { wasted, total } = placement;
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
      this.data = await copyData(plan, placement, out, pos, this.opts);
      const pack = (blocks: Buffer[]): Promise<(Buffer | null)[]> =>
        Promise.resolve(blocks.map((b) => (packData ? packData(b) : null)));
      pos = await writeNewFragments(
        plan,
        placement,
        pack,
        out,
        this.data.end,
        this.data.fragEntries,
        this.opts.signal,
      );
      this.opts.onPhase?.('metadata');
      this.inodes = new InodeWriter(comp, plan.inodes);
      this.dirW = new MetadataWriter(comp);
      this.xattrs = new XattrTableWriter(comp);
      this.refs = new Float64Array(plan.n);
      await this.emit();

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
        inodeCount: plan.inodes,
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
        rootInodeRef: this.refs[0] ?? 0,
        bytesUsed,
        ...t,
      });
      await out.write(superblock, 0);
      const inputData = this.tables.reduce(
        (n, x) => n + (x.image.superblock.inodeTableStart - SUPERBLOCK_SIZE),
        0,
      );
      const copied = this.data.copied;
      return {
        result: {
          bytes: padded,
          inodes: plan.inodes,
          files: plan.files,
          dirs: plan.dirs,
          fragments: this.data.fragEntries.length,
          copiedBytes: copied,
          repackedFragments: placement.repackedSources,
          wastedBytes: Math.round(wasted),
          droppedBytes: Math.max(
            0,
            inputData - copied - (compOpts ? 2 + compOpts.raw.length : 0) * this.tables.length,
          ),
          metadataCompressed: comp.compresses,
        },
        plan,
        placement,
        data: this.data,
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
    const at = (): number => pos + chunks.reduce((n, c) => n + c.length, 0);
    const inodeTableStart = at();
    chunks.push(...this.inodes.table.finish());
    const directoryTableStart = at();
    chunks.push(...this.dirW.finish());
    const fragmentTableStart = writeLookupTable(chunks, at(), comp, this.data.fragEntries);
    const n = this.plan.inodes;
    const exportEntries = Buffer.alloc(8 * n);
    for (let i = 1; i <= n; i++) {
      // Two u32 halves: a BigInt per inode would cost 200,000 allocations.
      const ref = this.inodes.exportRefs[i] ?? 0;
      exportEntries.writeUInt32LE(ref % 2 ** 32, 8 * (i - 1));
      exportEntries.writeUInt32LE(Math.floor(ref / 2 ** 32), 8 * (i - 1) + 4);
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

  /** The source inode of a plan entry, loaded into the shared view. */
  private load(e: number): InodeView {
    const plan = this.plan;
    const t = this.tables[plan.layer[e] ?? 0];
    if (!t) throw new SquashfsWriteError('verify', `internal error: no image for entry ${e}`);
    const sb = t.image.superblock;
    return this.view.load(
      t.inodeTable.data,
      plan.ipos[e] ?? 0,
      sb.blockSize,
      sb.inodeCount,
      plan.iref[e] ?? 0,
      t.inodeTable.tableStart,
    );
  }

  /** The new xattr id for an entry's kept xattrs, or null (awaits only for inodes that have some). */
  private async xattrId(e: number, xattr: number): Promise<number | null> {
    if (xattr < 0) return null;
    const t = this.tables[this.plan.layer[e] ?? 0];
    if (!t) return null;
    const inode = t.inode(this.plan.iref[e] ?? 0);
    const kept = (await t.image.xattrs(inode)).filter((x) => this.keepXattr(x.name));
    return this.xattrs.add(kept);
  }

  /** Post-order over the plan: a directory's children, then its listing, then its inode. */
  private async emit(): Promise<void> {
    const plan = this.plan;
    const stack: { entry: number; next: number }[] = [{ entry: 0, next: 0 }];
    let steps = 0;
    while (stack.length > 0) {
      const f = stack[stack.length - 1];
      if (!f) break;
      const count = plan.count[f.entry] ?? 0;
      if (f.next < count) {
        const c = (plan.first[f.entry] ?? 0) + f.next++;
        if (plan.isDir(c)) {
          if ((++steps & 1023) === 0) this.opts.signal?.throwIfAborted();
          stack.push({ entry: c, next: 0 });
        } else {
          const first = plan.linkOf[c] ?? -1;
          if (first >= 0) {
            this.refs[c] = this.refs[first] ?? 0;
          } else {
            // Only inodes with xattrs wait (for reading them): no promise for the others.
            const xattr = this.load(c).xattr;
            this.refs[c] = this.emitLeaf(c, xattr < 0 ? null : await this.xattrId(c, xattr));
          }
        }
        continue;
      }
      stack.pop();
      const parent = stack[stack.length - 1]?.entry;
      this.refs[f.entry] = await this.emitDir(f.entry, parent);
    }
  }

  private async emitDir(e: number, parentEntry: number | undefined): Promise<number> {
    const plan = this.plan;
    const first = plan.first[e] ?? 0;
    const refs = this.refs;
    const tables = this.tables;
    const list: ListingSource = {
      count: plan.count[e] ?? 0,
      nameData: (i) => tables[plan.layer[first + i] ?? 0]?.directoryTable.data ?? this.scratch,
      namePos: (i) => plan.npos[first + i] ?? 0,
      nameLength: (i) => plan.nlen[first + i] ?? 0,
      ref: (i) => refs[first + i] ?? 0,
      number: (i) => plan.number[first + i] ?? 0,
      basicType: (i) => {
        const t = plan.type[first + i] ?? 0;
        return t > 7 ? t - 7 : t;
      },
    };
    const listed = writeListing(this.dirW, list, this.scratch);
    let v = this.load(e);
    let xattr: number | null = null;
    if (v.xattr >= 0) {
      xattr = await this.xattrId(e, v.xattr);
      v = this.load(e);
    }
    const parent = parentEntry === undefined ? plan.inodes + 1 : (plan.number[parentEntry] ?? 0);
    return this.inodes.dir(v, this.source(e), plan.number[e] ?? 0, {
      block: listed.block,
      offset: listed.offset,
      size: listed.bytes + 3,
      nlink: plan.nlink[e] ?? 2,
      parent,
      xattr,
      index: listed.index,
      indexCount: listed.indexCount,
    });
  }

  private source(e: number): InodeSource {
    const s = this.sources[this.plan.layer[e] ?? 0];
    if (!s) throw new SquashfsWriteError('verify', `internal error: no image for entry ${e}`);
    return s;
  }

  private emitLeaf(e: number, xattr: number | null): number {
    const plan = this.plan;
    const number = plan.number[e] ?? 0;
    const nlink = plan.nlink[e] ?? 1;
    const v = this.load(e);
    if (v.basic !== 2) return this.inodes.leaf(v, this.source(e), number, nlink, xattr);
    const layer = plan.layer[e] ?? 0;
    const map = this.data.maps[layer];
    if (!map) throw new SquashfsWriteError('verify', `internal error: no image ${layer}`);
    const data = this.source(e).data;
    let stored = 0;
    for (let i = 0; i < v.blockCount; i++) stored += data.readUInt32LE(v.varPos + 4 * i) & 0xffffff;
    const start = stored > 0 ? map.map(v.start) : 0;
    let fragment = ABSENT32;
    let offset = 0;
    if (v.fragment >= 0) {
      const placed = this.placement.newFragment[e] ?? -1;
      if (placed >= 0) {
        fragment = placed;
        offset = this.placement.newOffset[e] ?? 0;
      } else {
        const f = this.placement.keptIndex[layer]?.get(v.fragment);
        if (f === undefined) {
          throw new SquashfsWriteError(
            'verify',
            `internal error: fragment ${v.fragment} of image ${layer} was not copied`,
          );
        }
        fragment = f;
        offset = v.fragmentOffset;
      }
    }
    return this.inodes.file(v, this.source(e), number, { start, fragment, offset, nlink, xattr });
  }
}
