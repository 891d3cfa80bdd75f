/**
 * Writing one image from a stack of images (bottom first) with OverlayFS
 * semantics, without recompressing data: every data block and fragment
 * block the merged view still uses is copied verbatim from its image, and
 * only the metadata (inodes, directories, fragment, export, id and xattr
 * tables) is written anew. The cost is about that of copying the image.
 *
 *   const r = await writeMergedImage(['base.sqfs', 'layer.sqfs'], 'new.sqfs');
 *
 * All inputs must share compressor, compressor options and block size
 * (SquashfsWriteError 'incompatible' otherwise: use mksquashfs then).
 * Layout follows mksquashfs: superblock, compressor options, data, inode
 * table, directory table, fragment, export, id and xattr tables.
 */
import { promises as fsp } from 'node:fs';
import { dataCompressor, metadataCompressor, type MetadataCompressor } from './compress.js';
import { SquashfsFormatError, SquashfsWriteError } from './errors.js';
import { ExtentMap } from './extents.js';
import { SquashfsImage, type Xattr } from './image.js';
import type { FileInode, Inode } from './inode.js';
import { dropOverlayXattrs, OverlayMerge, type LayerDir, type MergedEntry } from './merge.js';
import { verifyMergedTables, type VerifyMergeResult } from './verify-merge.js';
import { MetadataWriter } from './meta-writer.js';
import { FLAGS, SQUASHFS_MAGIC, SUPERBLOCK_SIZE } from './superblock.js';
import { ImageTables } from './tables.js';

export interface MergeImagesOptions {
  /** Which xattrs the new image keeps; default: all but trusted.overlay.* (overlay bookkeeping). */
  keepXattr?: (name: Buffer) => boolean;
  /** Called as each phase starts. */
  onPhase?: (phase: 'plan' | 'copy' | 'metadata' | 'tables' | 'verify') => void;
  /** Progress of the data copy, in bytes. */
  onProgress?: (done: number, total: number) => void;
  /** Modification time for the superblock; default: the newest input's. */
  mtime?: number;
  /** Check the result against the inputs (see verifyMergedImage) before returning. */
  verify?: boolean;
  /** Keep whiteouts as entries (rewriting a single layer) instead of applying them. */
  keepWhiteouts?: boolean;
  /** Stops the work (its reason is thrown) at the next directory or block copied. */
  signal?: AbortSignal;
  /**
   * Refuse (SquashfsWriteError 'wasteful') when more than this share of the
   * bytes to copy (and over 4 MiB) belongs to replaced or deleted files:
   * fragment blocks are copied whole, so such bytes would stay until a
   * recompression.
   */
  maxWaste?: number;
}

export interface MergeImagesResult {
  /** Bytes of the image file (padded to 4 KiB). */
  bytes: number;
  inodes: number;
  files: number;
  dirs: number;
  fragments: number;
  /** Data and fragment bytes copied verbatim from the inputs. */
  copiedBytes: number;
  /** Data bytes of the inputs the merged view no longer uses (not copied). */
  droppedBytes: number;
  /** Of the copied bytes, about how many hold files the merged view no longer has (in shared fragment blocks). */
  wastedBytes: number;
  /** Fragment blocks mostly dead whose live tails were repacked into new blocks. */
  repackedFragments: number;
  /** False when metadata is stored uncompressed (no encoder for the compressor). */
  metadataCompressed: boolean;
  /** With verify: what was compared. */
  verified?: VerifyMergeResult;
}

const ABSENT32 = 0xffffffff;
const COPY_CHUNK = 1 << 20;
/** maxWaste applies above this many wasted bytes: a small tree's few dead tails do not matter. */
const WASTE_FLOOR = 4 << 20;
/** A fragment block less than this share alive has its live tails repacked (where an encoder exists). */
const REPACK_BELOW = 0.5;

/** Open the inputs, check they can be merged, and write the merged image to output (created, must not exist). */
export async function writeMergedImage(
  inputs: readonly string[],
  output: string,
  opts: MergeImagesOptions = {},
): Promise<MergeImagesResult> {
  if (inputs.length === 0) throw new SquashfsWriteError('incompatible', 'no images to merge');
  const images: SquashfsImage[] = [];
  try {
    for (const p of inputs) images.push(await SquashfsImage.open(p));
    await checkCompatible(images, inputs);
    const tables: ImageTables[] = [];
    for (const img of images) tables.push(await ImageTables.load(img));
    let result: MergeImagesResult;
    try {
      result = await new MergeWriter(tables, opts).write(output);
      if (opts.verify) {
        opts.onPhase?.('verify');
        const keep = opts.keepXattr ?? dropOverlayXattrs;
        result.verified = await verifyMergedTables(
          tables,
          output,
          keep,
          opts.signal,
          opts.keepWhiteouts ?? false,
        );
      }
    } catch (e) {
      // Only a file this call created (it opens with O_EXCL) is removed.
      if (!(e instanceof Error && 'code' in e && e.code === 'EEXIST')) {
        await fsp.rm(output, { force: true });
      }
      throw e;
    }
    return result;
  } finally {
    for (const img of images) await img.close();
  }
}

async function checkCompatible(
  images: readonly SquashfsImage[],
  names: readonly string[],
): Promise<void> {
  const first = images[0];
  if (!first) return;
  const opts0 = (await first.compressorOptions())?.raw ?? Buffer.alloc(0);
  for (let i = 1; i < images.length; i++) {
    const img = images[i];
    if (!img) continue;
    const a = first.superblock;
    const b = img.superblock;
    const o = (await img.compressorOptions())?.raw ?? Buffer.alloc(0);
    if (a.compression !== b.compression || a.blockSize !== b.blockSize || !o.equals(opts0)) {
      throw new SquashfsWriteError(
        'incompatible',
        `${names[i] ?? `image ${i}`} uses ${b.compression} with ${b.blockSize}-byte blocks` +
          `${o.equals(opts0) ? '' : ' and other compressor options'}, ${names[0] ?? 'the first image'} ${a.compression} with ${a.blockSize}-byte blocks`,
      );
    }
  }
}

interface Plan {
  /** Per layer: [start, length) of data the merged view uses. */
  ranges: [number, number][][];
  /** Per layer: fragment indexes the merged view uses. */
  frags: Set<number>[];
  /** Per layer: fragment index -> uncompressed tail bytes of files the view shows. */
  tails: Map<number, number>[];
  /** "layer:inode number" -> visible links, for inodes with more than one. */
  links: Map<string, number>;
  inodes: number;
  files: number;
  dirs: number;
}

interface ListingEntry {
  name: Buffer;
  ref: number;
  number: number;
  basicType: number;
}

interface Written {
  ref: number;
  number: number;
  basicType: number;
}

class MergeWriter {
  private readonly merge: OverlayMerge;
  private readonly keepXattr: (name: Buffer) => boolean;
  private readonly maps: ExtentMap[] = [];
  private readonly fragIndex: Map<number, number>[] = [];
  private readonly fragEntries: Buffer[] = [];
  private readonly ids = new Map<number, number>();
  private readonly xattrIds = new Map<string, number>();
  private readonly xattrEntries: Buffer[] = [];
  private xattrKv!: MetadataWriter;
  private inodeW!: MetadataWriter;
  private dirW!: MetadataWriter;
  private exportRefs: number[] = [];
  private readonly linked = new Map<string, Written>();
  private nextNumber = 1;
  /** Per layer: fragment blocks whose live tails are repacked rather than copied. */
  private repack: Set<number>[] = [];
  private readonly repacked = new Map<string, { fragment: number; offset: number }>();
  private packData: ((block: Buffer) => Buffer | null) | null = null;
  private pendingFrag: Buffer[] = [];
  private pendingFragBytes = 0;
  private out!: fsp.FileHandle;
  /** Where the data region ends in the output (new fragment blocks go there). */
  private dataEnd = 0;
  private readonly scratch = Buffer.alloc(64);
  private readonly copyBuffer = Buffer.allocUnsafe(COPY_CHUNK);
  private plan!: Plan;

  constructor(
    private readonly tables: readonly ImageTables[],
    private readonly opts: MergeImagesOptions,
  ) {
    this.merge = new OverlayMerge(tables, opts.keepWhiteouts ?? false);
    this.keepXattr = opts.keepXattr ?? dropOverlayXattrs;
  }

  private get top(): ImageTables {
    const t = this.tables[this.tables.length - 1];
    if (!t) throw new SquashfsWriteError('incompatible', 'no images to merge');
    return t;
  }

  async write(output: string): Promise<MergeImagesResult> {
    const base = this.tables[0] ?? this.top;
    const sb = base.image.superblock;
    const compOpts = await base.image.compressorOptions();
    const comp = metadataCompressor(sb.compression, compOpts?.fields ?? {});
    this.opts.onPhase?.('plan');
    this.plan = await this.makePlan();
    this.packData = dataCompressor(sb.compression, compOpts?.fields ?? {});
    const { wasted, total } = this.waste();
    const limit = this.opts.maxWaste;
    if (limit !== undefined && total > 0 && wasted / total > limit && wasted > WASTE_FLOOR) {
      throw new SquashfsWriteError(
        'wasteful',
        `${((100 * wasted) / total).toFixed(1)}% of the blocks to copy hold replaced or deleted files (limit ${(100 * limit).toFixed(1)}%); recompressing reclaims that space`,
      );
    }

    const out = await fsp.open(output, 'wx', 0o644);
    this.out = out;
    try {
      let pos = SUPERBLOCK_SIZE;
      if (compOpts) {
        const head = Buffer.alloc(2);
        head.writeUInt16LE(compOpts.raw.length | 0x8000, 0);
        await writeAt(out, Buffer.concat([head, compOpts.raw]), pos);
        pos += 2 + compOpts.raw.length;
      }
      this.opts.onPhase?.('copy');
      const copied = await this.copyData(out, pos);
      this.dataEnd = pos + copied;
      this.opts.onPhase?.('metadata');

      this.inodeW = new MetadataWriter(comp);
      this.dirW = new MetadataWriter(comp);
      this.xattrKv = new MetadataWriter(comp);
      this.exportRefs = new Array<number>(this.plan.inodes + 1).fill(-1);
      const root = await this.emitDir(
        await this.merge.rootDirs(),
        this.nextNumber++,
        this.plan.inodes + 1,
      );
      await this.flushFragment();
      pos = this.dataEnd;
      if (this.nextNumber - 1 !== this.plan.inodes) {
        throw new SquashfsWriteError(
          'verify',
          `internal error: planned ${this.plan.inodes} inodes, wrote ${this.nextNumber - 1}`,
        );
      }

      this.opts.onPhase?.('tables');
      const chunks: Buffer[] = [];
      const at = (): number => pos + chunks.reduce((n, c) => n + c.length, 0);
      const inodeTableStart = at();
      chunks.push(...this.inodeW.finish());
      const directoryTableStart = at();
      chunks.push(...this.dirW.finish());
      const fragmentTableStart = this.lookupTable(chunks, at(), comp, this.fragEntries);
      const exportEntries = Buffer.alloc(8 * this.plan.inodes);
      for (let n = 1; n <= this.plan.inodes; n++) {
        exportEntries.writeBigUInt64LE(BigInt(this.exportRefs[n] ?? 0), 8 * (n - 1));
      }
      const exportTableStart = this.lookupTable(chunks, at(), comp, [exportEntries]);
      const ids = [...this.ids.keys()];
      const idEntries = Buffer.alloc(4 * Math.max(1, ids.length));
      ids.forEach((v, i) => idEntries.writeUInt32LE(v >>> 0, 4 * i));
      const idTableStart = this.lookupTable(chunks, at(), comp, [idEntries]);
      let xattrTableStart: number | null = null;
      if (this.xattrEntries.length > 0) {
        const kvStart = at();
        chunks.push(...this.xattrKv.finish());
        const idStart = at();
        const w = new MetadataWriter(comp);
        for (const e of this.xattrEntries) w.write(e);
        chunks.push(...w.finish());
        xattrTableStart = at();
        const head = Buffer.alloc(16);
        head.writeBigUInt64LE(BigInt(kvStart), 0);
        head.writeUInt32LE(this.xattrEntries.length, 8);
        chunks.push(head, ...w.blockStarts.map((s) => u64(idStart + s)));
      }
      let bytesUsed = pos;
      for (const c of chunks) {
        await writeAt(out, c, bytesUsed);
        bytesUsed += c.length;
      }
      const padded = Math.ceil(bytesUsed / 4096) * 4096;
      if (padded > bytesUsed) await writeAt(out, Buffer.alloc(padded - bytesUsed), bytesUsed);

      const newest = Math.max(...this.tables.map((t) => t.image.superblock.modificationTime));
      const flags =
        FLAGS.EXPORTABLE |
        (sb.flags & FLAGS.DUPLICATES) |
        (compOpts ? FLAGS.COMPRESSOR_OPTIONS : 0) |
        (xattrTableStart === null ? FLAGS.NO_XATTRS : 0);
      const s = Buffer.alloc(SUPERBLOCK_SIZE);
      s.writeUInt32LE(SQUASHFS_MAGIC, 0);
      s.writeUInt32LE(this.plan.inodes, 4);
      s.writeUInt32LE((this.opts.mtime ?? newest) >>> 0, 8);
      s.writeUInt32LE(sb.blockSize, 12);
      s.writeUInt32LE(this.fragEntries.length, 16);
      s.writeUInt16LE(sb.compressionId, 20);
      s.writeUInt16LE(sb.blockLog, 22);
      s.writeUInt16LE(flags, 24);
      s.writeUInt16LE(Math.max(1, this.ids.size), 26);
      s.writeUInt16LE(4, 28);
      s.writeUInt16LE(0, 30);
      s.writeBigUInt64LE(BigInt(root.ref), 32);
      s.writeBigUInt64LE(BigInt(bytesUsed), 40);
      s.writeBigUInt64LE(BigInt(idTableStart), 48);
      s.writeBigUInt64LE(
        xattrTableStart === null ? 0xffffffffffffffffn : BigInt(xattrTableStart),
        56,
      );
      s.writeBigUInt64LE(BigInt(inodeTableStart), 64);
      s.writeBigUInt64LE(BigInt(directoryTableStart), 72);
      s.writeBigUInt64LE(BigInt(fragmentTableStart), 80);
      s.writeBigUInt64LE(BigInt(exportTableStart), 88);
      await writeAt(out, s, 0);
      const inputData = this.tables.reduce(
        (n, t) => n + (t.image.superblock.inodeTableStart - SUPERBLOCK_SIZE),
        0,
      );
      return {
        bytes: padded,
        inodes: this.plan.inodes,
        files: this.plan.files,
        dirs: this.plan.dirs,
        fragments: this.fragEntries.length,
        copiedBytes: copied,
        repackedFragments: this.repack.reduce((n, r) => n + r.size, 0),
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

  /** Estimated dead bytes in the fragment blocks to copy, and all bytes to copy. */
  private waste(): { wasted: number; total: number } {
    let wasted = 0;
    let total = 0;
    this.repack = this.tables.map(() => new Set<number>());
    this.tables.forEach((t, layer) => {
      for (const [, n] of this.plan.ranges[layer] ?? []) total += n;
      const used = this.plan.frags[layer];
      if (!used || used.size === 0) return;
      const all = t.fragmentTails();
      const live = this.plan.tails[layer];
      for (const f of used) {
        const size = (t.fragments[f]?.word ?? 0) & 0xffffff;
        const a = all.get(f) ?? 0;
        const l = live?.get(f) ?? 0;
        if (this.packData && a > 0 && l < a * REPACK_BELOW) {
          // Mostly dead: its few live tails go into new blocks.
          this.repack[layer]?.add(f);
          total += (size * l) / a;
          continue;
        }
        total += size;
        if (a > 0 && l < a) wasted += (size * (a - l)) / a;
      }
    });
    return { wasted, total };
  }

  /** A live tail of a repacked fragment block: its place in the new fragment blocks. */
  private async repackTail(
    layer: number,
    inode: FileInode,
  ): Promise<{ fragment: number; offset: number }> {
    const t = this.tables[layer];
    const bs = t?.image.superblock.blockSize ?? 0;
    const len = inode.size % bs;
    const key = `${layer}:${inode.fragment}:${inode.fragmentOffset}:${len}`;
    const known = this.repacked.get(key);
    if (known) return known;
    if (!t || inode.fragment === null)
      throw new SquashfsWriteError('verify', 'internal error: no tail');
    const block = await t.image.fragmentData(inode.fragment);
    if (inode.fragmentOffset + len > block.length) {
      throw new SquashfsFormatError(
        'fragment block',
        `tail of inode ${inode.number} lies outside fragment ${inode.fragment}`,
        -1,
      );
    }
    if (this.pendingFragBytes + len > bs) await this.flushFragment();
    const place = { fragment: this.fragEntries.length, offset: this.pendingFragBytes };
    this.pendingFrag.push(
      Buffer.from(block.subarray(inode.fragmentOffset, inode.fragmentOffset + len)),
    );
    this.pendingFragBytes += len;
    this.repacked.set(key, place);
    return place;
  }

  /** Write the fragment block being filled (compressed where that is smaller) at the end of the data. */
  private async flushFragment(): Promise<void> {
    if (this.pendingFragBytes === 0 || !this.packData) return;
    const raw = Buffer.concat(this.pendingFrag, this.pendingFragBytes);
    const packed = this.packData(raw);
    const body = packed ?? raw;
    await writeAt(this.out, body, this.dataEnd);
    const e = Buffer.alloc(16);
    e.writeBigUInt64LE(BigInt(this.dataEnd), 0);
    e.writeUInt32LE(body.length | (packed ? 0 : 1 << 24), 8);
    this.fragEntries.push(e);
    this.dataEnd += body.length;
    this.pendingFrag = [];
    this.pendingFragBytes = 0;
  }

  /** Entries in metadata blocks followed by the list of where each block is; returns the list's position. */
  private lookupTable(
    chunks: Buffer[],
    start: number,
    comp: MetadataCompressor,
    entries: Buffer[],
  ): number {
    const w = new MetadataWriter(comp);
    for (const e of entries) w.write(e);
    chunks.push(...w.finish());
    chunks.push(...w.blockStarts.map((s) => u64(start + s)));
    return start + w.size;
  }

  /** Pass 1: what the merged view uses, to copy only that and to count links. */
  private async makePlan(): Promise<Plan> {
    const n = this.tables.length;
    const plan: Plan = {
      ranges: Array.from({ length: n }, () => []),
      frags: Array.from({ length: n }, () => new Set<number>()),
      tails: Array.from({ length: n }, () => new Map<number, number>()),
      links: new Map(),
      inodes: 1,
      files: 0,
      dirs: 1,
    };
    const seen = new Set<string>();
    const visit = async (dirs: LayerDir[]): Promise<void> => {
      this.opts.signal?.throwIfAborted();
      for (const d of dirs) {
        const key = `${d.layer}:${d.dir.ref}`;
        if (seen.has(key)) {
          throw new SquashfsFormatError(
            'directory listing',
            `directory inode ${d.dir.number} of image ${d.layer} appears twice in the tree (a cycle)`,
            -1,
          );
        }
        seen.add(key);
      }
      for (const c of await this.merge.children(dirs)) {
        if (c.inode.kind === 'dir') {
          plan.dirs++;
          plan.inodes++;
          await visit(c.dirs);
          continue;
        }
        if (c.inode.nlink > 1) {
          const key = `${c.layer}:${c.inode.number}`;
          const count = plan.links.get(key);
          plan.links.set(key, (count ?? 0) + 1);
          if (count !== undefined) continue;
        }
        plan.inodes++;
        if (c.inode.kind !== 'file') continue;
        plan.files++;
        const t = this.tables[c.layer];
        if (!t) continue;
        const stored = t.storedBytes(c.inode);
        if (stored > 0) plan.ranges[c.layer]?.push([c.inode.blocksStart, stored]);
        if (c.inode.fragment !== null) {
          if (c.inode.fragment >= t.fragments.length) {
            throw new SquashfsFormatError(
              'inode',
              `inode ${c.inode.number} names fragment ${c.inode.fragment} of ${t.fragments.length}`,
              -1,
            );
          }
          plan.frags[c.layer]?.add(c.inode.fragment);
          const tails = plan.tails[c.layer];
          const tail = c.inode.size % t.image.superblock.blockSize;
          tails?.set(c.inode.fragment, (tails.get(c.inode.fragment) ?? 0) + tail);
        }
      }
    };
    await visit(await this.merge.rootDirs());
    if (plan.inodes > ABSENT32 - 1) {
      throw new SquashfsWriteError('too-large', `${plan.inodes} inodes do not fit one image`);
    }
    return plan;
  }

  /** Copy every used range of every image, in image order; returns the bytes written. */
  private async copyData(out: fsp.FileHandle, start: number): Promise<number> {
    const perLayer = this.tables.map((t, layer) => {
      const ranges = [...(this.plan.ranges[layer] ?? [])];
      for (const f of this.plan.frags[layer] ?? []) {
        if (this.repack[layer]?.has(f)) continue;
        const e = t.fragments[f];
        if (e) ranges.push([e.start, e.word & 0xffffff]);
      }
      return ExtentMap.coalesce(ranges);
    });
    const total = perLayer.reduce((n, r) => n + r.reduce((m, [, l]) => m + l, 0), 0);
    let pos = start;
    let done = 0;
    for (let layer = 0; layer < this.tables.length; layer++) {
      const t = this.tables[layer];
      const map = new ExtentMap();
      this.maps.push(map);
      if (!t) continue;
      for (const [s, n] of perLayer[layer] ?? []) {
        map.add(s, pos, n);
        for (let off = 0; off < n; off += COPY_CHUNK) {
          const len = Math.min(COPY_CHUNK, n - off);
          this.opts.signal?.throwIfAborted();
          const buf = await t.image.readRaw(s + off, len, 'data block', this.copyBuffer);
          await writeAt(out, buf.subarray(0, len), pos + off);
          done += len;
          this.opts.onProgress?.(done, total);
        }
        pos += n;
      }
      // Fragment indexes in the new table, in the old order.
      const idx = new Map<number, number>();
      for (const f of [...(this.plan.frags[layer] ?? [])].sort((a, b) => a - b)) {
        if (this.repack[layer]?.has(f)) continue;
        const e = t.fragments[f];
        if (!e) continue;
        idx.set(f, this.fragEntries.length);
        const b = Buffer.alloc(16);
        b.writeBigUInt64LE(BigInt(map.map(e.start)), 0);
        b.writeUInt32LE(e.word, 8);
        this.fragEntries.push(b);
      }
      this.fragIndex.push(idx);
    }
    return pos - start;
  }

  private idIndex(value: number): number {
    let i = this.ids.get(value);
    if (i === undefined) {
      i = this.ids.size;
      if (i >= 65535)
        throw new SquashfsWriteError('too-large', 'more than 65,535 distinct uids and gids');
      this.ids.set(value, i);
    }
    return i;
  }

  /**
   * The 16-byte inode header into the scratch buffer, followed by `body`
   * bytes the caller fills in; inodes are built there so that 200,000 of
   * them do not allocate 400,000 small buffers.
   */
  private header(type: number, inode: Inode, layer: number, number: number, body: number): Buffer {
    const t = this.tables[layer];
    const ids = t?.image.idList() ?? [];
    const uid = ids[inode.uidIndex];
    const gid = ids[inode.gidIndex];
    if (uid === undefined || gid === undefined) {
      throw new SquashfsFormatError(
        'inode',
        `inode ${inode.number} of image ${layer} names an id outside the id table`,
        -1,
      );
    }
    const h = this.scratch;
    h.writeUInt16LE(type, 0);
    h.writeUInt16LE(inode.permissions, 2);
    h.writeUInt16LE(this.idIndex(uid), 4);
    h.writeUInt16LE(this.idIndex(gid), 6);
    h.writeUInt32LE(inode.mtime >>> 0, 8);
    h.writeUInt32LE(number, 12);
    h.fill(0, 16, 16 + body);
    return h;
  }

  /** The new xattr id for an inode's kept xattrs, or null. */
  private async xattrId(inode: Inode, layer: number): Promise<number | null> {
    if (inode.xattrIndex === null) return null;
    const t = this.tables[layer];
    if (!t) return null;
    const kept = (await t.image.xattrs(inode)).filter((x) => this.keepXattr(x.name));
    const encoded = kept.map(encodeXattr).filter((b): b is Buffer => b !== null);
    if (encoded.length === 0) return null;
    const key = kept.map((x) => `${x.name.toString('hex')}=${x.value.toString('hex')}`).join(',');
    const known = this.xattrIds.get(key);
    if (known !== undefined) return known;
    const ref = this.xattrKv.ref();
    let size = 0;
    for (const enc of encoded) {
      this.xattrKv.write(enc);
      size += enc.length;
    }
    const e = Buffer.alloc(16);
    e.writeBigUInt64LE(BigInt(ref), 0);
    e.writeUInt32LE(encoded.length, 8);
    e.writeUInt32LE(size, 12);
    const id = this.xattrEntries.length;
    this.xattrEntries.push(e);
    this.xattrIds.set(key, id);
    return id;
  }

  /** Append the scratch buffer's first `len` bytes (and any tail) as inode `number`. */
  private putInode(number: number, len: number, tail?: Buffer, trailer?: number): number {
    const ref = this.inodeW.ref();
    this.inodeW.write(this.scratch.subarray(0, len));
    if (tail) this.inodeW.write(tail);
    if (trailer !== undefined) {
      this.scratch.writeUInt32LE(trailer, 0);
      this.inodeW.write(this.scratch.subarray(0, 4));
    }
    this.exportRefs[number] = ref;
    return ref;
  }

  /** Pass 2, post-order: a directory's children, then its listing, then its inode. */
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
    const size = listed + 3;
    const nlink = 2 + subdirs;
    if (xattr === null && size <= 0xffff && at.block <= ABSENT32) {
      const b = this.header(1, top.dir, top.layer, number, 16);
      b.writeUInt32LE(at.block, 16);
      b.writeUInt32LE(nlink, 20);
      b.writeUInt16LE(size, 24);
      b.writeUInt16LE(at.offset, 26);
      b.writeUInt32LE(parent, 28);
      return { ref: this.putInode(number, 32), number, basicType: 1 };
    }
    const b = this.header(8, top.dir, top.layer, number, 24);
    b.writeUInt32LE(nlink, 16);
    b.writeUInt32LE(size, 20);
    b.writeUInt32LE(at.block, 24);
    b.writeUInt32LE(parent, 28);
    b.writeUInt16LE(0, 32); // no directory index: lookups scan the listing
    b.writeUInt16LE(at.offset, 34);
    b.writeUInt32LE(xattr ?? ABSENT32, 36);
    return { ref: this.putInode(number, 40), number, basicType: 1 };
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
    let written: Written;
    switch (inode.kind) {
      case 'file':
        written = await this.emitFile(inode, c.layer, number, nlink, xattr);
        break;
      case 'symlink': {
        const ext = xattr !== null;
        const b = this.header(ext ? 10 : 3, inode, c.layer, number, 8);
        b.writeUInt32LE(nlink, 16);
        b.writeUInt32LE(inode.target.length, 20);
        const ref = this.putInode(number, 24, inode.target, xattr ?? undefined);
        written = { ref, number, basicType: 3 };
        break;
      }
      case 'blockdev':
      case 'chardev': {
        const basic = inode.kind === 'blockdev' ? 4 : 5;
        const ext = xattr !== null;
        const b = this.header(ext ? basic + 7 : basic, inode, c.layer, number, 12);
        b.writeUInt32LE(nlink, 16);
        b.writeUInt32LE(inode.rdev, 20);
        if (ext) b.writeUInt32LE(xattr, 24);
        written = { ref: this.putInode(number, ext ? 28 : 24), number, basicType: basic };
        break;
      }
      default: {
        const basic = inode.kind === 'fifo' ? 6 : 7;
        const ext = xattr !== null;
        const b = this.header(ext ? basic + 7 : basic, inode, c.layer, number, 8);
        b.writeUInt32LE(nlink, 16);
        if (ext) b.writeUInt32LE(xattr, 20);
        written = { ref: this.putInode(number, ext ? 24 : 20), number, basicType: basic };
        break;
      }
    }
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
    const map = this.maps[layer];
    if (!t || !map) throw new SquashfsWriteError('verify', `internal error: no image ${layer}`);
    const words = t.blockWords(inode);
    const start = t.storedBytes(inode) > 0 ? map.map(inode.blocksStart) : 0;
    let fragment = ABSENT32;
    let offset = 0;
    if (inode.fragment !== null && this.repack[layer]?.has(inode.fragment)) {
      ({ fragment, offset } = await this.repackTail(layer, inode));
    } else if (inode.fragment !== null) {
      const f = this.fragIndex[layer]?.get(inode.fragment);
      if (f === undefined)
        throw new SquashfsWriteError(
          'verify',
          `internal error: fragment ${inode.fragment} of image ${layer} was not copied`,
        );
      fragment = f;
      offset = inode.fragmentOffset;
    }
    const basic =
      xattr === null &&
      nlink === 1 &&
      inode.sparse === 0 &&
      start <= ABSENT32 &&
      inode.size <= ABSENT32;
    if (basic) {
      const b = this.header(2, inode, layer, number, 16);
      b.writeUInt32LE(start, 16);
      b.writeUInt32LE(fragment, 20);
      b.writeUInt32LE(offset, 24);
      b.writeUInt32LE(inode.size, 28);
      return { ref: this.putInode(number, 32, words), number, basicType: 2 };
    }
    const b = this.header(9, inode, layer, number, 40);
    b.writeBigUInt64LE(BigInt(start), 16);
    b.writeBigUInt64LE(BigInt(inode.size), 24);
    b.writeBigUInt64LE(BigInt(inode.sparse), 32);
    b.writeUInt32LE(nlink, 40);
    b.writeUInt32LE(fragment, 44);
    b.writeUInt32LE(offset, 48);
    b.writeUInt32LE(xattr ?? ABSENT32, 52);
    return { ref: this.putInode(number, 56, words), number, basicType: 2 };
  }
}

/**
 * A directory listing, written straight into the directory table: runs of
 * entries under headers (same inode block, inode numbers within 32767 of
 * the run's base, at most 256). Returns its size in bytes.
 */
function writeListing(w: MetadataWriter, list: readonly ListingEntry[], scratch: Buffer): number {
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

const PREFIXES: readonly [number, Buffer][] = [
  [0, Buffer.from('user.')],
  [1, Buffer.from('trusted.')],
  [2, Buffer.from('security.')],
];

function encodeXattr(x: Xattr): Buffer | null {
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

/**
 * All of buf at pos. write(2) may write less than asked when the disk fills
 * (the next call then fails with ENOSPC): a short write must never pass
 * unnoticed.
 */
async function writeAt(fh: fsp.FileHandle, buf: Buffer, pos: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await fh.write(buf, done, buf.length - done, pos + done);
    if (bytesWritten <= 0) throw new Error(`write at ${pos + done} made no progress`);
    done += bytesWritten;
  }
}

function u64(v: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(v), 0);
  return b;
}
