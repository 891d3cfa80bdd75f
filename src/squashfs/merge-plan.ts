/**
 * The writer's first pass: one walk of the merged view of a stack of
 * images, with OverlayFS's rules (see merge.ts), on the decoded tables in
 * place, into a Plan (plan.ts).
 */
import { compareNames, scanListing } from './directory.js';
import { SquashfsFormatError, SquashfsWriteError } from './errors.js';
import { InodeView } from './inode-view.js';
import { Plan, storedBytes } from './plan.js';
import { sortRange } from './plan-order.js';
import type { ImageTables } from './tables.js';

const OPAQUE = Buffer.from('trusted.overlay.opaque');
const byRef = (r: number): string => ` (inode reference 0x${r.toString(16)})`;
const byNumber = (n: number): string => ` (inode ${n})`;
const ABSENT32 = 0xffffffff;

/** A directory of one layer that a merged directory is made of. */
interface LayerDir {
  layer: number;
  /** Where its inode lies in the layer's decoded inode table, and its reference. */
  pos: number;
  ref: number;
}

interface Frame {
  entry: number;
  next: number;
}

export interface PlanOptions {
  keepWhiteouts: boolean;
  /** The layer that is a directory being packed (skeleton.ts), if any. */
  freshLayer?: number;
  signal?: AbortSignal;
}

/** Walk the merged view of `tables` (bottom first) into a Plan. */
export async function makePlan(tables: readonly ImageTables[], opts: PlanOptions): Promise<Plan> {
  return new Planner(tables, opts).run();
}

class Planner {
  private readonly plan: Plan;
  private readonly view = new InodeView();
  /** Merged directories made of more than one layer, until the walk reaches them. */
  private readonly merged = new Map<number, LayerDir[]>();
  private readonly seen: Set<number>[];
  private readonly links = new Map<string, number>();
  private nextNumber = 1;

  constructor(
    private readonly tables: readonly ImageTables[],
    private readonly opts: PlanOptions,
  ) {
    this.plan = new Plan(tables);
    this.plan.freshLayer = opts.freshLayer ?? -1;
    this.seen = tables.map(() => new Set<number>());
  }

  private load(layer: number, pos: number, ref: number): InodeView {
    const t = this.tables[layer];
    if (!t) throw new SquashfsWriteError('verify', `internal error: no image ${layer}`);
    const sb = t.image.superblock;
    return this.view.load(
      t.inodeTable.data,
      pos,
      sb.blockSize,
      sb.inodeCount,
      ref,
      t.inodeTable.tableStart,
    );
  }

  private inodePos(layer: number, ref: number): number {
    const t = this.tables[layer];
    if (!t) throw new SquashfsWriteError('verify', `internal error: no image ${layer}`);
    return t.inodeTable.at(Math.floor(ref / 65536), ref % 65536, byRef, ref);
  }

  async run(): Promise<Plan> {
    const plan = this.plan;
    const roots = await this.rootDirs();
    const top = roots[0];
    if (!top) throw new SquashfsWriteError('incompatible', 'no images to merge');
    const root = plan.add(
      top.layer,
      top.pos,
      top.ref,
      0,
      0,
      this.load(top.layer, top.pos, top.ref).type,
    );
    plan.number[root] = this.nextNumber++;
    plan.inodes = 1;
    plan.dirs = 1;
    await this.enter(root, roots);
    const stack: Frame[] = [{ entry: root, next: 0 }];
    while (stack.length > 0) {
      const f = stack[stack.length - 1];
      if (!f) break;
      if (f.next >= (plan.count[f.entry] ?? 0)) {
        stack.pop();
        continue;
      }
      const c = (plan.first[f.entry] ?? 0) + f.next++;
      if (plan.isDir(c)) {
        plan.number[c] = this.nextNumber++;
        plan.inodes++;
        plan.dirs++;
        const layer = plan.layer[c] ?? 0;
        const dirs = this.merged.get(c) ?? [
          { layer, pos: plan.ipos[c] ?? 0, ref: plan.iref[c] ?? 0 },
        ];
        this.merged.delete(c);
        await this.enter(c, dirs);
        stack.push({ entry: c, next: 0 });
      } else {
        this.leaf(c);
      }
    }
    for (let i = 0; i < plan.n; i++) {
      const first = plan.linkOf[i] ?? -1;
      if (first >= 0) plan.nlink[i] = plan.nlink[first] ?? 1;
    }
    if (plan.inodes > ABSENT32 - 1) {
      throw new SquashfsWriteError('too-large', `${plan.inodes} inodes do not fit one image`);
    }
    return plan;
  }

  /** A non-directory the walk reaches: its number, links, data and tail. */
  private leaf(c: number): void {
    const plan = this.plan;
    const layer = plan.layer[c] ?? 0;
    const v = this.load(layer, plan.ipos[c] ?? 0, plan.iref[c] ?? 0);
    if (v.nlink > 1) {
      const key = `${layer}:${v.number}`;
      const first = this.links.get(key);
      if (first !== undefined) {
        plan.linkOf[c] = first;
        plan.number[c] = plan.number[first] ?? 0;
        plan.nlink[first] = (plan.nlink[first] ?? 1) + 1;
        return;
      }
      this.links.set(key, c);
    }
    plan.number[c] = this.nextNumber++;
    plan.nlink[c] = 1;
    plan.inodes++;
    if (v.basic !== 2) return;
    plan.files++;
    if (layer === plan.freshLayer) {
      this.freshFile(c, v);
      return;
    }
    const t = this.tables[layer];
    if (!t) return;
    const stored = storedBytes(t, v);
    if (stored > 0) plan.ranges[layer]?.push(v.start, stored);
    if (v.fragment < 0) return;
    if (v.fragment >= t.fragments.length) {
      throw new SquashfsFormatError(
        'inode',
        `inode ${v.number} names fragment ${v.fragment} of ${t.fragments.length}`,
        -1,
      );
    }
    const live = plan.live[layer];
    const len = v.size % t.image.superblock.blockSize;
    if (live) live[v.fragment] = (live[v.fragment] ?? 0) + len;
    plan.frag[c] = v.fragment;
    plan.fragOffset[c] = v.fragmentOffset;
    plan.tailLength[c] = len;
    plan.tails.push(c);
  }

  /**
   * A file of the directory being packed: a file smaller than a block goes
   * whole into a fragment, a larger one into blocks only (mksquashfs's
   * default, without -always-use-fragments).
   */
  private freshFile(c: number, v: InodeView): void {
    const plan = this.plan;
    plan.freshIndex[c] = plan.freshFiles.length;
    plan.freshFiles.push(c);
    plan.freshNumbers.push(v.number);
    const bs = this.tables[plan.freshLayer]?.image.superblock.blockSize ?? 0;
    if (v.size === 0 || v.size >= bs) return;
    plan.frag[c] = -1;
    plan.fragOffset[c] = 0;
    plan.tailLength[c] = v.size;
    plan.tails.push(c);
  }

  /** The root directory's layers, top first (an opaque root hides those below). */
  private async rootDirs(): Promise<LayerDir[]> {
    const out: LayerDir[] = [];
    for (let layer = this.tables.length - 1; layer >= 0; layer--) {
      const t = this.tables[layer];
      if (!t) continue;
      const ref = t.image.superblock.rootInodeRef;
      const d = { layer, pos: this.inodePos(layer, ref), ref };
      out.push(d);
      if (await this.isOpaque(d)) break;
    }
    return out;
  }

  private async isOpaque(d: LayerDir): Promise<boolean> {
    if (this.load(d.layer, d.pos, d.ref).xattr < 0) return false;
    const t = this.tables[d.layer];
    if (!t) return false;
    const xs = await t.image.xattrs(t.inode(d.ref));
    return xs.some((x) => x.name.equals(OPAQUE) && x.value.length === 1 && x.value[0] === 0x79);
  }

  /** Append the merged children of a directory made of `dirs` (top first). */
  private async enter(entry: number, dirs: readonly LayerDir[]): Promise<void> {
    this.opts.signal?.throwIfAborted();
    for (const d of dirs) {
      const seen = this.seen[d.layer];
      if (seen?.has(d.pos)) {
        const v = this.load(d.layer, d.pos, d.ref);
        throw new SquashfsFormatError(
          'directory listing',
          `directory inode ${v.number} of image ${d.layer} appears twice in the tree (a cycle)`,
          -1,
        );
      }
      seen?.add(d.pos);
    }
    const plan = this.plan;
    const first = plan.n;
    const only = dirs.length === 1 ? dirs[0] : undefined;
    if (only) this.singleLayer(only);
    else await this.mergeLayers(dirs);
    plan.first[entry] = first;
    plan.count[entry] = plan.n - first;
    let subdirs = 0;
    for (let i = first; i < plan.n; i++) if (plan.isDir(i)) subdirs++;
    plan.nlink[entry] = 2 + subdirs;
  }

  /** A listing, checked; `visit` gets each entry with its inode loaded. */
  private scan(
    d: LayerDir,
    visit: (npos: number, nlen: number, pos: number, ref: number, v: InodeView) => void,
  ): void {
    const t = this.tables[d.layer];
    if (!t) return;
    const dir = this.load(d.layer, d.pos, d.ref);
    if (dir.listingSize <= 3) return;
    const dt = t.directoryTable;
    // The view is reloaded for every entry: keep the directory's fields.
    const number = dir.number;
    const block = dir.dirBlock;
    const fail = (msg: string): never => {
      throw new SquashfsFormatError(
        'directory listing',
        `${msg} (inode ${number})`,
        dt.tableStart + block,
      );
    };
    const at = dt.at(dir.dirBlock, dir.dirOffset, byNumber, number);
    const sb = t.image.superblock;
    const inodeBlocks = sb.directoryTableStart - sb.inodeTableStart;
    const size = dir.listingSize;
    scanListing(dt.data, at, size, inodeBlocks, fail, (np, nl, iblock, off, _num, type) => {
      const ref = iblock * 65536 + off;
      const pos = this.inodePos(d.layer, ref);
      const v = this.load(d.layer, pos, ref);
      if (v.basic !== type) {
        fail(
          `entry ${JSON.stringify(dt.data.toString('latin1', np, np + nl))} says type ${type} but its inode is of type ${v.basic}`,
        );
      }
      visit(np, nl, pos, ref, v);
    });
  }

  /**
   * Most directories exist in one layer only (the base): their listing is
   * already sorted and nothing below needs hiding.
   */
  private singleLayer(d: LayerDir): void {
    const plan = this.plan;
    const first = plan.n;
    const data = this.tables[d.layer]?.directoryTable.data ?? Buffer.alloc(0);
    let sorted = true;
    let prevPos = 0;
    let prevLen = -1;
    this.scan(d, (np, nl, pos, ref, v) => {
      if (!this.opts.keepWhiteouts && v.whiteout) return;
      if (prevLen >= 0 && compareNames(data, prevPos, prevLen, data, np, nl) >= 0) sorted = false;
      prevPos = np;
      prevLen = nl;
      plan.add(d.layer, pos, ref, np, nl, v.type);
    });
    // Listings made by mksquashfs are sorted; others are put in order here.
    if (!sorted) sortRange(this.plan, this.tables, this.merged, first, plan.n);
  }

  /** The OverlayFS merge of a directory present in several layers. */
  private async mergeLayers(dirs: readonly LayerDir[]): Promise<void> {
    interface Slot {
      layer: number;
      pos: number;
      ref: number;
      npos: number;
      nlen: number;
      type: number;
      dirs: LayerDir[] | null;
      /** Still taking directories of the same name from lower layers. */
      open: boolean;
    }
    const byName = new Map<string, Slot>();
    const hidden = new Set<string>();
    for (const d of dirs) {
      const data = this.tables[d.layer]?.directoryTable.data ?? Buffer.alloc(0);
      const found: Slot[] = [];
      this.scan(d, (np, nl, pos, ref, v) => {
        found.push({
          layer: d.layer,
          pos,
          ref,
          npos: np,
          nlen: nl,
          // Whiteouts are marked by a type no inode has (0), unless kept.
          type: !this.opts.keepWhiteouts && v.whiteout ? 0 : v.type,
          dirs: v.basic === 1 ? [{ layer: d.layer, pos, ref }] : null,
          open: v.basic === 1,
        });
      });
      for (const e of found) {
        const key = data.toString('latin1', e.npos, e.npos + e.nlen);
        const have = byName.get(key);
        if (have) {
          if (!have.open) continue;
          if (e.dirs === null) {
            // A file or whiteout below a directory ends the merge there.
            have.open = false;
            continue;
          }
          const below = e.dirs[0];
          if (below) {
            have.dirs?.push(below);
            if (await this.isOpaque(below)) have.open = false;
          }
          continue;
        }
        if (hidden.has(key)) continue;
        if (e.type === 0) {
          hidden.add(key);
          continue;
        }
        const top = e.dirs?.[0];
        if (top && (await this.isOpaque(top))) e.open = false;
        byName.set(key, e);
      }
    }
    const plan = this.plan;
    const first = plan.n;
    for (const s of byName.values()) {
      const i = plan.add(s.layer, s.pos, s.ref, s.npos, s.nlen, s.type);
      if (s.dirs && s.dirs.length > 1) this.merged.set(i, s.dirs);
    }
    sortRange(this.plan, this.tables, this.merged, first, plan.n);
  }
}
