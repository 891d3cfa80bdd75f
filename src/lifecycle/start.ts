/**
 * start: mount the current generation's images read-only, an upper (a
 * private size-limited tmpfs or a directory on disk) and the overlay on the
 * tree's dir. An upper that survived an interrupted session is put back on
 * the very images it was written against, so its changes come back exactly.
 */
import { promises as fsp } from 'node:fs';
import { SquashtreeError } from '../errors.js';
import { ensureSecureDir } from '../fs/secure.js';
import { canMountTmpfs, mountBindReadonly, mountOverlay, mountTmpfs } from '../mount/mount.js';
import { currentMounter } from '../mount/engine.js';
import { requireUsable } from './tree-engine.js';
import { checkNotSystemDir } from '../config/system-paths.js';
import { currentGeneration } from '../store/manifest.js';
import { cleanupTemps } from '../store/store.js';
import { extraMountOptions, type TreeContext } from './context.js';
import { fault } from '../faults.js';
import { checkImages } from '../store/image-integrity.js';
import { admitObserved, observe, type Observation } from './observe.js';
import { removeSession, writeSession, type Session } from './session.js';
import { unmountTree } from './unmount.js';
import {
  detachStaleLoops,
  mountStack,
  teardownUnder,
  type MountedStack,
} from '../mount/image-stack.js';
import { attachExcluded, holdExcluded, releaseHolders, type Passthrough } from './passthrough.js';
import { releaseRuntimeUpper } from './release.js';

export interface StartResult {
  tree: string;
  dir: string;
  alreadyMounted: boolean;
  /** The upper of an interrupted session was mounted again with its pending changes. */
  resumed: boolean;
  generation: number;
  layers: number;
}

async function checkTarget(dir: string): Promise<void> {
  let st;
  try {
    st = await fsp.lstat(dir);
  } catch {
    throw new SquashtreeError('E_SOURCE', `the tree's dir ${dir} does not exist`, {
      path: dir,
      hint: `create it (mkdir -p ${dir}) or fix dir in the config`,
    });
  }
  if (!st.isDirectory()) {
    throw new SquashtreeError('E_SOURCE', `the tree's dir ${dir} is not a directory`, {
      path: dir,
      hint: 'fix dir in the config',
    });
  }
  await checkNotSystemDir(dir, 'dir');
}

/** Unmount image mounts and views a crash left behind; keep a surviving tmpfs upper. */
async function clearStaleMounts(ctx: TreeContext): Promise<void> {
  const { layout, tree } = ctx;
  await teardownUnder(
    [
      layout.imagesDir,
      layout.lowerView,
      layout.verifyMount,
      layout.scratch,
      layout.stage,
      layout.passthrough,
    ],
    tree.store,
  );
  // Loops a crash left attached without a mount.
  await detachStaleLoops(tree.store);
}

export async function startLocked(ctx: TreeContext, observed?: Observation): Promise<StartResult> {
  const { tree, layout, reporter } = ctx;
  const obs = observed ?? (await observe(ctx));
  const { run, manifest: m } = admitObserved(ctx, 'start', obs);
  if (!run) {
    return {
      tree: tree.name,
      dir: tree.dir,
      alreadyMounted: true,
      resumed: false,
      generation: obs.session?.committedGeneration ?? obs.session?.generation ?? m.current,
      layers: obs.session?.lower.length ?? 0,
    };
  }
  await checkTarget(tree.dir);
  const resuming = obs.state === 'interrupted' && obs.session !== null;
  const engine = resuming ? (obs.session?.engine ?? 'kernel') : (ctx.engine?.engine ?? 'kernel');
  if (ctx.engine && !resuming) requireUsable(ctx, ctx.engine);
  if (tree.exclude.length > 0 && !canMountTmpfs()) {
    throw new SquashtreeError(
      'E_ENGINE',
      `tree "${tree.name}" has exclude paths, which are kept on disk through bind mounts, and only root can bind-mount`,
      { hint: 'remove exclude from the tree, or manage the tree as root' },
    );
  }
  await ensureSecureDir(layout.runtime, { mode: 0o700 });
  await cleanupTemps(tree.store);
  await clearStaleMounts(ctx);

  const resume = obs.state === 'interrupted' && obs.session !== null;
  if (obs.session && !resume) await removeSession(layout);
  if (obs.upperMounted && !resume) await releaseRuntimeUpper(layout.upperRoot);
  if (!resume && !layout.upperIsTmpfs && obs.upperHasData) {
    throw new SquashtreeError(
      'E_PENDING',
      `the upper dir ${layout.upperData} holds files but no session record says what they belong to`,
      {
        path: layout.upperData,
        hint: `move ${layout.upperData} away (nothing in it is applied), then start again`,
      },
    );
  }
  const gen = currentGeneration(m);
  const lowerFiles = resume && obs.session ? obs.session.lower : gen.images;
  if (resume)
    reporter.step(`resuming the pending changes of an interrupted session in ${layout.upperData}`);

  reporter.step(`checking ${lowerFiles.length} image(s)`);
  const paths = await checkImages(tree.store, m, lowerFiles, layout.verifiedCache);
  const extra = extraMountOptions(tree);
  reporter.step(`mounting ${lowerFiles.length} image(s) read-only`);
  const stack = await mountStack(paths, layout.image, layout.lowerView, extra);
  if (engine === 'readonly') {
    try {
      return await startReadonly(ctx, stack, lowerFiles, gen.generation, gen.files, gen.bytes);
    } catch (e) {
      await stack.unmount();
      throw e;
    }
  }
  let upperFresh = false;
  let overlayUp = false;
  let held: Passthrough[] = [];
  try {
    fault('start:after-images');
    if (layout.upperIsTmpfs) {
      await ensureSecureDir(layout.upperRoot, { mode: 0o700 });
      if (!obs.upperMounted || !resume) {
        // Without root the runtime dir itself holds the upper (see observe.ts).
        if (tree.upper.kind === 'tmpfs' && canMountTmpfs())
          await mountTmpfs(layout.upperRoot, tree.upper.size);
        upperFresh = true;
      }
    } else {
      await ensureSecureDir(layout.upperRoot, { mode: 0o700, parents: true });
    }
    if (!resume) {
      // The upper's root gives the merged root its mode and owner: copy them from the image.
      const root = await fsp.stat(stack.view);
      await fsp.mkdir(layout.upperData, { mode: 0o700 }).catch(ignoreExists);
      // A user cannot give files away; the merged root is then the user's (fuse-overlayfs copies up the same way).
      await fsp.chown(layout.upperData, root.uid, root.gid).catch((e: unknown) => {
        if (canMountTmpfs()) throw e;
      });
      await fsp.chmod(layout.upperData, root.mode & 0o7777);
    }
    await fsp.mkdir(layout.upperWork, { mode: 0o700 }).catch(ignoreExists);
    fault('start:after-upper');
    if (!resume) {
      const session: Session = {
        format: 'squashtree-session/1',
        tree: tree.name,
        dir: tree.dir,
        lower: [...lowerFiles],
        generation: gen.generation,
        lowerFiles: gen.files,
        lowerBytes: gen.bytes,
        mountedAt: new Date().toISOString(),
        committedGeneration: null,
        engine: engine,
      };
      await writeSession(layout.sessionFile, session);
    }
    held = await holdExcluded(ctx, reporter);
    reporter.step(`mounting the overlay on ${tree.dir}`);
    await mountOverlay(tree.dir, {
      lower: [...stack.images].reverse(),
      upper: layout.upperData,
      work: layout.upperWork,
      extra,
    });
    overlayUp = true;
    await attachExcluded(ctx, held);
    fault('start:after-overlay');
  } catch (e) {
    if (overlayUp) await unmountTree(ctx, false);
    await releaseHolders(held);
    await stack.unmount();
    if (upperFresh && layout.upperIsTmpfs)
      await releaseRuntimeUpper(layout.upperRoot).catch(() => undefined);
    if (!resume) await removeSession(layout);
    throw e;
  }
  return {
    tree: tree.name,
    dir: tree.dir,
    alreadyMounted: false,
    resumed: resume,
    generation:
      resume && obs.session
        ? (obs.session.committedGeneration ?? obs.session.generation)
        : gen.generation,
    layers: lowerFiles.length,
  };
}

/**
 * The readonly engine: the image stack goes on the tree's dir as it is, with
 * no upper. One image is bound read-only (kernel) or shown through a
 * read-only fuse-overlayfs (FUSE, where a user cannot bind-mount).
 */
async function startReadonly(
  ctx: TreeContext,
  stack: MountedStack,
  lowerFiles: readonly string[],
  generation: number,
  files: number | null,
  bytes: number | null,
): Promise<StartResult> {
  const { tree, layout, reporter } = ctx;
  if (tree.exclude.length > 0)
    reporter.warn(
      `the readonly engine does not bind the excluded paths (${tree.exclude.join(', ')}): they are hidden while mounted`,
    );
  const session: Session = {
    format: 'squashtree-session/1',
    tree: tree.name,
    dir: tree.dir,
    lower: [...lowerFiles],
    generation,
    lowerFiles: files,
    lowerBytes: bytes,
    mountedAt: new Date().toISOString(),
    committedGeneration: null,
    engine: 'readonly',
  };
  await writeSession(layout.sessionFile, session);
  reporter.step(`mounting ${tree.dir} read-only (engine readonly)`);
  try {
    if (currentMounter().kind === 'kernel') await mountBindReadonly(stack.view, tree.dir);
    else
      await mountOverlay(tree.dir, {
        lower: [...stack.images].reverse(),
        extra: extraMountOptions(tree),
      });
  } catch (e) {
    await removeSession(layout);
    throw e;
  }
  return {
    tree: tree.name,
    dir: tree.dir,
    alreadyMounted: false,
    resumed: false,
    generation,
    layers: lowerFiles.length,
  };
}

function ignoreExists(e: unknown): void {
  if ((e as { code?: string }).code !== 'EEXIST') throw e;
}
