/**
 * pull: make a published generation the current one of a local tree,
 * fetching only what the store lacks. Under the tree's lock, five steps
 * (pull-steps.ts, pull-images.ts):
 *
 *  1. Resolve: HEAD the tag; a digest already applied (and still current)
 *     ends here.
 *  2. Verify: GET the manifest by digest (its bytes must hash to it), check
 *     its signature when a key is given, GET the config; a generation older
 *     than the local one is refused unless --allow-downgrade (no rollback
 *     attacks). Pending local changes are never lost: the table's switch
 *     row refuses while there are any, unless --discard.
 *  3. Download: each missing image is rebuilt from its recipe where the
 *     store holds (or the registry serves, more cheaply) its inputs, else
 *     downloaded (acquire.ts): a download streams into a file of the store
 *     that an interrupted run leaves for the next to resume, checked for
 *     size and sha256 while it arrives and by unsquashfs, then renamed.
 *  4. Record: the new manifest is written atomically (the same swap commit
 *     uses), then STORE/oci.json.
 *  5. Apply: switch the tree as asked, then collect old generations beyond
 *     `keep`.
 *
 * A mounted tree keeps its images until its next restart (or at once with
 * --restart); its session's images are never collected meanwhile.
 */
import { promises as fsp } from 'node:fs';
import type { KeyObject } from 'node:crypto';
import type { TreeContext } from '../lifecycle/context.js';
import { observe, type Observation } from '../lifecycle/observe.js';
import { applySwitch, planSwitch, switchIfBehind } from '../lifecycle/switch.js';
import type { Tree } from '../lifecycle/tree.js';
import type { RegistryClient } from './client.js';
import { currentGeneration, type Manifest } from '../store/manifest.js';
import { collectGarbage, ensureStore } from '../store/store.js';
import { removeDownloads, type ImageOutcome } from './acquire.js';
import { imageNumber, placeImages, type PulledImage } from './pull-images.js';
import { Chain } from './chain.js';
import { formatReference, parseReference, type Reference } from './reference.js';
import { makeClient, warnPlainHttp, type RegistryOptions } from './registry-options.js';
import { loadPublicKey } from './sign.js';
import { recordGeneration, resolveDigest, stateRecord, verifyGeneration } from './pull-steps.js';
import { cleanupOciTemps, readOciState, writeOciState } from './state.js';

export interface PullOptions extends RegistryOptions {
  /** Ed25519 public key (PEM): refuse manifests it did not sign. */
  verifyKey?: string;
  allowDowngrade?: boolean;
  /** Switch a mounted tree to the new generation at once. */
  restart?: boolean;
  /** Drop pending local changes instead of refusing. */
  discard?: boolean;
  /** Download every missing image whole, never rebuild one from its recipe. */
  noRebuild?: boolean;
}

export type { PulledImage } from './pull-images.js';

export interface PullResult {
  tree: string;
  ref: string;
  digest: string;
  /** The builder's generation number. */
  generation: number;
  /** The local generation it became (the same number unless the follower committed itself). */
  localGeneration: number;
  previousGeneration: number | null;
  /** Nothing to do: this digest is applied already. */
  upToDate: boolean;
  /** Each image of the generation, base first: reused, rebuilt or downloaded, with bytes and why. */
  images: ImageOutcome[];
  /** Images downloaded whole. */
  downloaded: PulledImage[];
  /** Images rebuilt from their recipe (their inputs were here or fetched). */
  rebuilt: PulledImage[];
  /** Images the store had already (by sha256). */
  reused: string[];
  /** Bytes of blobs received: downloaded images, and the inputs fetched to rebuild others. */
  bytesDownloaded: number;
  /** All response body bytes received (manifests, config, signature, images). */
  transferBytes: number;
  /** Size of the images this generation stacks. */
  imageBytes: number;
  signedBy: string | null;
  timestamp: string | null;
  mounted: boolean;
  /** The mounted tree now shows the new generation (--restart or --discard remounted it). */
  switched: boolean;
  discarded: { files: number; bytes: number } | null;
  durationMs: number;
}

export async function pullTree(
  tree: Tree,
  refText: string,
  opts: PullOptions = {},
): Promise<PullResult> {
  const ref = parseReference(refText);
  const key = opts.verifyKey ? await loadPublicKey(opts.verifyKey) : undefined;
  // The tree as Tree observed it under the lock: pull decides on that one observation.
  return tree.locked((ctx, _lock, obs) =>
    pullLocked(ctx, obs, ref, opts, key ? { key, path: opts.verifyKey ?? '' } : undefined),
  );
}

async function pullLocked(
  ctx: TreeContext,
  obs: Observation,
  ref: Reference,
  opts: PullOptions,
  verify: { key: KeyObject; path: string } | undefined,
): Promise<PullResult> {
  const client = await makeClient(ref, opts);
  try {
    return await pullWith(ctx, obs, client, ref, opts, verify);
  } finally {
    client.close();
  }
}

async function pullWith(
  ctx: TreeContext,
  obs: Observation,
  client: RegistryClient,
  ref: Reference,
  opts: PullOptions,
  verify: { key: KeyObject; path: string } | undefined,
): Promise<PullResult> {
  const t0 = performance.now();
  const { tree, reporter } = ctx;
  const store = tree.store;
  await ensureStore(store);
  await cleanupOciTemps(store);
  const m = obs.manifest;
  const state = await readOciState(store);
  warnPlainHttp(ctx, ref, opts);
  const where = formatReference(ref, ref.digest ?? ref.tag ?? 'latest');

  // 1. Resolve.
  const digest = await resolveDigest(client, ref, where, tree.name);
  const base = {
    tree: tree.name,
    ref: where,
    digest,
    previousGeneration: m?.current ?? null,
    images: [] as ImageOutcome[],
    downloaded: [] as PulledImage[],
    rebuilt: [] as PulledImage[],
    reused: [] as string[],
    bytesDownloaded: 0,
    mounted: obs.state === 'mounted',
    switched: false,
    discarded: null,
  };
  const upToDate = async (
    generation: number,
    have: Manifest,
    signedBy: string | null,
    timestamp: string | null,
  ): Promise<PullResult> => ({
    ...base,
    images: currentGeneration(have).images.map((f) => ({
      file: f,
      digest: `sha256:${have.images[f]?.sha256 ?? ''}`,
      bytes: have.images[f]?.bytes ?? 0,
      how: 'reused' as const,
      transferred: 0,
    })),
    switched: await switchIfBehind(ctx, obs, have, opts),
    generation,
    localGeneration: have.current,
    upToDate: true,
    transferBytes: client.stats.received,
    imageBytes: sumBytes(have, currentGeneration(have).images),
    signedBy,
    timestamp,
    durationMs: performance.now() - t0,
  });
  if (state?.digest === digest && m && m.current === state.localGeneration) {
    return upToDate(state.generation, m, null, null);
  }

  // 2. Verify: the generation, its signature, no downgrade, and the switch allowed.
  reporter.step(`fetching manifest ${digest}`);
  const { head, signedBy } = await verifyGeneration({
    client,
    digest,
    where,
    treeName: tree.name,
    verify,
    manifest: m,
    state,
    allowDowngrade: opts.allowDowngrade === true,
  });
  const { config, images: remote } = head;
  const n = config.generation;
  const { discardNeeded } = await planSwitch(ctx, obs, opts);
  const same =
    m !== null &&
    currentGeneration(m)
      .images.map((f) => m.images[f]?.sha256)
      .join(',') === remote.map((r) => r.sha256).join(',');
  if (same && !discardNeeded) {
    await writeOciState(store, stateRecord(where, digest, n, m.current));
    return upToDate(n, m, signedBy, config.timestamp);
  }

  // 3. Download (or rebuild, or reuse) each image.
  if (!m) await fsp.mkdir(tree.dir, { recursive: true, mode: 0o755 });
  const lastBefore = m?.lastGeneration ?? 0;
  const localGeneration = n > lastBefore ? n : lastBefore + 1;
  const placed = await placeImages({
    client,
    store,
    m,
    remote,
    chain: new Chain(client, head, where),
    reporter,
    rebuild: opts.noRebuild !== true,
    last: Math.max(lastBefore, localGeneration, ...remote.map((r) => imageNumber(r.file))),
  });
  Object.assign(base, {
    images: placed.images,
    downloaded: placed.downloaded,
    rebuilt: placed.rebuilt,
    reused: placed.reused,
  });
  base.bytesDownloaded = client.stats.blobReceived;

  // 4. Record.
  const next = await recordGeneration({
    store,
    treeName: tree.name,
    manifest: m,
    head,
    placed,
    localGeneration,
    where,
    digest,
    durationMs: performance.now() - t0,
  });
  await removeDownloads(store);
  reporter.step(
    `generation ${n} is current${obs.state === 'mounted' ? ' (the tree shows it after a restart)' : ''}`,
  );

  // 5. Apply.
  const { switched, discarded } = await applyPulled(ctx, obs, next, discardNeeded, opts, n);
  return {
    ...base,
    generation: n,
    localGeneration,
    upToDate: false,
    transferBytes: client.stats.received,
    imageBytes: remote.reduce((s, r) => s + r.size, 0),
    signedBy,
    timestamp: config.timestamp,
    switched,
    discarded,
    durationMs: performance.now() - t0,
  };
}

/** Apply: switch the tree as asked, then collect what no kept generation or live session needs. */
async function applyPulled(
  ctx: TreeContext,
  obs: Observation,
  next: Manifest,
  discardNeeded: boolean,
  opts: PullOptions,
  generation: number,
): Promise<{ switched: boolean; discarded: PullResult['discarded'] }> {
  const applied = await applySwitch(ctx, obs, { discardNeeded }, opts, generation);
  const now = await observe(ctx);
  const pinned = new Set<string>(now.session?.lower ?? []);
  const committed = now.session?.committedGeneration;
  if (committed != null) {
    for (const f of next.generations.find((g) => g.generation === committed)?.images ?? [])
      pinned.add(f);
  }
  await collectGarbage(ctx.tree.store, next, ctx.tree.keep, pinned);
  return applied;
}

function sumBytes(m: Manifest, files: readonly string[]): number {
  return files.reduce((s, f) => s + (m.images[f]?.bytes ?? 0), 0);
}
