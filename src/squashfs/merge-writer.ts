/**
 * The writer itself: plan (merge-plan.ts), place the tails
 * (fragment-plan.ts), copy the data the images already hold, compress what
 * is new (a packed directory's files, repacked tails: pack-data.ts), then
 * emit the metadata in one pass over the plan (merge-emit.ts).
 * Layout: superblock, compressor options, data, inode table, directory
 * table, fragment, export, id and xattr tables, padded to 4 KiB.
 */
import type { CompressorOptions } from './compressor-options.js';
import {
  dataCompressor,
  metadataCompressor,
  prepareEncoders,
  type MetadataCompressor,
} from './compress.js';
import { copyData, type CopiedData } from './data-copy.js';
import type { CompressorName } from './decompress.js';
import { SquashfsWriteError } from './errors.js';
import { placeFragments, type FragmentPlacement } from './fragment-plan.js';
import { dropOverlayXattrs } from './merge.js';
import { Emitter } from './merge-emit.js';
import { WASTE_FLOOR, type MergeImagesOptions, type MergeImagesResult } from './merge-options.js';
import { makePlan } from './merge-plan.js';
import type { Plan } from './plan.js';
import { writeLookupTable } from './meta-writer.js';
import type { ImageOutput } from './output.js';
import { writePackedData, type FreshFiles, type PackedData } from './pack-data.js';
import { PackPool } from './pack-pool.js';
import { encodeSuperblock, FLAGS, SUPERBLOCK_SIZE } from './superblock.js';
import type { ImageTables } from './tables.js';

/** What the check of the result needs from the writer besides the plan. */
export interface WrittenMerge {
  result: MergeImagesResult;
  plan: Plan;
  placement: FragmentPlacement;
  data: CopiedData;
  /** What was compressed anew (null when nothing was). */
  packed: PackedData | null;
}

/** The output's compressor, block size and options block (from the images, or given for a directory alone). */
export interface OutputSettings {
  compression: CompressorName;
  compressionId: number;
  blockSize: number;
  options: CompressorOptions | null;
  /** The bottom image's DUPLICATES flag (mksquashfs found duplicate files). */
  flags: number;
}

/** The layer that is a directory being packed: its index in the stack and its files. */
export interface FreshLayer {
  layer: number;
  files: FreshFiles;
  /** Bytes of its regular files (how much to compress). */
  bytes: number;
  /** Its threads, started while the directory is planned (the writer closes them). */
  pool?: Promise<PackPool>;
}

/** Repacked tails worth threads in a merge of images (see PackPool.threadsFor). */
const MERGE_THREADS_FLOOR = 64 << 20;

export class MergeWriter {
  private readonly keepXattr: (name: Buffer) => boolean;

  constructor(
    private readonly tables: readonly ImageTables[],
    private readonly opts: MergeImagesOptions,
    private readonly settings: OutputSettings,
    private readonly fresh: FreshLayer | null = null,
  ) {
    this.keepXattr = opts.keepXattr ?? dropOverlayXattrs;
  }

  async write(out: ImageOutput): Promise<WrittenMerge> {
    const s = this.settings;
    const fields = s.options?.fields ?? {};
    await prepareEncoders(s.compression);
    const comp = metadataCompressor(s.compression, fields);
    const canPack = dataCompressor(s.compression, fields) !== null;
    if (this.fresh && !canPack) {
      throw new SquashfsWriteError(
        'unsupported',
        `no encoder for ${s.compression} data blocks of ${s.blockSize} bytes in this package: pack the directory with mksquashfs`,
      );
    }
    this.opts.onPhase?.('plan');
    const plan = await makePlan(this.tables, {
      keepWhiteouts: this.opts.keepWhiteouts ?? false,
      ...(this.fresh ? { freshLayer: this.fresh.layer } : {}),
      ...(this.opts.signal ? { signal: this.opts.signal } : {}),
    });
    // New fragment blocks are as large as the image's blocks, for every encoder (squashtree-merge/1
    // cut xz's at 64 KiB: GURU after 8 daily stops was 1.049 of a fresh image, 1.041 with whole ones).
    const placement = placeFragments(plan, canPack, s.blockSize);
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
      if (s.options) {
        const head = Buffer.alloc(2);
        head.writeUInt16LE(s.options.raw.length | 0x8000, 0);
        await out.write(Buffer.concat([head, s.options.raw]), pos);
        pos += 2 + s.options.raw.length;
      }
      this.opts.onPhase?.('copy');
      const data = await copyData(plan, placement, out, pos, this.opts);
      pos = data.end;
      let packed: PackedData | null = null;
      let threads = 0;
      if (placement.blocks.length > 0 || plan.freshFiles.length > 0) {
        let bytes = this.fresh?.bytes ?? 0;
        for (const b of placement.blocks) for (const e of b.tails) bytes += plan.tailLength[e] ?? 0;
        const pool = await (this.fresh?.pool ??
          PackPool.open(
            {
              name: s.compression,
              options: fields,
              blockSize: s.blockSize,
            },
            PackPool.threadsFor(
              bytes,
              this.opts.threads,
              this.fresh ? 4 << 20 : MERGE_THREADS_FLOOR,
            ),
          ));
        threads = pool.threads;
        try {
          packed = await writePackedData(
            plan,
            placement,
            this.fresh?.files ?? null,
            pool,
            out,
            pos,
            data.fragEntries,
            this.opts.signal,
          );
        } finally {
          await pool.close();
        }
        pos = packed.end;
      }
      this.opts.onPhase?.('metadata');
      const em = new Emitter(plan, placement, data, packed, comp, this.keepXattr, this.opts.signal);
      await em.emit();

      this.opts.onPhase?.('tables');
      const t = finishTables(em, plan, data, pos, comp);
      let bytesUsed = pos;
      for (const c of t.chunks) {
        await out.write(c, bytesUsed);
        bytesUsed += c.length;
      }
      const padded = Math.ceil(bytesUsed / 4096) * 4096;
      if (padded > bytesUsed) await out.write(Buffer.alloc(padded - bytesUsed), bytesUsed);

      const newest = Math.max(...this.tables.map((x) => x.image.superblock.modificationTime));
      const ids = em.inodes.idValues();
      const superblock = encodeSuperblock({
        inodeCount: plan.inodes,
        modificationTime: this.opts.mtime ?? newest,
        blockSize: s.blockSize,
        blockLog: Math.log2(s.blockSize),
        fragmentCount: data.fragEntries.length,
        compressionId: s.compressionId,
        flags:
          FLAGS.EXPORTABLE |
          (s.flags & FLAGS.DUPLICATES) |
          (s.options ? FLAGS.COMPRESSOR_OPTIONS : 0) |
          (t.xattrTableStart === null ? FLAGS.NO_XATTRS : 0),
        idCount: Math.max(1, ids.length),
        rootInodeRef: em.refs[0] ?? 0,
        bytesUsed,
        ...t,
      });
      await out.write(superblock, 0);
      const images = this.tables.filter((_, i) => i !== this.fresh?.layer);
      const inputData = images.reduce(
        (n, x) => n + (x.image.superblock.inodeTableStart - SUPERBLOCK_SIZE),
        0,
      );
      const optionBytes = s.options ? 2 + s.options.raw.length : 0;
      return {
        result: {
          bytes: padded,
          inodes: plan.inodes,
          files: plan.files,
          dirs: plan.dirs,
          fragments: data.fragEntries.length,
          copiedBytes: data.copied,
          repackedFragments: placement.repackedSources,
          wastedBytes: Math.round(wasted),
          droppedBytes: Math.max(0, inputData - data.copied - optionBytes * images.length),
          metadataCompressed: comp.compresses,
          packedFiles: plan.freshFiles.length,
          packedBytes: packed?.readBytes ?? 0,
          threads,
        },
        plan,
        placement,
        data,
        packed,
      };
    } finally {
      await out.close();
    }
  }
}

/** The tables after the data, as chunks from `pos` on, and where each starts. */
function finishTables(
  em: Emitter,
  plan: Plan,
  data: CopiedData,
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
  chunks.push(...em.inodes.table.finish());
  const directoryTableStart = at();
  chunks.push(...em.dirW.finish());
  const fragmentTableStart = writeLookupTable(chunks, at(), comp, data.fragEntries);
  const n = plan.inodes;
  const exportEntries = Buffer.alloc(8 * n);
  for (let i = 1; i <= n; i++) {
    // Two u32 halves: a BigInt per inode would cost 200,000 allocations.
    const ref = em.inodes.exportRefs[i] ?? 0;
    exportEntries.writeUInt32LE(ref % 2 ** 32, 8 * (i - 1));
    exportEntries.writeUInt32LE(Math.floor(ref / 2 ** 32), 8 * (i - 1) + 4);
  }
  const exportTableStart = writeLookupTable(chunks, at(), comp, [exportEntries]);
  const ids = em.inodes.idValues();
  const idEntries = Buffer.alloc(4 * Math.max(1, ids.length));
  ids.forEach((v, i) => idEntries.writeUInt32LE(v >>> 0, 4 * i));
  const idTableStart = writeLookupTable(chunks, at(), comp, [idEntries]);
  const xattrTableStart = em.xattrs.finish(chunks, at());
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
