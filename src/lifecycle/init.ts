/**
 * init: build (or adopt) the first image of a tree and add the tree to the
 * config. The image is verified against the directory before anything else
 * happens, and the directory's files are deleted only when asked
 * (--remove-source) and only after that verification.
 *
 * A tree that half exists is finished, never thrown away: a store whose
 * config entry was lost (the only copy of the data after --remove-source)
 * is adopted once every image checks out, and a tree the config names but
 * that has no images yet is built from the config's own settings.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { restoreConfig, withTree, writeConfig, type TreeTable } from '../config/edit.js';
import { TREE_NAME, type TreeConfig } from '../config/schema.js';
import { isWithin } from '../config/values.js';
import { checkNotSystemDir } from '../config/system-paths.js';
import { SquashtreeError } from '../errors.js';
import { checkMetadata } from '../image/check.js';
import { imageFileName, readManifest, writeManifest, type Manifest } from '../store/manifest.js';
import { cleanupTemps, ensureStore } from '../store/store.js';
import { stageImage } from '../store/stage.js';
import { acquireLock } from './lock.js';
import { makeContext, packSettings } from './context.js';
import { ensureSecureDir } from '../fs/secure.js';
import { fault } from '../faults.js';
import { adoptStore } from './init-adopt.js';
import type { InitRequest, InitResult } from './init-request.js';
import { checkDir, checkIsBase, copyIn, refuseWhiteouts, removeSource } from './init-source.js';
import { packAndPublish, verifyAgainst } from '../pack/pack-image.js';

export type { InitRequest, InitResult } from './init-request.js';

export async function initTree(req: InitRequest): Promise<InitResult> {
  const t0 = performance.now();
  const { config, name } = req;
  if (!TREE_NAME.test(name)) {
    throw new SquashtreeError('E_USAGE', `tree name "${name}" is not allowed`, {
      hint: 'use letters, digits, "-", "_" and "." (at most 64, starting with a letter or digit)',
    });
  }
  const configured = config.trees.find((t) => t.name === name);
  if (configured) {
    await checkConfigured(req, configured);
    await checkTreePaths(configured);
    return buildFirstImage(req, configured, undefined, t0);
  }
  const dir = req.dir;
  if (dir === undefined)
    throw new SquashtreeError('E_USAGE', 'init needs --dir DIR', {
      hint: `squashtree init ${name} --dir /var/db/repos/gentoo`,
    });
  // Before the config is even drafted: `init --dir /proc` must not start packing the kernel's files.
  await checkNotSystemDir(dir, 'dir');
  const table: TreeTable = { dir, ...req.settings };
  const edited = withTree(config.path, config.text, name, table, config.storeRoot);
  const trees = edited.trees;
  const tree = trees.find((t) => t.name === name);
  if (!tree) throw new SquashtreeError('E_INTERNAL', 'new tree did not resolve');
  if (trees.some((t) => t !== tree && (isWithin(t.dir, dir) || isWithin(dir, t.dir)))) {
    throw new SquashtreeError('E_CONFIG_OVERLAP', `${dir} overlaps a tree already configured`, {
      hint: 'each tree needs its own dir',
    });
  }
  await checkTreePaths(tree);
  if (await readManifest(tree.store)) {
    if (req.fromImage !== undefined || req.removeSource) {
      throw new SquashtreeError(
        'E_USAGE',
        `the store ${tree.store} already holds a tree: init adopts it as it is, and packs nothing`,
        {
          hint: `leave out --from-image and --remove-source to adopt it, or choose another store with --store`,
        },
      );
    }
    return adoptStore({ ...req, dir }, tree, edited.text, t0);
  }
  return buildFirstImage(req, tree, edited.text, t0);
}

/** The tree's dir, store and upper: none a system directory or on a pseudo filesystem. */
async function checkTreePaths(tree: TreeConfig): Promise<void> {
  await checkNotSystemDir(tree.dir, 'dir');
  await checkNotSystemDir(tree.store, 'store');
  if (tree.upper.kind === 'dir') await checkNotSystemDir(tree.upper.path, 'upper');
}

/**
 * A tree the config names: with images it is done (start it); without, it
 * is built as configured, so options that say otherwise are refused.
 */
async function checkConfigured(req: InitRequest, tree: TreeConfig): Promise<void> {
  if (await readManifest(tree.store)) {
    throw new SquashtreeError(
      'E_TREE_EXISTS',
      `tree "${tree.name}" is already in ${req.config.path} and has images in ${tree.store}`,
      { hint: `use it: squashtree start ${tree.name} (or choose another name for a new tree)` },
    );
  }
  const given: [string, string | number | string[] | undefined, string][] = [
    ['dir', req.dir, tree.dir],
    ['store', req.settings.store, tree.store],
    ['compression', req.settings.compression, tree.compression],
    ['engine', req.settings.engine, tree.engine],
    ['upper', req.settings.upper, tree.upper.kind === 'tmpfs' ? 'tmpfs' : tree.upper.path],
  ];
  const differ = given.filter(([, v, c]) => v !== undefined && v !== c);
  if (differ.length > 0) {
    throw new SquashtreeError(
      'E_USAGE',
      `tree "${tree.name}" is configured in ${req.config.path} with ${differ.map(([k, , c]) => `${k} = ${c}`).join(', ')}; init builds it from there`,
      {
        hint: `edit [tree.${tree.name}] in ${req.config.path}, or leave out ${differ.map(([k]) => `--${k}`).join(', ')}`,
      },
    );
  }
}

/** Pack (or copy in) generation 1, record it, and add the tree to the config when `newConfig`. */
async function buildFirstImage(
  req: InitRequest,
  tree: TreeConfig,
  newConfig: string | undefined,
  t0: number,
): Promise<InitResult> {
  const { config, name } = req;
  const dir = tree.dir;
  await checkDir(dir);
  if (req.fromImage)
    await fsp.access(req.fromImage).catch(() => {
      throw new SquashtreeError('E_SOURCE', `image ${req.fromImage ?? ''} does not exist`, {
        hint: 'give the path of a SquashFS image',
      });
    });

  const ctx = makeContext(tree, req.stateDir, req.reporter, req.lockWaitSeconds);
  await ensureSecureDir(req.stateDir, { mode: 0o700, parents: true });
  await ensureSecureDir(ctx.layout.runtime, { mode: 0o700 });
  const lock = await acquireLock(ctx.layout.lock, { waitSeconds: req.lockWaitSeconds });
  try {
    await ensureStore(tree.store);
    await cleanupTemps(tree.store);
    const file = imageFileName(1, 'base');
    let record;
    let files: number;
    let bytes: number;
    if (req.fromImage) {
      req.reporter.step(`adopting ${req.fromImage}`);
      const image = { file, kind: 'base' as const, compression: 'unknown' as const, blockSize: 0 };
      const fromImage = req.fromImage;
      ({
        record,
        result: { files, bytes },
      } = await stageImage(tree.store, image, async (tmp) => {
        await copyIn(fromImage, tmp);
        await checkMetadata(tmp);
        const counts = await checkIsBase(tmp, ctx.layout.verifyMount);
        if (req.removeSource) {
          req.reporter.step(`comparing the image with ${dir} before removing it`);
          await verifyAgainst(tmp, dir, ctx.layout.verifyMount, tree.exclude, (f) => {
            req.reporter.progress('verifying', f);
          });
        }
        return { result: counts };
      }));
    } else {
      req.reporter.step(`packing ${dir} (${tree.compression})`);
      const published = await packAndPublish({
        source: dir,
        store: tree.store,
        file,
        kind: 'base',
        settings: packSettings(tree),
        exclude: tree.exclude,
        verifyMount: ctx.layout.verifyMount,
        onProgress: (f) => {
          req.reporter.progress('packing', f);
        },
        onVerifyProgress: (f) => {
          req.reporter.progress('verifying', f);
        },
        // The source is walked while mksquashfs packs it: it costs no extra wall time.
        besidePack: () => refuseWhiteouts(dir, tree.exclude),
        onPhase: (p) => {
          if (p === 'verify')
            req.reporter.step('verifying the image against the directory (every file)');
        },
      });
      record = published.record;
      files = published.compare.files;
      bytes = published.compare.bytes;
    }
    fault('init:after-image');
    const m: Manifest = {
      format: 'squashtree-manifest/1',
      tree: name,
      current: 1,
      lastGeneration: 1,
      images: { [file]: record },
      generations: [
        {
          generation: 1,
          parent: null,
          action: req.fromImage ? 'adopt' : 'init',
          created: new Date().toISOString(),
          durationMs: Math.round(performance.now() - t0),
          images: [file],
          files,
          bytes,
        },
      ],
    };
    await writeManifest(tree.store, m);
    fault('init:after-manifest');
    try {
      if (newConfig !== undefined) await writeConfig(config.path, newConfig);
    } catch (e) {
      await fsp.rm(join(tree.store, 'manifest.json'), { force: true });
      await fsp.rm(join(tree.store, file), { force: true });
      await restoreConfig(config.path, config.text, config.exists).catch(() => undefined);
      throw e;
    }
    let reclaimed = 0;
    if (req.removeSource) {
      req.reporter.step(`removing the verified source files from ${dir}`);
      reclaimed = await removeSource(dir, tree.exclude);
    }
    return {
      tree: name,
      dir,
      store: tree.store,
      config: config.path,
      generation: 1,
      imageBytes: record.bytes,
      files,
      bytes,
      adopted: Boolean(req.fromImage),
      adoptedStore: false,
      images: 1,
      removedSource: req.removeSource,
      reclaimedBytes: reclaimed,
      durationMs: performance.now() - t0,
    };
  } finally {
    await lock.release();
  }
}
