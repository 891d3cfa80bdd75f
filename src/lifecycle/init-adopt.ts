/**
 * init of a tree whose store exists but whose config entry does not (the
 * config was lost, or an init was killed after its manifest): after
 * --remove-source the store is the only copy of the data, so it is adopted
 * as it is, never recreated. The manifest must parse and every image it
 * lists must have its recorded size and sha256 and readable metadata; then
 * the config entry is written and nothing in the store is changed.
 */
import { promises as fsp } from 'node:fs';
import { writeConfig } from '../config/edit.js';
import type { TreeConfig } from '../config/schema.js';
import { SquashtreeError } from '../errors.js';
import { checkMetadata } from '../image/check.js';
import { ensureSecureDir } from '../fs/secure.js';
import { currentGeneration, readManifest } from '../store/manifest.js';
import { cleanupTemps, ensureStore, imagePath } from '../store/store.js';
import { makeContext } from './context.js';
import type { InitRequest, InitResult } from './init-request.js';
import { checkDir } from './init-source.js';
import { checkImages } from '../store/image-integrity.js';
import { acquireLock } from './lock.js';

function notAdopted(e: unknown, store: string): unknown {
  if (!(e instanceof SquashtreeError)) return e;
  return new SquashtreeError(e.code, `${e.message}: the store ${store} was not adopted`, {
    ...(e.path ? { path: e.path } : {}),
    ...(e.command ? { command: e.command } : {}),
    ...(e.stderr ? { stderr: e.stderr } : {}),
    hint: `nothing was written or deleted; restore that image from a backup, or make a new tree of an intact base image: squashtree init NAME --dir DIR --from-image ${store}/gNNNNNN-base.sqfs --store NEW-STORE`,
    cause: e,
  });
}

export async function adoptStore(
  req: InitRequest & { dir: string },
  tree: TreeConfig,
  configText: string,
  t0: number,
): Promise<InitResult> {
  // A restored store may come without its mount point.
  await fsp.mkdir(tree.dir, { recursive: true, mode: 0o755 });
  await checkDir(tree.dir);
  const ctx = makeContext(tree, req.stateDir, req.reporter, req.lockWaitSeconds);
  await ensureSecureDir(req.stateDir, { mode: 0o700, parents: true });
  await ensureSecureDir(ctx.layout.runtime, { mode: 0o700 });
  const lock = await acquireLock(ctx.layout.lock, { waitSeconds: req.lockWaitSeconds });
  try {
    const m = await readManifest(tree.store);
    if (!m) throw new SquashtreeError('E_INTERNAL', `the manifest of ${tree.store} went away`);
    if (m.tree !== tree.name) {
      throw new SquashtreeError(
        'E_STORE_EXISTS',
        `the store ${tree.store} holds tree "${m.tree}", not "${tree.name}"`,
        {
          path: tree.store,
          hint: `adopt it under its own name (squashtree init ${m.tree} --dir ${tree.dir} --store ${tree.store}), or choose another store with --store`,
        },
      );
    }
    await ensureStore(tree.store);
    // What an init killed before its config left behind: temp images, never a named one.
    await cleanupTemps(tree.store);
    const files = Object.keys(m.images).sort();
    req.reporter.step(
      `adopting the store ${tree.store}: checking its ${files.length} image(s) (size, sha256, metadata)`,
    );
    try {
      await checkImages(tree.store, m, files, undefined, { force: true });
      for (const [i, f] of files.entries()) {
        req.reporter.progress('checking metadata', i / files.length);
        await checkMetadata(imagePath(tree.store, f));
      }
      req.reporter.progress('checking metadata', 1);
    } catch (e) {
      throw notAdopted(e, tree.store);
    }
    await writeConfig(req.config.path, configText);
    const cur = currentGeneration(m);
    return {
      tree: tree.name,
      dir: tree.dir,
      store: tree.store,
      config: req.config.path,
      generation: m.current,
      imageBytes: cur.images.reduce((n, f) => n + (m.images[f]?.bytes ?? 0), 0),
      files: cur.files ?? 0,
      bytes: cur.bytes ?? 0,
      adopted: true,
      adoptedStore: true,
      images: cur.images.length,
      removedSource: false,
      reclaimedBytes: 0,
      durationMs: performance.now() - t0,
    };
  } finally {
    await lock.release();
  }
}
