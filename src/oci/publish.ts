/**
 * publish: push a tree's current generation to an OCI registry, tagged
 * `gen-<N>` and, last, `latest`. The generations between the newest one
 * the registry has and the current one are pushed first, oldest first, so
 * the chain of parents in the registry follows the builder's history: a
 * layer that a compaction merged away before anyone published it is still
 * a blob that some manifest names, and a follower that holds the older
 * images rebuilds the new base from them (recipes) instead of downloading
 * it. With a signing key, every manifest pushed is signed before `latest`
 * moves, so a follower never sees an unsigned `latest`.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { SquashtreeError, errnoCode } from '../errors.js';
import type { TreeContext } from '../lifecycle/context.js';
import { checkImages } from '../store/image-integrity.js';
import { observe, requireManifest } from '../lifecycle/observe.js';
import type { Tree } from '../lifecycle/tree.js';
import { currentGeneration, type Generation, type Manifest } from '../store/manifest.js';
import type { RegistryClient } from './client.js';
import { pruneRegistry, type PruneResult } from './prune.js';
import { pushGeneration, type PublishedBlob, type PushContext } from './push-generation.js';
import { formatReference, parseReference, type Reference } from './reference.js';
import { makeClient, warnPlainHttp, type RegistryOptions } from './registry-options.js';
import { loadPrivateKey } from './sign.js';
import type { PushedSignature } from './signatures.js';

export type { PublishedBlob } from './push-generation.js';
export { makeClient, warnPlainHttp, type RegistryOptions } from './registry-options.js';
export { signatureTag } from './signatures.js';

export interface PublishOptions extends RegistryOptions {
  /** Ed25519 private key (PEM) to sign the manifest digests with. */
  signKey?: string;
  /** Then delete the manifests of generations older than the `keep` newest (see prune.ts). */
  keep?: number;
}

export interface PushedSummary {
  generation: number;
  digest: string;
  uploadedBytes: number;
  /** Images whose recipe the config carries (followers may rebuild them). */
  recipes: number;
  /** The registry had it already. */
  existed: boolean;
}

export interface PublishResult {
  tree: string;
  ref: string;
  generation: number;
  digest: string;
  tags: string[];
  /** The current generation's images. */
  blobs: PublishedBlob[];
  /** Image bytes uploaded, for every generation pushed. */
  uploadedBytes: number;
  /** The current generation's image bytes the registry had already. */
  skippedBytes: number;
  /** All request body bytes sent. */
  sentBytes: number;
  signature: PushedSignature | null;
  /** Each generation pushed, oldest first: the unpublished history, then the current one. */
  pushed: PushedSummary[];
  prune: PruneResult | null;
  timestamp: string | null;
  durationMs: number;
}

/** metadata/timestamp.chk of a portage repository, read from the mounted tree. */
async function portageTimestamp(dir: string): Promise<string | null> {
  try {
    const fh = await fsp.open(join(dir, 'metadata', 'timestamp.chk'), 'r');
    try {
      const buf = Buffer.alloc(512);
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      const text = buf.subarray(0, bytesRead).toString('utf8').trim();
      return text === '' ? null : text;
    } finally {
      await fh.close();
    }
  } catch (e) {
    if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR' || errnoCode(e) === 'EACCES')
      return null;
    throw e;
  }
}

export function parsePublishRef(refText: string, tree: string): Reference {
  const ref = parseReference(refText);
  if (ref.tag !== undefined || ref.digest !== undefined) {
    throw new SquashtreeError(
      'E_USAGE',
      `publish takes a repository, not a tag or digest: ${refText}`,
      {
        hint: `publish tags gen-N and latest itself: squashtree publish ${tree} ${ref.registry}/${ref.repository}`,
      },
    );
  }
  return ref;
}

export function publishTree(
  tree: Tree,
  refText: string,
  opts: PublishOptions = {},
): Promise<PublishResult> {
  const ref = parsePublishRef(refText, tree.name);
  return tree.locked((ctx) => publishLocked(ctx, ref, opts));
}

/** The current generation and its ancestors that the store still keeps, newest first. */
function ancestry(m: Manifest): Generation[] {
  const byNumber = new Map(m.generations.map((g) => [g.generation, g]));
  const out: Generation[] = [];
  for (let g = byNumber.get(m.current); g && out.length < 1000;) {
    out.push(g);
    g = g.parent === null ? undefined : byNumber.get(g.parent);
  }
  return out;
}

/**
 * Which generations to push, oldest first, and the digest of the published
 * one they descend from. Without a published ancestor (a first publish to
 * this repository) only the current generation goes: no follower can hold
 * the images of an earlier one.
 */
async function toPush(
  client: RegistryClient,
  m: Manifest,
): Promise<{ gens: Generation[]; digests: Map<number, string> }> {
  const chain = ancestry(m);
  const digests = new Map<number, string>();
  const gens: Generation[] = [];
  for (const g of chain) {
    const head = await client.headManifest(`gen-${g.generation}`);
    if (head) {
      digests.set(g.generation, head.digest);
      if (gens.length === 0) gens.push(g);
      return { gens: gens.reverse(), digests };
    }
    gens.push(g);
  }
  return { gens: chain.slice(0, 1), digests };
}

export async function publishLocked(
  ctx: TreeContext,
  ref: Reference,
  opts: PublishOptions,
): Promise<PublishResult> {
  const t0 = performance.now();
  const { tree, layout, reporter } = ctx;
  const signKey = opts.signKey ? await loadPrivateKey(opts.signKey) : undefined;
  const obs = await observe(ctx);
  const m = requireManifest(ctx, obs);
  const cur = currentGeneration(m);
  const client = await makeClient(ref, opts);
  try {
    warnPlainHttp(ctx, ref, opts);
    const { gens, digests } = await toPush(client, m);
    const p: PushContext = {
      client,
      ref,
      store: tree.store,
      tree: tree.name,
      m,
      present: new Set(),
      signKey,
      step: (what) => {
        reporter.step(what);
      },
    };
    const timestamp = obs.state === 'mounted' ? await portageTimestamp(tree.dir) : null;
    const pushed: PushedSummary[] = [];
    let last: Awaited<ReturnType<typeof pushGeneration>> | undefined;
    let uploadedBytes = 0;
    for (const g of gens) {
      reporter.step(`checking the ${g.images.length} image(s) of generation ${g.generation}`);
      await checkImages(tree.store, m, g.images, layout.verifiedCache);
      let parent: string | null = null;
      if (g.parent !== null) {
        parent = digests.get(g.parent) ?? null;
        if (parent === null)
          parent = (await client.headManifest(`gen-${g.parent}`))?.digest ?? null;
      }
      const isCurrent = g.generation === cur.generation;
      last = await pushGeneration(p, g, parent, isCurrent ? timestamp : null);
      digests.set(g.generation, last.digest);
      const up = last.blobs.filter((b) => b.uploaded).reduce((n, b) => n + b.bytes, 0);
      uploadedBytes += up;
      pushed.push({
        generation: g.generation,
        digest: last.digest,
        uploadedBytes: up,
        recipes: last.recipes.length,
        existed: last.existed,
      });
    }
    if (!last) throw new SquashtreeError('E_INTERNAL', 'no generation to publish');
    reporter.step('tag latest');
    await client.putManifest('latest', last.bytes);
    let prune: PruneResult | null = null;
    if (opts.keep !== undefined) prune = await pruneRegistry(client, opts.keep, reporter);
    return {
      tree: tree.name,
      ref: formatReference(ref),
      generation: cur.generation,
      digest: last.digest,
      tags: [`gen-${cur.generation}`, 'latest'],
      blobs: last.blobs,
      uploadedBytes,
      skippedBytes: last.blobs.filter((b) => !b.uploaded).reduce((n, b) => n + b.bytes, 0),
      sentBytes: client.stats.sent,
      signature: last.signature,
      pushed,
      prune,
      timestamp,
      durationMs: performance.now() - t0,
    };
  } finally {
    client.close();
  }
}
