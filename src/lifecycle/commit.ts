/**
 * commit: persist the pending changes as a new layer (or, when they are most
 * of the tree, a new base: commit-pack.ts) and stay mounted.
 *
 * Commits stack within a session: a commit packs only what changed since
 * the session's previous commit (layer/layer-plan.ts), and the new generation is the
 * current one's images plus that layer, while the live overlay keeps the
 * images it was mounted on and its upper. What is packed is copied to a
 * private staging dir first (never packed live), packed, checked against
 * the copy, and the new stack is checked to show exactly what the overlay
 * shows (stack-check.ts) before the layer is published. The snapshot of the
 * upper the new generation holds is written before the manifest that names
 * it, so a kill at any step leaves the last generation intact and the next
 * commit neither loses nor repeats a change (commit-chain.ts).
 *
 * Where a session cannot stack (the current generation is not the one it
 * made, or a stacked layer would not show the tree), the commit packs the
 * whole upper onto the images it mounted, as commits always did; an
 * interrupted session (no overlay to read the layer form off) is packed as
 * its upper is.
 */
import { SquashtreeError, errorMessage } from '../errors.js';
import { interruptSignal } from '../exec/run.js';
import { walk, type Entry } from '../fs/walk.js';
import {
  appendGeneration,
  imageFileName,
  type Generation,
  type Manifest,
} from '../store/manifest.js';
import { collectGarbage, imagePath, writeManifestOrUnpublish } from '../store/store.js';
import { SquashfsUnsupportedError } from '../squashfs/index.js';
import { captureUpper, scanWithTime, type Scan } from '../layer/capture.js';
import { resolveChain, type Chain } from './commit-chain.js';
import { packSettings, type TreeContext } from './context.js';
import { sessionEngine } from './tree-engine.js';
import { fault, mutation } from '../faults.js';
import { admitObserved, observe, type Observation } from './observe.js';
import { planLayer, type Plan } from '../layer/layer-plan.js';
import { packAndPublish } from '../pack/pack-image.js';
import { writeSession, type Session } from './session.js';
import { removeSnapshots, removeUnnamedSnapshots, writeGenerationSnapshot } from './snapshot.js';
import {
  StackMismatch,
  choosePack,
  layerInstead,
  type CommitMode,
  type PackChoice,
} from './commit-pack.js';
import type { PackMethod } from '../pack/native-pack.js';
import { kernelMountCheck } from '../pack/merge-image.js';
import { releaseYoungGeneration } from '../pack/heap.js';
import { isRoot } from '../mount/engine.js';
import { checkStack } from '../layer/stack-check.js';
import { StackView } from '../layer/stack-view.js';
import { openStaging } from './staging.js';
import { pendingChanges, signature, snapshotOf } from '../layer/upper-scan.js';
import { makeWhiteouts } from '../layer/whiteouts.js';
import { skipExcluded } from '../config/exclude.js';

export type { CommitMode };

export interface CommitResult {
  tree: string;
  committed: boolean;
  /** Why nothing was committed, when it was not. */
  reason?: string;
  generation: number;
  layerBytes: number;
  pendingFiles: number;
  pendingBytes: number;
  durationMs: number;
  layers: number;
  /**
   * stacked: what changed since the session's last commit, on the current
   * generation; full: the whole upper on the images the session mounted;
   * raw: the whole upper as it is (an interrupted session).
   */
  mode?: CommitMode;
  /** Why the layer was not stacked. */
  modeReason?: string;
  /** What packed the image: squashtree's own writer, or mksquashfs (pack-method). */
  packMethod?: PackMethod;
  /** Why mksquashfs packed it, when it did. */
  packReason?: string;
  /** layer: stacked on the images below; base: a new base, the generation's only image. */
  imageKind?: 'layer' | 'base';
  /** Why a new base ("a new base: the change is N% of the tree"). */
  baseReason?: string;
}

interface Attempt {
  mode: CommitMode;
  modeReason?: string;
  chain: Chain;
  session: Session;
  scan: Scan;
  manifest: Manifest;
  t0: number;
}

export async function commitLocked(
  ctx: TreeContext,
  observed?: Observation,
): Promise<CommitResult> {
  const { tree, layout, reporter } = ctx;
  const t0 = performance.now();
  // The launcher holds V8's young generation small; a commit's scans and plans run faster grown.
  releaseYoungGeneration();
  const obs = observed ?? (await observe(ctx));
  const admission = admitObserved(ctx, 'commit', obs);
  const m = admission.manifest;
  const current = obs.session;
  const nothing = (reason: string): CommitResult => ({
    tree: tree.name,
    committed: false,
    reason,
    generation: m.current,
    layerBytes: 0,
    pendingFiles: 0,
    pendingBytes: 0,
    durationMs: performance.now() - t0,
    layers: m.generations.find((g) => g.generation === m.current)?.images.length ?? 0,
  });
  if (!admission.run || !current) return nothing(admission.reason || 'not mounted');
  await removeUnnamedSnapshots(layout, m.lastGeneration);
  const chain = await resolveChain(layout, current, m);
  if (chain.recovered) {
    reporter.step(`taking up generation ${m.current}, which an interrupted commit made`);
    await writeSession(layout.sessionFile, chain.session);
  }
  const scan = await scanWithTime(layout.upperData, tree.exclude);
  const pending = pendingChanges(scan.entries, chain.snapshot);
  if (!pending.any) return nothing('nothing to commit');
  reporter.step(`capturing ${pending.files} changed entries (${pending.bytes} bytes)`);
  const attempt: Attempt = {
    mode: obs.state !== 'mounted' ? 'raw' : chain.unstackable ? 'full' : 'stacked',
    chain,
    session: chain.session,
    scan,
    manifest: m,
    t0,
  };
  if (attempt.mode === 'full' && chain.unstackable) {
    attempt.modeReason = chain.unstackable;
    reporter.warn(`${chain.unstackable}: packing the whole session's changes`);
  }
  try {
    return (await commitAs(ctx, attempt)) ?? nothing('nothing to commit');
  } catch (e) {
    if (!(e instanceof StackMismatch || e instanceof SquashfsUnsupportedError)) throw e;
    if (attempt.mode === 'raw') throw e;
    if (e instanceof SquashfsUnsupportedError && sessionEngine(attempt.session) === 'fuse')
      throw unreadable(ctx, e);
    const why =
      e instanceof StackMismatch
        ? `a layer of the changes since the last commit would not show the tree (${e.first})`
        : `the native reader cannot read the images (${e.message})`;
    reporter.warn(`${why}: packing the whole session's changes`);
    const again: Attempt = {
      ...attempt,
      mode: e instanceof StackMismatch ? 'full' : 'raw',
      modeReason: why,
      scan: await scanWithTime(layout.upperData, tree.exclude),
    };
    return (await commitAs(ctx, again)) ?? nothing('nothing to commit');
  }
}

function unreadable(ctx: TreeContext, e: Error): SquashtreeError {
  return new SquashtreeError(
    'E_ENGINE',
    `tree "${ctx.tree.name}" is mounted with the fuse engine on images the native reader cannot read (${e.message})`,
    {
      hint: 'stop it and start it as root with the kernel engine to commit, or compact it to another compressor',
    },
  );
}

/** One commit of the changes as `a.mode` says; undefined when the plan finds nothing to pack. */
async function commitAs(ctx: TreeContext, a: Attempt): Promise<CommitResult | undefined> {
  const { tree, layout, reporter } = ctx;
  const { mode, session, manifest: m } = a;
  const stacked = mode === 'stacked';
  const below = stacked ? a.chain.images : session.lower;
  const snapshot = stacked ? a.chain.snapshot : null;
  // tar keeps holes, so a sparse file takes what it allocates: a 16 GiB one with 4 KiB of data stays in RAM.
  const held = (e: Entry): number =>
    e.type === 'file' ? Math.min(e.size, e.allocated ?? e.size) : 0;
  const estimate = (
    stacked ? a.scan.entries.filter((e) => snapshot?.get(e.path) !== signature(e)) : a.scan.entries
  ).reduce((n, e) => n + held(e), 0);
  const view = mode === 'raw' ? undefined : await StackView.openInStore(tree.store, below);
  const staging = await openStaging(ctx, estimate);
  const stage = staging.dir;
  try {
    const capture = await captureUpper<Plan | null>(layout.upperData, stage, {
      exclude: tree.exclude,
      scanned: a.scan,
      ...(mode !== 'raw' ? { merged: tree.dir } : {}),
      keepOverlayXattrs: mode === 'raw',
      select: async (entries) => {
        if (!view) return { copy: entries, value: null };
        const plan = await planLayer({
          entries,
          snapshot,
          stack: view,
          fuse: sessionEngine(session) === 'fuse',
          merged: tree.dir,
          exclude: tree.exclude,
        });
        // A whiteout forgotten on purpose (tests): the check of the new stack must catch it.
        if (stacked && mutation('plan:drop-whiteout')) plan.whiteouts.splice(0, 1);
        return { copy: plan.copy, listed: plan.dirs, value: plan };
      },
    });
    fault('commit:after-capture');
    interruptSignal().throwIfAborted();
    const plan = capture.selected;
    if (plan && !plan.any) return undefined;
    if (plan) await makeWhiteouts(stage, plan.whiteouts);
    const layerEntries = await walk(stage, skipExcluded(tree.exclude));
    const number = m.lastGeneration + 1;
    const base = stacked
      ? { files: a.chain.head?.files ?? null, bytes: a.chain.head?.bytes ?? null }
      : { files: session.lowerFiles, bytes: session.lowerBytes };
    let choice = await choosePack(ctx, {
      mode,
      below,
      stagedBytes: plan ? plan.copyBytes : estimate,
      treeBytes: plan ? base.bytes : null,
      manifest: m,
    });
    const publish = (c: PackChoice): ReturnType<typeof packAndPublish> => {
      const kind = c.newBase ? 'base' : 'layer';
      const file = imageFileName(number, kind);
      reporter.step(
        c.newBase
          ? `writing ${file}, ${c.newBase}`
          : `packing layer ${file}${stacked ? '' : ` (${mode}: the whole upper)`}` +
              ` with ${c.method === 'writer' ? 'the native writer' : `mksquashfs (${c.reason ?? ''})`}`,
      );
      return packAndPublish({
        source: stage,
        store: tree.store,
        file,
        kind,
        settings: packSettings(tree),
        method: c.method,
        ...(c.newBase ? { below: below.map((f) => imagePath(tree.store, f)) } : {}),
        exclude: tree.exclude,
        verifyMount: layout.verifyMount,
        verifyWith: 'reader',
        expected: layerEntries,
        onProgress: (f) => {
          reporter.progress('packing', f);
        },
        afterPack: 'commit:after-pack',
        whilePacking: 'commit:packing',
        onPhase: (p) => {
          if (p !== 'pack')
            reporter.step(
              p === 'verify'
                ? c.newBase
                  ? 'the writer checked the new base against the images and the captured upper'
                  : 'verifying the layer against the captured upper'
                : `publishing the ${kind}`,
            );
        },
        ...(plan && view && capture.listings
          ? {
              beforePublish: async (tmp: string): Promise<void> => {
                reporter.step(
                  c.newBase
                    ? 'checking that the new base shows what the tree shows'
                    : 'checking that the new stack shows what the tree shows',
                );
                await proveStack(
                  c.newBase ? null : view,
                  tmp,
                  plan,
                  capture.listings ?? new Map(),
                  tree.exclude,
                );
                // What every later start mounts: the kernel must take it.
                if (c.newBase && isRoot()) await kernelMountCheck(tmp, layout.verifyMount);
                fault('commit:after-verify');
              },
            }
          : {}),
      });
    };
    let published: Awaited<ReturnType<typeof packAndPublish>>;
    try {
      published = await publish(choice);
    } catch (e) {
      // The writer could not make a good base (say an image it cannot read): a layer instead.
      if (!choice.newBase || !layerInstead(e)) throw e;
      reporter.warn(`the new base could not be written (${errorMessage(e)}): packing a layer`);
      choice = { method: 'writer' };
      published = await publish(choice);
    }
    if (published.method !== choice.method)
      reporter.step(`packed with mksquashfs: ${published.methodReason ?? ''}`);
    const file = published.record.file;
    const images = choice.newBase ? [file] : [...below, file];
    fault('commit:after-publish');
    reporter.step('published; recording the generation');
    await writeGenerationSnapshot(layout, {
      generation: number,
      images,
      top: published.record.sha256,
      entries: snapshotOf(capture.entries),
    });
    fault('commit:after-snapshot');
    const gen: Generation = {
      generation: number,
      parent: m.current,
      action: 'commit',
      created: new Date().toISOString(),
      durationMs: Math.round(performance.now() - a.t0),
      images,
      files: plan && base.files !== null ? base.files + plan.filesDelta : null,
      bytes: plan && base.bytes !== null ? base.bytes + plan.bytesDelta : null,
    };
    appendGeneration(m, { [file]: published.record }, gen);
    await writeManifestOrUnpublish(tree.store, m, file);
    fault('commit:after-manifest');
    await writeSession(layout.sessionFile, { ...session, committedGeneration: number });
    fault('commit:after-session');
    await removeSnapshots(layout, new Set([number]));
    reporter.step('recorded; collecting old generations');
    await collectGarbage(tree.store, m, tree.keep, new Set(session.lower), () => {
      fault('gc:after-manifest');
    });
    const counted = plan
      ? { files: plan.changes.length, bytes: plan.copyBytes }
      : pendingChanges(capture.entries, null);
    return {
      tree: tree.name,
      committed: true,
      generation: number,
      layerBytes: published.record.bytes,
      pendingFiles: counted.files,
      pendingBytes: counted.bytes,
      durationMs: performance.now() - a.t0,
      layers: gen.images.length,
      mode,
      ...(a.modeReason ? { modeReason: a.modeReason } : {}),
      packMethod: published.method,
      ...(published.methodReason || choice.reason
        ? { packReason: published.methodReason ?? choice.reason }
        : {}),
      imageKind: choice.newBase ? 'base' : 'layer',
      ...(choice.newBase ? { baseReason: choice.newBase } : {}),
    };
  } finally {
    await view?.close();
    await staging.close();
  }
}

/** The new layer on the images below it shows what the tree showed when the upper was copied. */
async function proveStack(
  below: StackView | null,
  layer: string,
  plan: Plan,
  listings: ReadonlyMap<string, readonly string[]>,
  exclude: readonly string[],
): Promise<void> {
  // A new base is checked alone: it is the whole generation.
  const view = below ? await below.withTop(layer) : await StackView.open([layer]);
  try {
    const diffs = await checkStack(view, plan.checks, listings, exclude);
    const first = diffs[0];
    if (first) throw new StackMismatch(`${first.path}: ${first.what}`);
  } finally {
    await view.close();
  }
}
