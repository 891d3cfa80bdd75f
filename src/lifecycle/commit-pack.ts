/**
 * How a commit packs (pack-method): with the native writer where it can
 * (native-pack.ts), else with mksquashfs, and whether as a layer or as a
 * new base. A layer costs what its files cost to compress; when the change
 * is most of the tree, compressing it costs about what a full pack does, and
 * a new base written from the stack's images (their blocks copied) and the
 * staged upper costs little more, leaves one image instead of a stack that
 * mostly hides itself, and saves the compaction that would follow.
 */
import { SquashtreeError } from '../errors.js';
import { SquashfsFormatError, SquashfsWriteError } from '../squashfs/index.js';
import { checkImages } from '../store/image-integrity.js';
import type { Manifest } from '../store/manifest.js';
import { imagePath } from '../store/store.js';
import { packSettings, type TreeContext } from './context.js';
import { writerUnsuitable } from '../pack/merge-image.js';
import { isPackRefusal, writerUnsuitableFor, type PackMethod } from '../pack/native-pack.js';

/** How a commit packs: stacked (the changes since the session's last commit), full (the whole upper on the images the session mounted), raw (an interrupted session's upper as it is). */
export type CommitMode = 'stacked' | 'full' | 'raw';

/**
 * A new base when the staged bytes reach this share of the tree's. On GURU
 * (75% of the files rewritten) a new base and a layer cost about the same
 * to write, and the base leaves one image; finer tuning needs a quiet
 * machine.
 */
export const NEW_BASE_SHARE = 0.5;

/** Below this the tree's fixed costs (start-up, mounts, checks) dominate either way: a layer keeps the stack. */
export const NEW_BASE_MIN_BYTES = 4 << 20;

/** The new stack does not show what the tree shows: nothing was published. */
export class StackMismatch extends SquashtreeError {
  constructor(readonly first: string) {
    super('E_VERIFY', `the new generation would not show what the tree shows (${first})`, {
      hint: 'nothing was published; report this as a bug (the tree and its changes are intact)',
    });
  }
}

export interface PackChoice {
  method: PackMethod;
  /** Why mksquashfs, when it packs. */
  reason?: string;
  /** Why a new base, when the commit writes one (the writer only). */
  newBase?: string;
}

export interface PackQuestion {
  mode: CommitMode;
  /** The images the commit's layer would go on. */
  below: readonly string[];
  /** Bytes of the regular files staged. */
  stagedBytes: number;
  /** The tree's bytes as the images below hold it (null: unknown). */
  treeBytes: number | null;
  manifest: Manifest;
}

export async function choosePack(ctx: TreeContext, q: PackQuestion): Promise<PackChoice> {
  const { tree } = ctx;
  if (tree.packMethod === 'mksquashfs')
    return { method: 'mksquashfs', reason: 'pack-method = "mksquashfs"' };
  // The overlay's own xattrs (opaque dirs) stay in such a layer; mksquashfs keeps them as they are.
  if (q.mode === 'raw')
    return { method: 'mksquashfs', reason: "an interrupted session's upper is packed as it is" };
  const settings = packSettings(tree);
  const unsuitable = writerUnsuitableFor(settings);
  if (unsuitable) return { method: 'mksquashfs', reason: unsuitable };
  if (q.treeBytes === null || q.treeBytes < NEW_BASE_MIN_BYTES || q.below.length === 0)
    return { method: 'writer' };
  const share = q.stagedBytes / q.treeBytes;
  if (share < NEW_BASE_SHARE) return { method: 'writer' };
  // The images must share the tree's compressor and block size for their blocks to be copied.
  const below = q.below.map((f) => imagePath(tree.store, f));
  if ((await writerUnsuitable(below, settings)) !== null) return { method: 'writer' };
  // Their blocks go into the new base: each must still be the image the manifest names.
  try {
    await checkImages(tree.store, q.manifest, q.below, ctx.layout.verifiedCache);
  } catch (e) {
    if (!(e instanceof SquashtreeError)) throw e;
    ctx.reporter.warn(`${e.message}: packing a layer, not a new base`);
    return { method: 'writer' };
  }
  return {
    method: 'writer',
    newBase: `a new base: the change is ${Math.round(share * 100)}% of the tree`,
  };
}

/**
 * A new base that failed where a layer would not (the writer refused or
 * failed its own check, an image below could not be read, or the base does
 * not show the tree): the commit packs a layer instead.
 */
export function layerInstead(e: unknown): boolean {
  return (
    isPackRefusal(e) ||
    e instanceof SquashfsWriteError ||
    e instanceof SquashfsFormatError ||
    e instanceof StackMismatch
  );
}
