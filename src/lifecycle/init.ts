/**
 * init: build (or adopt) the first image of a tree and add the tree to the
 * config. The image is verified against the directory before anything else
 * happens, and the directory's files are deleted only when asked
 * (--remove-source) and only after that verification.
 */
import { promises as fsp, constants as C } from 'node:fs';
import { join } from 'node:path';
import { restoreConfig, withTree, writeConfig, type TreeTable } from '../config/edit.js';
import type { Config } from '../config/load.js';
import { TREE_NAME } from '../config/schema.js';
import { isWithin } from '../config/values.js';
import { SquashtreeError } from '../errors.js';
import { publishFile } from '../fs/durable.js';
import { fsPath, joinRel } from '../fs/paths.js';
import { walk } from '../fs/walk.js';
import { checkMetadata, imageFacts } from '../image/check.js';
import { mountSquashfs, unmount } from '../mount/mount.js';
import { readMounts, topMountAt } from '../mount/mountinfo.js';
import { isImageFstype, isOverlayFstype } from '../mount/engine.js';
import { imageFileName, readManifest, writeManifest, type Manifest } from '../store/manifest.js';
import { cleanupTemps, ensureStore } from '../store/store.js';
import { acquireLock } from './lock.js';
import { makeContext, packSettings, type Reporter } from './context.js';
import { ensureSecureDir } from '../fs/secure.js';
import { fault } from './faults.js';
import { packAndPublish, tempImagePath, verifyAgainst } from './publish.js';

export interface InitRequest {
  config: Config;
  stateDir: string;
  name: string;
  dir: string;
  fromImage?: string;
  /** Keys to write into the new [tree.NAME] table besides dir. */
  settings: TreeTable;
  removeSource: boolean;
  reporter: Reporter;
  lockWaitSeconds: number;
}

export interface InitResult {
  tree: string;
  dir: string;
  store: string;
  config: string;
  generation: number;
  imageBytes: number;
  files: number;
  bytes: number;
  adopted: boolean;
  removedSource: boolean;
  reclaimedBytes: number;
  durationMs: number;
}

async function checkDir(dir: string): Promise<void> {
  let st;
  try {
    st = await fsp.lstat(dir);
  } catch {
    throw new SquashtreeError('E_SOURCE', `${dir} does not exist`, {
      path: dir,
      hint: 'give the directory that holds the tree with --dir',
    });
  }
  if (!st.isDirectory())
    throw new SquashtreeError('E_SOURCE', `${dir} is not a directory`, {
      path: dir,
      hint: 'give a directory with --dir',
    });
  const top = topMountAt(await readMounts(), dir);
  if (top && (isOverlayFstype(top.fstype) || isImageFstype(top.fstype))) {
    throw new SquashtreeError('E_MOUNTED_ELSEWHERE', `${dir} has a ${top.fstype} mounted on it`, {
      path: dir,
      hint: 'unmount it first; to move an old squash_portage setup over, see squashtree doctor',
    });
  }
}

/** An adopted image is a base: it must not carry overlay whiteouts. */
async function checkIsBase(
  image: string,
  mountPoint: string,
): Promise<{ files: number; bytes: number }> {
  await fsp.mkdir(mountPoint, { recursive: true, mode: 0o700 });
  await mountSquashfs(image, mountPoint);
  try {
    const entries = await walk(mountPoint);
    const wh = entries.find((e) => e.type === 'char' && e.rdev === 0);
    if (wh) {
      throw new SquashtreeError(
        'E_IMAGE_UNSAFE',
        `${image} contains an overlay whiteout (${wh.path}); it is a layer, not a base image`,
        {
          path: image,
          hint: 'adopt a complete image (for example a Gentoo repository snapshot), not a layer',
        },
      );
    }
    let files = 0;
    let bytes = 0;
    for (const e of entries) {
      if (e.type !== 'dir') files++;
      if (e.type === 'file') bytes += e.size;
    }
    return { files, bytes };
  } finally {
    await unmount(mountPoint);
  }
}

async function copyIn(src: string, dest: string): Promise<void> {
  await fsp.copyFile(src, dest, C.COPYFILE_EXCL);
}

/** Delete DIR's contents except excluded paths; returns bytes freed on disk. */
async function removeSource(dir: string, exclude: readonly string[]): Promise<number> {
  let freed = 0;
  const keep = (rel: string): 'keep' | 'descend' | 'remove' => {
    if (exclude.some((x) => rel === x || rel.startsWith(`${x}/`))) return 'keep';
    if (exclude.some((x) => x.startsWith(`${rel}/`))) return 'descend';
    return 'remove';
  };
  const visit = async (rel: string): Promise<void> => {
    for (const n of await fsp.readdir(fsPath(dir, rel), { encoding: 'buffer' })) {
      const child = joinRel(rel, n.toString('latin1'));
      const what = keep(child);
      if (what === 'keep') continue;
      if (what === 'descend') {
        await visit(child);
        continue;
      }
      for (const e of await walk(dir, { under: child })) {
        const st = await fsp.lstat(fsPath(dir, e.path));
        if (st.nlink <= 1 || e.type === 'dir') freed += st.blocks * 512;
      }
      await fsp.rm(fsPath(dir, child), { recursive: true, force: true });
    }
  };
  await visit('');
  return freed;
}

export async function initTree(req: InitRequest): Promise<InitResult> {
  const t0 = performance.now();
  const { config, name, dir } = req;
  if (!TREE_NAME.test(name)) {
    throw new SquashtreeError('E_USAGE', `tree name "${name}" is not allowed`, {
      hint: 'use letters, digits, "-", "_" and "." (at most 64, starting with a letter or digit)',
    });
  }
  if (config.trees.some((t) => t.name === name)) {
    throw new SquashtreeError('E_TREE_EXISTS', `tree "${name}" is already in ${config.path}`, {
      hint: `choose another name, or use the existing tree (squashtree start ${name})`,
    });
  }
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
  await checkDir(dir);
  if (await readManifest(tree.store)) {
    throw new SquashtreeError(
      'E_STORE_EXISTS',
      `the store ${tree.store} already holds a tree's images`,
      {
        path: tree.store,
        hint: `move it away or choose another store with --store (if an earlier init of this tree was interrupted, remove ${tree.store} and run init again: ${dir} was not touched)`,
      },
    );
  }
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
      const tmp = tempImagePath(tree.store);
      try {
        await copyIn(req.fromImage, tmp);
        await checkMetadata(tmp);
        ({ files, bytes } = await checkIsBase(tmp, ctx.layout.verifyMount));
        if (req.removeSource) {
          req.reporter.step(`comparing the image with ${dir} before removing it`);
          await verifyAgainst(tmp, dir, ctx.layout.verifyMount, tree.exclude, (f) => {
            req.reporter.progress('verifying', f);
          });
        }
        const facts = await imageFacts(tmp);
        await publishFile(tmp, join(tree.store, file));
        record = {
          file,
          kind: 'base' as const,
          bytes: facts.bytes,
          sha256: facts.sha256,
          compression: 'unknown' as const,
          blockSize: 0,
          created: new Date().toISOString(),
        };
      } catch (e) {
        await fsp.rm(tmp, { force: true });
        throw e;
      }
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
      await writeConfig(config.path, edited.text);
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
      removedSource: req.removeSource,
      reclaimedBytes: reclaimed,
      durationMs: performance.now() - t0,
    };
  } finally {
    await lock.release();
  }
}
