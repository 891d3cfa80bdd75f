/**
 * pull: make a published generation the current one of a local tree,
 * fetching only what the store lacks. Under the tree's lock:
 *
 *  1. HEAD the tag; a digest already applied (and still current) ends here.
 *  2. GET the manifest by digest (its bytes must hash to it), check its
 *     signature when a key is given, GET the config; a generation older than
 *     the local one is refused unless --allow-downgrade (no rollback attacks).
 *  3. Pending local changes are never lost: pull refuses while there are any,
 *     unless --discard.
 *  4. Each missing image is rebuilt from its recipe where the store holds
 *     (or the registry serves, more cheaply) its inputs, else downloaded
 *     (acquire.ts): a download streams into a file of the store that an
 *     interrupted run leaves for the next to resume, checked for size and
 *     sha256 while it arrives and by unsquashfs, then renamed to its name.
 *  5. The new manifest is written atomically (the same swap commit uses),
 *     then STORE/oci.json, then old generations beyond `keep` are collected.
 *
 * A mounted tree keeps its images until its next restart (or at once with
 * --restart); its session's images are never collected meanwhile.
 */
import { promises as fsp } from 'node:fs';
import type { KeyObject } from 'node:crypto';
import { SquashtreeError } from '../errors.js';
import type { TreeContext } from '../lifecycle/context.js';
import { observe, type Observation } from '../lifecycle/observe.js';
import { applySwitch, planSwitch, switchIfBehind } from '../lifecycle/switch.js';
import type { Tree } from '../lifecycle/tree.js';
import type { RegistryClient } from './client.js';
import {
  appendGeneration,
  currentGeneration,
  writeManifest,
  type Generation,
  type Manifest,
} from '../store/manifest.js';
import { collectGarbage, ensureStore } from '../store/store.js';
import { removeDownloads, type ImageOutcome } from './acquire.js';
import { imageNumber, placeImages, type PulledImage } from './pull-images.js';
import { Chain } from './chain.js';
import { formatReference, parseReference, type Reference } from './reference.js';
import { makeClient, warnPlainHttp, type RegistryOptions } from './registry-options.js';
import { loadPublicKey } from './sign.js';
import { checkSignature } from './signatures.js';
import { fetchGeneration } from './stack-manifest.js';
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

const ACTIONS = ['init', 'adopt', 'commit', 'compact'] as const;

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
  const target = ref.digest ?? ref.tag ?? 'latest';
  const where = formatReference(ref, target);

  let digest: string;
  if (ref.digest) digest = ref.digest;
  else {
    const head = await client.headManifest(target);
    if (!head) {
      throw new SquashtreeError('E_OCI_NOT_FOUND', `${where} does not exist`, {
        hint: `publish it from the builder first: squashtree publish ${tree.name} ${ref.registry}/${ref.repository}`,
      });
    }
    digest = head.digest;
  }
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

  reporter.step(`fetching manifest ${digest}`);
  const head = await fetchGeneration(client, digest, where);
  const signedBy = verify
    ? await checkSignature(client, digest, verify.key, verify.path, where)
    : null;
  const { config, images: remote } = head;
  const n = config.generation;

  // No rollback attacks: compare with what we last pulled, or with a generation made here.
  const baseline = m
    ? state && state.localGeneration === m.current
      ? state.generation
      : m.current
    : 0;
  if (n < baseline && !opts.allowDowngrade) {
    throw new SquashtreeError(
      'E_OCI_DOWNGRADE',
      `${where} holds generation ${n}, older than generation ${baseline} that ${tree.name} has`,
      {
        hint: 'nothing was applied; if going back is intended, pull again with --allow-downgrade (squashtree rollback goes back to a kept local generation)',
      },
    );
  }

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

  if (!m) await fsp.mkdir(tree.dir, { recursive: true, mode: 0o755 });
  let last = m?.lastGeneration ?? 0;
  const localGeneration = n > last ? n : last + 1;
  last = Math.max(last, localGeneration, ...remote.map((r) => imageNumber(r.file)));
  const placed = await placeImages({
    client,
    store,
    m,
    remote,
    chain: new Chain(client, head, where),
    reporter,
    rebuild: opts.noRebuild !== true,
    last,
  });
  last = placed.last;
  const { names, records } = placed;
  Object.assign(base, {
    images: placed.images,
    downloaded: placed.downloaded,
    rebuilt: placed.rebuilt,
    reused: placed.reused,
  });
  base.bytesDownloaded = client.stats.blobReceived;

  const gen: Generation = {
    generation: localGeneration,
    parent: m?.current ?? null,
    action: (ACTIONS as readonly string[]).includes(config.action)
      ? (config.action as Generation['action'])
      : 'adopt',
    created: config.created,
    durationMs: Math.round(performance.now() - t0),
    images: names,
    files: config.files,
    bytes: config.bytes,
  };
  // A copy: the manifest read at the start stays as it was until the new one is written.
  const next: Manifest = m
    ? { ...m, images: { ...m.images }, generations: [...m.generations] }
    : {
        format: 'squashtree-manifest/1',
        tree: tree.name,
        current: localGeneration,
        lastGeneration: last,
        images: {},
        generations: [],
      };
  appendGeneration(next, records, gen, last);
  await writeManifest(store, next);
  await writeOciState(store, stateRecord(where, digest, n, localGeneration));
  await removeDownloads(store);
  reporter.step(
    `generation ${n} is current${obs.state === 'mounted' ? ' (the tree shows it after a restart)' : ''}`,
  );

  const { switched, discarded } = await applySwitch(ctx, obs, { discardNeeded }, opts, n);
  const now = await observe(ctx);
  const pinned = new Set<string>(now.session?.lower ?? []);
  const committed = now.session?.committedGeneration;
  if (committed != null) {
    for (const f of next.generations.find((g) => g.generation === committed)?.images ?? [])
      pinned.add(f);
  }
  await collectGarbage(store, next, tree.keep, pinned);
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

function stateRecord(ref: string, digest: string, generation: number, localGeneration: number) {
  return {
    format: 'squashtree-oci-state/1' as const,
    ref,
    digest,
    generation,
    localGeneration,
    pulledAt: new Date().toISOString(),
  };
}

function sumBytes(m: Manifest, files: readonly string[]): number {
  return files.reduce((s, f) => s + (m.images[f]?.bytes ?? 0), 0);
}
