/**
 * The metadata pass of the writer: one walk over the plan in mksquashfs's
 * order (a directory's children, subdirectories depth first and each leaf
 * where it falls, then its listing, then its inode), writing inodes,
 * listings and xattrs. Depth-first readers (find, stat of every file, tar)
 * then meet inodes in table order.
 */
import type { MetadataCompressor } from './compress.js';
import type { CopiedData } from './data-copy.js';
import { SquashfsWriteError } from './errors.js';
import type { FragmentPlacement } from './fragment-plan.js';
import { InodeView } from './inode-view.js';
import { ABSENT32, InodeWriter, type InodeSource } from './inode-write.js';
import { writeListing, type ListingSource } from './listing-write.js';
import { MetadataWriter } from './meta-writer.js';
import type { PackedData } from './pack-data.js';
import type { Plan } from './plan.js';
import { XattrTableWriter } from './xattr-write.js';

export class Emitter {
  readonly inodes: InodeWriter;
  readonly dirW: MetadataWriter;
  readonly xattrs: XattrTableWriter;
  /** Per plan entry: the output inode reference. */
  readonly refs: Float64Array;
  private readonly view = new InodeView();
  private readonly scratch = Buffer.alloc(64);
  private readonly sources: InodeSource[];

  constructor(
    private readonly plan: Plan,
    private readonly placement: FragmentPlacement,
    private readonly data: CopiedData,
    private readonly packed: PackedData | null,
    comp: MetadataCompressor,
    private readonly keepXattr: (name: Buffer) => boolean,
    private readonly signal?: AbortSignal,
  ) {
    this.inodes = new InodeWriter(comp, plan.inodes);
    this.dirW = new MetadataWriter(comp);
    this.xattrs = new XattrTableWriter(comp);
    this.refs = new Float64Array(plan.n);
    this.sources = plan.tables.map((t, layer) => ({
      data: t.inodeTable.data,
      ids: t.image.idList(),
      layer,
    }));
  }

  /** The source inode of a plan entry, loaded into the shared view. */
  private load(e: number): InodeView {
    const plan = this.plan;
    const t = plan.tables[plan.layer[e] ?? 0];
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
    const t = this.plan.tables[this.plan.layer[e] ?? 0];
    if (!t) return null;
    const inode = t.inode(this.plan.iref[e] ?? 0);
    const kept = (await t.image.xattrs(inode)).filter((x) => this.keepXattr(x.name));
    return this.xattrs.add(kept);
  }

  /** Post-order over the plan: a directory's children, then its listing, then its inode. */
  async emit(): Promise<void> {
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
          if ((++steps & 1023) === 0) this.signal?.throwIfAborted();
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
    const tables = plan.tables;
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
    const placed = this.placement.newFragment[e] ?? -1;
    if (plan.isFresh(e)) {
      const f = this.packed?.files.get(e);
      let stored = 0;
      if (f)
        for (let i = 0; i < f.words.length; i += 4) stored += f.words.readUInt32LE(i) & 0xffffff;
      return this.inodes.file(v, this.source(e), number, {
        start: f && stored > 0 ? f.start : 0,
        fragment: placed >= 0 ? placed : ABSENT32,
        offset: placed >= 0 ? (this.placement.newOffset[e] ?? 0) : 0,
        nlink,
        xattr,
        sparse: f?.sparse ?? 0,
        words: f?.words ?? EMPTY,
      });
    }
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

const EMPTY = Buffer.alloc(0);
