/**
 * compact: pack the read-only stack of images into one new base, never
 * from the live writable tree. On a mounted tree it compacts the current
 * generation, the images the session mounted and the layers its commits
 * stacked on them alike; the overlay stays on what it mounted, and the
 * session's next commit stacks on the new base (its snapshot of the upper
 * is carried over to the new generation, written before the manifest as a
 * commit's is: commit-chain.ts).
 *
 * Two methods: the native writer merges the image files and copies their
 * compressed blocks (about the cost of a copy), used whenever the images
 * share the tree's compressor and block size; otherwise (or with
 * compact-method = "mksquashfs") mksquashfs packs the mounted, merged view,
 * recompressing everything.
 */
import { currentGeneration, imageFileName, type Generation } from '../store/manifest.js';
import { cleanupTemps, collectGarbage, writeManifestOrUnpublish } from '../store/store.js';
import { extraMountOptions, packSettings, type TreeContext } from './context.js';
import { fault } from '../faults.js';
import { checkImages } from '../store/image-integrity.js';
import { admitObserved, observe, type Observation } from './observe.js';
import { mergeAndPublish, writerUnsuitable } from '../pack/merge-image.js';
import { isPackRefusal } from '../pack/native-pack.js';
import { packAndPublish } from '../pack/pack-image.js';
import { errorMessage } from '../errors.js';
import type { ImageRecord, Manifest } from '../store/manifest.js';
import { appendGeneration, mergeRecipe } from '../store/manifest.js';
import { writeSession } from './session.js';
import { removeSnapshots, writeGenerationSnapshot } from './snapshot.js';
import { resolveChain } from './commit-chain.js';
import { mountStack } from '../mount/image-stack.js';
import { join } from 'node:path';
import { isRoot } from '../mount/engine.js';

export interface CompactResult {
  tree: string;
  compacted: boolean;
  reason?: string;
  generation: number;
  layersBefore: number;
  layersAfter: number;
  bytesBefore: number;
  bytesAfter: number;
  durationMs: number;
  /** How the new base was made: blocks copied by the native writer, or recompressed by mksquashfs. */
  method?: 'writer' | 'mksquashfs';
  /** Why mksquashfs was used. */
  methodReason?: string;
}

export async function compactLocked(
  ctx: TreeContext,
  observed?: Observation,
): Promise<CompactResult> {
  const { tree, layout, reporter } = ctx;
  const t0 = performance.now();
  const obs = observed ?? (await observe(ctx));
  const admission = admitObserved(ctx, 'compact', obs);
  const m = admission.manifest;
  const cur = currentGeneration(m);
  const sizeOf = (files: readonly string[]): number =>
    files.reduce((n, f) => n + (m.images[f]?.bytes ?? 0), 0);
  const session = obs.state === 'mounted' ? obs.session : null;
  const chain = session ? await resolveChain(layout, session, m) : null;
  const toPack = cur.images;
  const result = (
    compacted: boolean,
    generation: number,
    after: readonly string[],
    reason?: string,
  ): CompactResult => ({
    tree: tree.name,
    compacted,
    ...(reason ? { reason } : {}),
    generation,
    layersBefore: cur.images.length,
    layersAfter: after.length,
    bytesBefore: sizeOf(cur.images),
    bytesAfter: sizeOf(after),
    durationMs: performance.now() - t0,
  });
  if (chain && chain.head?.generation !== m.current) {
    return result(
      false,
      m.current,
      cur.images,
      'the mounted session does not match the current generation; stop and start the tree first',
    );
  }
  if (toPack.length <= 1) return result(false, m.current, cur.images, 'already a single image');
  if (!admission.run) return result(false, m.current, cur.images, admission.reason);
  await cleanupTemps(tree.store);

  const number = m.lastGeneration + 1;
  const file = imageFileName(number, 'base');
  let record: ImageRecord | undefined;
  let method: CompactResult['method'] = 'writer';
  let methodReason: string | null = 'compact-method = "mksquashfs"';
  const inputs =
    tree.compactMethod === 'auto'
      ? await checkImages(tree.store, m, toPack, layout.verifiedCache)
      : [];
  if (tree.compactMethod === 'auto') {
    methodReason = await writerUnsuitable(inputs, packSettings(tree));
  }
  if (methodReason === null) {
    reporter.step(`compacting ${toPack.length} images into ${file} (copying their blocks)`);
    try {
      const settings = packSettings(tree);
      const published = await mergeAndPublish({
        store: tree.store,
        inputs,
        file,
        compression: settings.compression,
        blockSize: settings.blockSize,
        // Without root nothing can be mounted; the writer's own check still reads every entry and block.
        verifyMount: isRoot() ? layout.verifyMount : null,
        onProgress: (f) => {
          reporter.progress('compacting', f);
        },
        onStep: (what) => {
          reporter.step(what);
        },
      });
      // How a follower holding the inputs makes the same base (mergeAndPublish merges with these settings).
      const ins = toPack.map((f) => m.images[f]).filter((r): r is ImageRecord => r !== undefined);
      record = {
        ...published.record,
        ...(ins.length === toPack.length
          ? { recipe: mergeRecipe(ins, { keepWhiteouts: false }) }
          : {}),
      };
    } catch (e) {
      if (!isPackRefusal(e)) throw e;
      methodReason = errorMessage(e);
    }
  }
  if (!record) {
    method = 'mksquashfs';
    record = await packView(ctx, toPack, file, m);
  }
  const images = [file];
  if (chain && !chain.unstackable) {
    // What of the upper the new base holds: what the generation it replaces held.
    await writeGenerationSnapshot(layout, {
      generation: number,
      images,
      top: record.sha256,
      entries: chain.snapshot,
    });
    fault('compact:after-snapshot');
  }
  const gen: Generation = {
    generation: number,
    parent: m.current,
    action: 'compact',
    created: new Date().toISOString(),
    durationMs: Math.round(performance.now() - t0),
    images,
    files: cur.files ?? null,
    bytes: cur.bytes ?? null,
  };
  appendGeneration(m, { [file]: record }, gen);
  await writeManifestOrUnpublish(tree.store, m, file);
  fault('compact:after-manifest');
  if (chain) {
    // The overlay keeps the images it mounted (and so does the store, while the session lasts).
    await writeSession(layout.sessionFile, { ...chain.session, committedGeneration: number });
    await removeSnapshots(layout, new Set([number]));
  }
  await collectGarbage(tree.store, m, tree.keep, new Set(chain?.session.lower ?? []));
  return {
    ...result(true, number, images),
    method,
    ...(methodReason ? { methodReason } : {}),
  };
}

/** mksquashfs over the merged view of the images, mounted in a scratch dir. */
async function packView(
  ctx: TreeContext,
  toPack: readonly string[],
  file: string,
  m: Manifest,
): Promise<ImageRecord> {
  const { tree, layout, reporter } = ctx;
  const paths = await checkImages(tree.store, m, toPack, layout.verifiedCache);
  const stack = await mountStack(
    paths,
    (i) => join(layout.scratch, String(i)),
    join(layout.scratch, 'view'),
    extraMountOptions(tree),
  );
  const view = stack.view;
  try {
    reporter.step(`compacting ${toPack.length} images into ${file}`);
    const published = await packAndPublish({
      source: view,
      store: tree.store,
      file,
      kind: 'base',
      settings: packSettings(tree),
      verifyMount: layout.verifyMount,
      onProgress: (f) => {
        reporter.progress('compacting', f);
      },
      afterPack: 'compact:after-pack',
    });
    return published.record;
  } finally {
    await stack.unmount();
  }
}
