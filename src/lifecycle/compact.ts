/**
 * compact: pack the read-only stack of images into one new base, never
 * from the live writable tree. On a mounted tree it compacts the images
 * under the session's upper; the session then stands on the new base, which
 * holds the same content.
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
import { fault } from './faults.js';
import { checkImages } from './integrity.js';
import { observe, requireManifest } from './observe.js';
import { isWriterRefusal, mergeAndPublish, writerUnsuitable } from './merge-publish.js';
import { packAndPublish } from './publish.js';
import { errorMessage } from '../errors.js';
import type { ImageRecord, Manifest } from '../store/manifest.js';
import { mergeRecipe } from '../store/manifest.js';
import { writeSession } from './session.js';
import { mountStack, mountedLowerView } from './stack.js';
import { join } from 'node:path';

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

export async function compactLocked(ctx: TreeContext): Promise<CompactResult> {
  const { tree, layout, reporter } = ctx;
  const t0 = performance.now();
  const obs = await observe(ctx);
  const m = requireManifest(ctx, obs);
  const cur = currentGeneration(m);
  const sizeOf = (files: readonly string[]): number =>
    files.reduce((n, f) => n + (m.images[f]?.bytes ?? 0), 0);
  const mounted = obs.state === 'mounted' && obs.session !== null;
  const session = obs.session;
  // On a mounted tree the session's images are compacted; its own layer (if committed) stays on top.
  const sessionLayer =
    mounted && session?.committedGeneration === m.current
      ? cur.images[cur.images.length - 1]
      : undefined;
  const toPack = mounted && session ? session.lower : cur.images;
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
  if (
    mounted &&
    session?.committedGeneration != null &&
    session.committedGeneration !== m.current
  ) {
    return result(
      false,
      m.current,
      cur.images,
      'the mounted session does not match the current generation; stop and start the tree first',
    );
  }
  if (toPack.length <= 1) return result(false, m.current, cur.images, 'already a single image');
  if (obs.state === 'interrupted')
    return result(
      false,
      m.current,
      cur.images,
      'an interrupted session is pending; start the tree first',
    );
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
        verifyMount: process.geteuid?.() === 0 ? layout.verifyMount : null,
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
      if (!isWriterRefusal(e)) throw e;
      methodReason = errorMessage(e);
    }
  }
  if (!record) {
    method = 'mksquashfs';
    record = await packView(ctx, mounted, toPack, file, m);
  }
  const images = sessionLayer ? [file, sessionLayer] : [file];
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
  m.images[file] = record;
  m.generations.push(gen);
  m.current = number;
  m.lastGeneration = number;
  await writeManifestOrUnpublish(tree.store, m, file);
  fault('compact:after-manifest');
  if (mounted && session) {
    await writeSession(layout.sessionFile, {
      ...session,
      lower: [file],
      committedGeneration: sessionLayer ? number : session.committedGeneration,
    });
  }
  await collectGarbage(tree.store, m, tree.keep, new Set(mounted && session ? [file] : []));
  return {
    ...result(true, number, images),
    method,
    ...(methodReason ? { methodReason } : {}),
  };
}

/** mksquashfs over the merged view of the images: the mounted session's lower stack, or a scratch mount. */
async function packView(
  ctx: TreeContext,
  mounted: boolean,
  toPack: readonly string[],
  file: string,
  m: Manifest,
): Promise<ImageRecord> {
  const { tree, layout, reporter } = ctx;
  let view: string;
  let unmountScratch: (() => Promise<void>) | undefined;
  if (mounted) {
    view = await mountedLowerView(layout);
  } else {
    const paths = await checkImages(tree.store, m, toPack, layout.verifiedCache);
    const stack = await mountStack(
      paths,
      (i) => join(layout.scratch, String(i)),
      join(layout.scratch, 'view'),
      extraMountOptions(tree),
    );
    view = stack.view;
    unmountScratch = stack.unmount;
  }
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
    if (unmountScratch) await unmountScratch();
  }
}
