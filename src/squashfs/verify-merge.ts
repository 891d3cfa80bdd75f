/**
 * Checking an image the writer made against the stack it came from, with
 * nothing shared with the writer but the reader: the output is parsed from
 * its own bytes and every entry is compared with the merged view of the
 * inputs (names, types, permissions, owners, mtimes, sizes, symlink
 * targets, device numbers, xattrs, hard links), and every data and fragment
 * block the output points to is compared byte for byte with the block of
 * the input it came from.
 */
import { SquashfsWriteError } from './errors.js';
import { SquashfsImage, type Xattr } from './image.js';
import type { FileInode, Inode } from './inode.js';
import { dropOverlayXattrs, OverlayMerge, type LayerDir } from './merge.js';
import type { ByteSource } from './source.js';
import { ImageTables } from './tables.js';

export interface VerifyMergeResult {
  entries: number;
  /** Data and fragment bytes compared. */
  bytesCompared: number;
}

const CHUNK = 1 << 20;

export async function verifyMergedImage(
  inputs: readonly string[],
  output: string,
  keepXattr: (name: Buffer) => boolean = dropOverlayXattrs,
): Promise<VerifyMergeResult> {
  const images: SquashfsImage[] = [];
  try {
    for (const p of inputs) images.push(await SquashfsImage.open(p));
    const tables: ImageTables[] = [];
    for (const img of images) tables.push(await ImageTables.load(img));
    return await verifyMergedTables(tables, output, keepXattr);
  } finally {
    for (const img of images) await img.close();
  }
}

/** verifyMergedImage with the inputs already open (the writer's). */
export async function verifyMergedTables(
  inputs: readonly ImageTables[],
  output: string | ByteSource,
  keepXattr: (name: Buffer) => boolean,
  signal?: AbortSignal,
  keepWhiteouts = false,
): Promise<VerifyMergeResult> {
  const out = await (typeof output === 'string'
    ? SquashfsImage.open(output)
    : SquashfsImage.fromSource(output));
  try {
    const outTables = await ImageTables.load(out);
    return await new MergeVerifier(
      new OverlayMerge(inputs, keepWhiteouts),
      outTables,
      keepXattr,
      signal,
    ).run();
  } finally {
    await out.close();
  }
}

class MergeVerifier {
  private entries = 0;
  private bytes = 0;
  /** "layer:inode number" -> output inode number, and back. */
  private readonly linksIn = new Map<string, number>();
  private readonly linksOut = new Map<number, string>();
  /** Output fragment index -> "layer:fragment index" it was checked against. */
  private readonly fragments = new Map<number, string>();
  /** Output inode numbers met (for inodes with one link: met twice is a wrong hard link). */
  private seenOut = new Uint8Array(0);
  private readonly bufA = Buffer.allocUnsafe(CHUNK);
  private readonly bufB = Buffer.allocUnsafe(CHUNK);

  constructor(
    private readonly merge: OverlayMerge,
    private readonly out: ImageTables,
    private readonly keepXattr: (name: Buffer) => boolean,
    private readonly signal?: AbortSignal,
  ) {}

  async run(): Promise<VerifyMergeResult> {
    this.seenOut = new Uint8Array(this.out.image.superblock.inodeCount + 1);
    const roots = await this.merge.rootDirs();
    const top = roots[0];
    if (!top) throw new SquashfsWriteError('verify', 'the stack has no root directory');
    await this.same(() => '/', top.layer, top.dir, this.out.root);
    await this.dir('', roots, this.out.root);
    return { entries: this.entries, bytesCompared: this.bytes };
  }

  private fail(path: string, what: string): never {
    throw new SquashfsWriteError(
      'verify',
      `${path || '/'}: ${what} differs from the merged inputs`,
    );
  }

  private async dir(path: string, dirs: LayerDir[], outDir: Inode): Promise<void> {
    this.signal?.throwIfAborted();
    if (outDir.kind !== 'dir') this.fail(path, 'type');
    const want = await this.merge.children(dirs);
    const got = this.out.entries(outDir);
    if (want.length !== got.length) {
      this.fail(path, `entry count (${got.length} written, ${want.length} expected)`);
    }
    for (let i = 0; i < want.length; i++) {
      const w = want[i];
      const g = got[i];
      if (!w || !g) break;
      // Paths are only spelled out for messages and subdirs: 200,000 strings cost.
      const p = (): string => `${path}/${w.name.toString('latin1')}`;
      if (!w.name.equals(g.name)) this.fail(p(), 'name');
      const gi = this.out.entryInode(g);
      const pending = this.same(p, w.layer, w.inode, gi);
      if (pending) await pending;
      this.entries++;
      if (w.inode.kind === 'dir') await this.dir(p(), w.dirs, gi);
    }
  }

  /** The sync checks; a promise only where xattrs or bytes must be read. */
  private same(path: () => string, layer: number, a: Inode, b: Inode): Promise<void> | undefined {
    const t = this.merge.layers[layer];
    if (!t) this.fail(path(), 'layer');
    if (a.kind !== b.kind) this.fail(path(), 'type');
    if (a.permissions !== b.permissions) this.fail(path(), 'mode');
    if (a.mtime !== b.mtime) this.fail(path(), 'mtime');
    const ia = t.image.idList();
    const ib = this.out.image.idList();
    if (ia[a.uidIndex] !== ib[b.uidIndex]) this.fail(path(), 'owner');
    if (ia[a.gidIndex] !== ib[b.gidIndex]) this.fail(path(), 'group');
    if (a.kind !== 'dir') {
      if (a.nlink > 1 || b.nlink > 1) {
        const key = `${layer}:${a.number}`;
        const known = this.linksIn.get(key);
        if (known !== undefined && known !== b.number) this.fail(path(), 'hard link');
        const back = this.linksOut.get(b.number);
        if (back !== undefined && back !== key) this.fail(path(), 'hard link');
        if (known !== undefined) return undefined; // compared at its first link
        this.linksIn.set(key, b.number);
        this.linksOut.set(b.number, key);
      } else if (this.seenOut[b.number]) {
        this.fail(path(), 'hard link (an inode shared by two names)');
      }
      this.seenOut[b.number] = 1;
    }
    switch (a.kind) {
      case 'symlink':
        if (b.kind !== 'symlink' || !a.target.equals(b.target)) this.fail(path(), 'symlink target');
        break;
      case 'blockdev':
      case 'chardev':
        if ((b.kind !== 'blockdev' && b.kind !== 'chardev') || a.rdev !== b.rdev) {
          this.fail(path(), 'device number');
        }
        break;
      default:
        break;
    }
    const xattrs = a.xattrIndex !== null || b.xattrIndex !== null;
    const file = a.kind === 'file' && b.kind === 'file' ? this.fileSync(path, t, a, b) : undefined;
    if (!xattrs && !file) return undefined;
    return (async () => {
      if (xattrs) {
        const xb = b.xattrIndex === null ? [] : await this.out.image.xattrs(b);
        if (!sameXattrs(await this.kept(t, a), xb)) this.fail(path(), 'xattrs');
      }
      if (file) await file();
    })();
  }

  private async kept(t: ImageTables, inode: Inode): Promise<Xattr[]> {
    if (inode.xattrIndex === null) return [];
    return (await t.image.xattrs(inode)).filter((x) => this.keepXattr(x.name));
  }

  /** The sync checks of a file; the byte comparisons still to do, if any. */
  private fileSync(
    path: () => string,
    t: ImageTables,
    a: FileInode,
    b: FileInode,
  ): (() => Promise<void>) | undefined {
    if (a.size !== b.size || a.sparse !== b.sparse) this.fail(path(), 'size');
    const wa = t.blockWords(a);
    const wb = this.out.blockWords(b);
    if (!wa.equals(wb)) this.fail(path(), 'block list');
    const stored = t.storedBytes(a);
    if ((a.fragment === null) !== (b.fragment === null)) this.fail(path(), 'fragment');
    let key: string | undefined;
    if (a.fragment !== null && b.fragment !== null) {
      if (!t.fragments[a.fragment] || !this.out.fragments[b.fragment]) {
        this.fail(path(), 'fragment block');
      }
      key = `${this.merge.layers.indexOf(t)}:${a.fragment}`;
      // A block already proven the same bytes, at the same offset: nothing to read.
      if (this.fragments.get(b.fragment) === key && a.fragmentOffset === b.fragmentOffset) {
        key = undefined;
      }
    }
    if (stored === 0 && key === undefined) return undefined;
    return () => this.file(path, t, a, b, stored, key !== undefined);
  }

  private async file(
    path: () => string,
    t: ImageTables,
    a: FileInode,
    b: FileInode,
    stored: number,
    fragment: boolean,
  ): Promise<void> {
    if (stored > 0) await this.compare(path(), t.image, a.blocksStart, b.blocksStart, stored);
    if (!fragment || a.fragment === null || b.fragment === null) return;
    const fa = t.fragments[a.fragment];
    const fb = this.out.fragments[b.fragment];
    if (!fa || !fb) this.fail(path(), 'fragment block');
    const key = `${this.merge.layers.indexOf(t)}:${a.fragment}`;
    // A block copied whole is the same bytes; a repacked tail is the same content.
    if (
      a.fragmentOffset === b.fragmentOffset &&
      fa.word === fb.word &&
      !this.fragments.has(b.fragment) &&
      (await this.sameBytes(t.image, fa.start, fb.start, fa.word & 0xffffff))
    ) {
      this.fragments.set(b.fragment, key);
      return;
    }
    const tail = a.size % t.image.superblock.blockSize;
    const x = (await t.image.fragmentData(a.fragment)).subarray(
      a.fragmentOffset,
      a.fragmentOffset + tail,
    );
    const y = (await this.out.image.fragmentData(b.fragment)).subarray(
      b.fragmentOffset,
      b.fragmentOffset + tail,
    );
    if (x.length !== tail || !x.equals(y)) this.fail(path(), 'data (fragment)');
    this.bytes += tail;
  }

  /** Whether n raw bytes at posA of image a equal those at posB of the output. */
  private async sameBytes(
    a: SquashfsImage,
    posA: number,
    posB: number,
    n: number,
  ): Promise<boolean> {
    for (let off = 0; off < n; off += CHUNK) {
      const len = Math.min(CHUNK, n - off);
      const x = await a.readRaw(posA + off, len, 'data block', this.bufA);
      const y = await this.out.image.readRaw(posB + off, len, 'data block', this.bufB);
      if (!x.equals(y)) return false;
      this.bytes += len;
    }
    return true;
  }

  private async compare(
    path: string,
    a: SquashfsImage,
    posA: number,
    posB: number,
    n: number,
  ): Promise<void> {
    if (!(await this.sameBytes(a, posA, posB, n))) this.fail(path, 'data');
  }
}

function sameXattrs(a: readonly Xattr[], b: readonly Xattr[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((x, i) => {
    const y = b[i];
    return y !== undefined && x.name.equals(y.name) && x.value.equals(y.value);
  });
}
