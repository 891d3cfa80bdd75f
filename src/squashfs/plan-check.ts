/**
 * The writer's check of what it wrote, sharing its plan: the output is
 * parsed from its own bytes (nothing is taken from the writer's memory but
 * the plan and where it put each block), and every entry is compared with
 * the source inode the plan names: name, type, permissions, owner, mtime,
 * inode number, link count, size, block list, symlink target, device
 * number, xattrs, where its blocks and its tail went. Every copied range is
 * compared byte for byte with its input, every repacked tail with its
 * source, and every directory index with its listing. The merge semantics
 * themselves are checked independently by verifyMergedImage (verify-merge.ts)
 * and, in the tests, against the kernel's overlay.
 */
import { scanListing } from './directory.js';
import { SquashfsWriteError } from './errors.js';
import { SquashfsImage, type Xattr } from './image.js';
import { InodeView } from './inode-view.js';
import type { PlanCheckResult } from './merge-options.js';
import type { WrittenMerge } from './merge-writer.js';
import type { ByteSource } from './source.js';
import { ImageTables } from './tables.js';
import { crc32 } from './pack-jobs.js';

const CHUNK = 1 << 20;
const noContext = (): string => '';

export async function checkAgainstPlan(
  w: WrittenMerge,
  output: ByteSource,
  keepXattr: (name: Buffer) => boolean,
  signal?: AbortSignal,
): Promise<PlanCheckResult> {
  const img = await SquashfsImage.fromSource(output);
  try {
    const out = await ImageTables.load(img);
    const c = new Checker(w, out, keepXattr, signal);
    await c.tree();
    await c.data();
    return { entries: c.entries, bytesCompared: c.bytes };
  } finally {
    await img.close();
  }
}

class Checker {
  entries = 0;
  bytes = 0;
  private readonly a = new InodeView();
  private readonly b = new InodeView();
  private readonly refs: Float64Array;

  constructor(
    private readonly w: WrittenMerge,
    private readonly out: ImageTables,
    private readonly keepXattr: (name: Buffer) => boolean,
    private readonly signal?: AbortSignal,
  ) {
    this.refs = new Float64Array(w.plan.n);
  }

  private fail(e: number, what: string): never {
    const name = e === 0 ? '/' : this.w.plan.name(e).toString('latin1');
    throw new SquashfsWriteError('verify', `${name}: ${what} differs from the merged inputs`);
  }

  private loadOut(ref: number): InodeView {
    const t = this.out.inodeTable;
    const sb = this.out.image.superblock;
    const pos = t.at(Math.floor(ref / 65536), ref % 65536, noContext, 0);
    return this.b.load(t.data, pos, sb.blockSize, sb.inodeCount, ref, t.tableStart);
  }

  private loadIn(e: number): InodeView {
    const p = this.w.plan;
    const t = p.tables[p.layer[e] ?? 0];
    if (!t) this.fail(e, 'layer');
    const sb = t.image.superblock;
    const d = t.inodeTable;
    return this.a.load(
      d.data,
      p.ipos[e] ?? 0,
      sb.blockSize,
      sb.inodeCount,
      p.iref[e] ?? 0,
      d.tableStart,
    );
  }

  /** The output's tree against the plan's, depth first in the plan's order (first names of hard links first). */
  async tree(): Promise<void> {
    const p = this.w.plan;
    const rootRef = this.out.image.superblock.rootInodeRef;
    this.refs[0] = rootRef;
    if (this.same(0, rootRef)) await this.sameXattrs(0, rootRef);
    const frames: { entry: number; refs: number[]; next: number }[] = [
      { entry: 0, refs: this.listing(0, this.loadOut(rootRef)), next: 0 },
    ];
    while (frames.length > 0) {
      const f = frames[frames.length - 1];
      if (!f) break;
      if (f.next >= f.refs.length) {
        frames.pop();
        continue;
      }
      const i = f.next++;
      const e = (p.first[f.entry] ?? 0) + i;
      const ref = f.refs[i] ?? 0;
      this.refs[e] = ref;
      if (this.same(e, ref)) await this.sameXattrs(e, ref);
      this.entries++;
      if (p.isDir(e)) {
        this.signal?.throwIfAborted();
        frames.push({ entry: e, refs: this.listing(e, this.loadOut(ref)), next: 0 });
      }
    }
  }

  /** The output listing of a directory: names checked against the plan, references returned; the index checked. */
  private listing(e: number, dir: InodeView): number[] {
    const p = this.w.plan;
    const t = this.out.directoryTable;
    const sb = this.out.image.superblock;
    const fail = (msg: string): never => this.fail(e, `listing (${msg})`);
    const refs: number[] = [];
    if (dir.listingSize <= 3) {
      if ((p.count[e] ?? 0) !== 0) this.fail(e, `entry count (0 written, ${p.count[e]} planned)`);
      return refs;
    }
    const start = t.at(dir.dirBlock, dir.dirOffset, noContext, 0);
    const first = p.first[e] ?? 0;
    // Listing offset of each run's header -> the run's first entry.
    const heads = new Map<number, number>();
    const inodeBlocks = sb.directoryTableStart - sb.inodeTableStart;
    scanListing(
      t.data,
      start,
      dir.listingSize,
      inodeBlocks,
      fail,
      (np, nl, block, off, _n, _t, h) => {
        const c = first + refs.length;
        const name = p.name(c);
        if (nl !== name.length || name.compare(t.data, np, np + nl) !== 0) this.fail(c, 'name');
        if (!heads.has(h - start)) heads.set(h - start, c);
        refs.push(block * 65536 + off);
      },
    );
    if (refs.length !== (p.count[e] ?? 0)) {
      this.fail(e, `entry count (${refs.length} written, ${p.count[e]} planned)`);
    }
    // The directory index: each entry names a run's header, its block and its first name.
    let pos = dir.varPos;
    const d = this.out.inodeTable.data;
    for (let k = 0; k < dir.indexCount; k++) {
      const at = d.readUInt32LE(pos);
      const block = d.readUInt32LE(pos + 4);
      const len = d.readUInt32LE(pos + 8) + 1;
      const c = heads.get(at);
      if (c === undefined) this.fail(e, `directory index entry ${k} (no run at ${at})`);
      const name = p.name(c);
      if (len !== name.length || name.compare(d, pos + 12, pos + 12 + len) !== 0) {
        this.fail(e, `directory index entry ${k} (name)`);
      }
      if (t.blocksIn(start + at, start + at + 1)[0] !== block) {
        this.fail(e, `directory index entry ${k} (block)`);
      }
      pos += 12 + len;
    }
    return refs;
  }

  /** One entry: the output inode at ref against the plan and its source inode; true when xattrs are to compare. */
  private same(e: number, ref: number): boolean {
    const p = this.w.plan;
    // A second name of an inode is that inode, checked at its first name.
    const linked = p.linkOf[e] ?? -1;
    if (linked >= 0) {
      if (ref !== this.refs[linked]) this.fail(e, 'hard link');
      return false;
    }
    const a = this.loadIn(e);
    const b = this.loadOut(ref);
    if (a.basic !== b.basic) this.fail(e, 'type');
    if (a.permissions !== b.permissions) this.fail(e, 'mode');
    if (a.mtime !== b.mtime) this.fail(e, 'mtime');
    const t = p.tables[p.layer[e] ?? 0];
    if (!t) this.fail(e, 'layer');
    const ia = t.image.idList();
    const ib = this.out.image.idList();
    if (ia[a.uidIndex] !== ib[b.uidIndex]) this.fail(e, 'owner');
    if (ia[a.gidIndex] !== ib[b.gidIndex]) this.fail(e, 'group');
    if (b.number !== p.number[e]) this.fail(e, 'inode number');
    if (b.nlink !== p.nlink[e]) this.fail(e, 'link count');
    const da = t.inodeTable.data;
    const db = this.out.inodeTable.data;
    switch (a.basic) {
      case 2: {
        if (p.isFresh(e)) {
          this.samePacked(e, a, b);
          break;
        }
        if (a.size !== b.size || a.sparse !== b.sparse) this.fail(e, 'size');
        const n = 4 * a.blockCount;
        if (n > 0 && da.compare(db, b.varPos, b.varPos + n, a.varPos, a.varPos + n) !== 0) {
          this.fail(e, 'block list');
        }
        const map = this.w.data.maps[p.layer[e] ?? 0];
        let stored = 0;
        for (let i = 0; i < a.blockCount; i++)
          stored += da.readUInt32LE(a.varPos + 4 * i) & 0xffffff;
        if (stored > 0 && b.start !== map?.map(a.start)) this.fail(e, 'block start');
        const placed = this.w.placement.newFragment[e] ?? -1;
        const kept =
          a.fragment < 0 ? undefined : this.w.placement.keptIndex[p.layer[e] ?? 0]?.get(a.fragment);
        const wantFrag = a.fragment < 0 ? -1 : placed >= 0 ? placed : (kept ?? -2);
        const wantOff = placed >= 0 ? (this.w.placement.newOffset[e] ?? 0) : a.fragmentOffset;
        if (b.fragment !== wantFrag || (wantFrag >= 0 && b.fragmentOffset !== wantOff))
          this.fail(e, 'fragment');
        break;
      }
      case 3:
        if (
          a.targetLength !== b.targetLength ||
          da.compare(
            db,
            b.varPos,
            b.varPos + b.targetLength,
            a.varPos,
            a.varPos + a.targetLength,
          ) !== 0
        ) {
          this.fail(e, 'symlink target');
        }
        break;
      case 4:
      case 5:
        if (a.rdev !== b.rdev) this.fail(e, 'device number');
        break;
      default:
        break;
    }
    return a.xattr >= 0 || b.xattr >= 0;
  }

  /** A packed file: what the output says against what the writer compressed for it. */
  private samePacked(e: number, a: InodeView, b: InodeView): void {
    const f = this.w.packed?.files.get(e);
    if (a.size !== b.size) this.fail(e, 'size');
    if (b.sparse !== (f?.sparse ?? 0)) this.fail(e, 'sparse bytes');
    const words = f?.words ?? Buffer.alloc(0);
    const db = this.out.inodeTable.data;
    if (
      4 * b.blockCount !== words.length ||
      words.compare(db, b.varPos, b.varPos + words.length) !== 0
    ) {
      this.fail(e, 'block list');
    }
    let stored = 0;
    for (let i = 0; i < words.length; i += 4) stored += words.readUInt32LE(i) & 0xffffff;
    if (stored > 0 && b.start !== f?.start) this.fail(e, 'block start');
    const placed = this.w.placement.newFragment[e] ?? -1;
    if (b.fragment !== placed) this.fail(e, 'fragment');
    if (placed >= 0 && b.fragmentOffset !== (this.w.placement.newOffset[e] ?? 0)) {
      this.fail(e, 'fragment offset');
    }
  }

  private async sameXattrs(e: number, ref: number): Promise<void> {
    const p = this.w.plan;
    const t = p.tables[p.layer[e] ?? 0];
    if (!t) this.fail(e, 'layer');
    const source = t.inode(p.iref[e] ?? 0);
    const kept =
      source.xattrIndex === null
        ? []
        : (await t.image.xattrs(source)).filter((x) => this.keepXattr(x.name));
    const written = this.out.inode(ref);
    const got = written.xattrIndex === null ? [] : await this.out.image.xattrs(written);
    if (!sameXattrs(kept, got)) this.fail(e, 'xattrs');
  }

  /** Every block of the packed files, read back through the reader (so decompressed), against its crc32 when read. */
  private async packedBlocks(): Promise<void> {
    const packed = this.w.packed;
    if (!packed) return;
    for (const [e, f] of packed.files) {
      this.signal?.throwIfAborted();
      const inode = await this.out.image.inode(this.refs[e] ?? 0);
      let i = 0;
      for await (const chunk of this.out.image.readFile(inode)) {
        if (i >= f.crcs.length || crc32(chunk) !== f.crcs[i]) this.fail(e, `data (block ${i})`);
        this.bytes += chunk.length;
        i++;
      }
      if (i !== f.crcs.length) this.fail(e, 'data (block count)');
    }
  }

  /** Copied ranges byte for byte; kept fragment blocks where the table says; repacked tails by content. */
  async data(): Promise<void> {
    const p = this.w.plan;
    const bufA = Buffer.allocUnsafe(CHUNK);
    const bufB = Buffer.allocUnsafe(CHUNK);
    for (const [layer, map] of this.w.data.maps.entries()) {
      const t = p.tables[layer];
      if (!t) continue;
      for (const [from, to, n] of map.extents()) {
        for (let off = 0; off < n; off += CHUNK) {
          this.signal?.throwIfAborted();
          const len = Math.min(CHUNK, n - off);
          const x = await t.image.readRaw(from + off, len, 'data block', bufA);
          const y = await this.out.image.readRaw(to + off, len, 'data block', bufB);
          if (!x.equals(y))
            throw new SquashfsWriteError(
              'verify',
              `data copied from image ${layer} at byte ${from + off} differs`,
            );
          this.bytes += len;
        }
      }
    }
    const frags = this.out.fragments;
    for (const k of this.w.placement.kept) {
      const e = p.tables[k.layer]?.fragments[k.index];
      const f = frags[k.newIndex];
      if (!e || !f || f.word !== e.word || f.start !== this.w.data.maps[k.layer]?.map(e.start)) {
        throw new SquashfsWriteError(
          'verify',
          `fragment ${k.newIndex} is not block ${k.index} of image ${k.layer}`,
        );
      }
    }
    await this.packedBlocks();
    for (const blk of this.w.placement.blocks) {
      const got = await this.out.image.fragmentData(blk.newIndex);
      for (const e of blk.tails) {
        if (p.isFresh(e)) {
          const at = this.w.placement.newOffset[e] ?? 0;
          const len = p.tailLength[e] ?? 0;
          if (
            at + len > got.length ||
            crc32(got.subarray(at, at + len)) !== this.w.packed?.tailCrc.get(e)
          ) {
            this.fail(e, 'data (packed tail)');
          }
          this.bytes += len;
          continue;
        }
        const t = p.tables[p.layer[e] ?? 0];
        if (!t) continue;
        const src = await t.image.fragmentData(p.frag[e] ?? 0);
        const from = p.fragOffset[e] ?? 0;
        const len = p.tailLength[e] ?? 0;
        const at = this.w.placement.newOffset[e] ?? 0;
        if (src.compare(got, at, at + len, from, from + len) !== 0)
          this.fail(e, 'data (repacked tail)');
        this.bytes += len;
      }
    }
  }
}

function sameXattrs(a: readonly Xattr[], b: readonly Xattr[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((x, i) => {
    const y = b[i];
    return y !== undefined && x.name.equals(y.name) && x.value.equals(y.value);
  });
}
