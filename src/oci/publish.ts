/**
 * publish: push a tree's current generation to an OCI registry. Every image
 * becomes a blob (a HEAD first: blobs the registry has are not sent again),
 * then a small config blob, then an image manifest whose layers are the
 * images in stack order, tagged `gen-<N>` (immutable: a different manifest
 * under an existing gen tag is refused) and, last, `latest`. With a signing
 * key, a signature artifact that refers to the manifest is pushed before
 * `latest` moves, so a follower never sees an unsigned `latest`.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { SquashtreeError, errnoCode } from '../errors.js';
import type { TreeContext } from '../lifecycle/context.js';
import { checkImages } from '../lifecycle/integrity.js';
import { observe, requireManifest } from '../lifecycle/observe.js';
import type { Tree } from '../lifecycle/tree.js';
import { currentGeneration } from '../store/manifest.js';
import { imagePath } from '../store/store.js';
import { loadCredentials } from './auth.js';
import { RegistryClient, digestOf, type ClientOptions } from './client.js';
import { formatReference, isLoopback, parseReference, type Reference } from './reference.js';
import { loadPrivateKey, signDigest } from './sign.js';
import {
  ANN_BLOCK_SIZE,
  ANN_COMPRESSION,
  ANN_CREATED,
  ANN_GENERATION,
  ANN_KEY,
  ANN_KIND,
  ANN_TITLE,
  ANN_TREE,
  ARTIFACT_SIGNATURE,
  ARTIFACT_STACK,
  EMPTY_DIGEST,
  MEDIA_CONFIG,
  MEDIA_EMPTY,
  MEDIA_LAYER,
  MEDIA_OCI_MANIFEST,
  MEDIA_SIGNATURE,
  jsonBytes,
  type Descriptor,
  type ImageManifest,
  type StackConfig,
} from './types.js';

export interface RegistryOptions {
  plainHttp?: boolean;
  /** Upload chunk size in bytes (blobs above it go up in PATCH chunks). */
  chunkSize?: number;
  /** Replaces the global fetch (tests). */
  fetch?: typeof fetch;
}

export interface PublishOptions extends RegistryOptions {
  /** Ed25519 private key (PEM) to sign the manifest digest with. */
  signKey?: string;
}

export interface PublishedBlob {
  file: string;
  digest: string;
  bytes: number;
  uploaded: boolean;
}

export interface PublishResult {
  tree: string;
  ref: string;
  generation: number;
  digest: string;
  tags: string[];
  blobs: PublishedBlob[];
  uploadedBytes: number;
  skippedBytes: number;
  /** All request body bytes sent. */
  sentBytes: number;
  signature: { digest: string; key: string; tag: string | null; referrers: boolean } | null;
  timestamp: string | null;
  durationMs: number;
}

export async function makeClient(ref: Reference, opts: RegistryOptions): Promise<RegistryClient> {
  const copts: ClientOptions = {
    plainHttp: opts.plainHttp === true,
    credentials: await loadCredentials(ref.registry),
  };
  if (opts.chunkSize !== undefined) copts.chunkSize = opts.chunkSize;
  if (opts.fetch) copts.fetch = opts.fetch;
  return new RegistryClient(ref, copts);
}

export function warnPlainHttp(ctx: TreeContext, ref: Reference, opts: RegistryOptions): void {
  if (opts.plainHttp && !isLoopback(ref.apiHost)) {
    ctx.reporter.warn(
      `--plain-http to ${ref.apiHost}, which is not this machine: images and credentials travel unencrypted`,
    );
  }
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

export function publishTree(
  tree: Tree,
  refText: string,
  opts: PublishOptions = {},
): Promise<PublishResult> {
  const ref = parseReference(refText);
  if (ref.tag !== undefined || ref.digest !== undefined) {
    throw new SquashtreeError(
      'E_USAGE',
      `publish takes a repository, not a tag or digest: ${refText}`,
      {
        hint: `publish tags gen-N and latest itself: squashtree publish ${tree.name} ${ref.registry}/${ref.repository}`,
      },
    );
  }
  return tree.locked((ctx) => publishLocked(ctx, ref, opts));
}

async function publishLocked(
  ctx: TreeContext,
  ref: Reference,
  opts: PublishOptions,
): Promise<PublishResult> {
  const t0 = performance.now();
  const { tree, layout, reporter } = ctx;
  const signKey = opts.signKey ? await loadPrivateKey(opts.signKey) : undefined;
  const obs = await observe(ctx);
  const m = requireManifest(ctx, obs);
  const gen = currentGeneration(m);
  reporter.step(`checking the ${gen.images.length} image(s) of generation ${gen.generation}`);
  await checkImages(tree.store, m, gen.images, layout.verifiedCache);
  const client = await makeClient(ref, opts);
  warnPlainHttp(ctx, ref, opts);

  const blobs: PublishedBlob[] = [];
  const layers: Descriptor[] = [];
  for (const file of gen.images) {
    const rec = m.images[file];
    if (!rec) throw new SquashtreeError('E_INTERNAL', `image ${file} has no record`);
    const digest = `sha256:${rec.sha256}`;
    reporter.step(`blob ${file} (${rec.bytes} bytes)`);
    const uploaded = await client.pushBlob({
      digest,
      size: rec.bytes,
      path: imagePath(tree.store, file),
    });
    blobs.push({ file, digest, bytes: rec.bytes, uploaded });
    layers.push({
      mediaType: MEDIA_LAYER,
      digest,
      size: rec.bytes,
      annotations: {
        [ANN_TITLE]: file,
        [ANN_KIND]: rec.kind,
        [ANN_COMPRESSION]: rec.compression,
        [ANN_BLOCK_SIZE]: String(rec.blockSize),
        [ANN_CREATED]: rec.created,
      },
    });
  }

  const base = m.images[gen.images[0] ?? ''];
  const parentHead = gen.parent !== null ? await client.headManifest(`gen-${gen.parent}`) : null;
  const timestamp = obs.state === 'mounted' ? await portageTimestamp(tree.dir) : null;
  const config: StackConfig = {
    format: 'squashtree-oci-config/1',
    tree: tree.name,
    generation: gen.generation,
    parentGeneration: gen.parent,
    parent: parentHead?.digest ?? null,
    action: gen.action,
    created: gen.created,
    compression: base?.compression ?? 'unknown',
    blockSize: base?.blockSize ?? 0,
    files: gen.files,
    bytes: gen.bytes,
    timestamp,
  };
  const configBytes = jsonBytes(config);
  const configDesc: Descriptor = {
    mediaType: MEDIA_CONFIG,
    digest: digestOf(configBytes),
    size: configBytes.byteLength,
  };
  await client.pushBlob({ digest: configDesc.digest, size: configDesc.size, bytes: configBytes });

  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MEDIA_OCI_MANIFEST,
    artifactType: ARTIFACT_STACK,
    config: configDesc,
    layers,
    annotations: {
      [ANN_TREE]: tree.name,
      [ANN_GENERATION]: String(gen.generation),
      [ANN_CREATED]: gen.created,
    },
  };
  let manifestBytes = jsonBytes(manifest);
  let digest = digestOf(manifestBytes);
  const genTag = `gen-${gen.generation}`;
  const existing = await client.headManifest(genTag);
  if (existing && existing.digest !== digest) {
    // Published before (its config may name a parent published since): same images, same generation.
    const prior = await client.getManifest(existing.digest);
    if (!sameImages(prior.bytes, layers)) {
      throw new SquashtreeError(
        'E_OCI_TAG',
        `${formatReference(ref, genTag)} already names another manifest (${existing.digest})`,
        {
          hint: 'gen-N tags are immutable: this repository holds another tree or an earlier history of this one; publish to a new repository',
        },
      );
    }
    manifestBytes = prior.bytes;
    digest = prior.digest;
  } else {
    reporter.step(`manifest ${digest} as ${genTag}`);
    await client.putManifest(genTag, manifestBytes);
  }

  let signature: PublishResult['signature'] = null;
  if (signKey) signature = await pushSignature(client, signKey, digest, manifestBytes.byteLength);

  reporter.step('tag latest');
  await client.putManifest('latest', manifestBytes);
  const uploadedBytes = blobs.filter((b) => b.uploaded).reduce((n, b) => n + b.bytes, 0);
  return {
    tree: tree.name,
    ref: formatReference(ref),
    generation: gen.generation,
    digest,
    tags: [genTag, 'latest'],
    blobs,
    uploadedBytes,
    skippedBytes: blobs.filter((b) => !b.uploaded).reduce((n, b) => n + b.bytes, 0),
    sentBytes: client.stats.sent,
    signature,
    timestamp,
    durationMs: performance.now() - t0,
  };
}

function sameImages(bytes: Buffer, layers: readonly Descriptor[]): boolean {
  try {
    const m = JSON.parse(bytes.toString('utf8')) as Partial<ImageManifest>;
    return (
      m.artifactType === ARTIFACT_STACK &&
      JSON.stringify((m.layers ?? []).map((l) => l.digest)) ===
        JSON.stringify(layers.map((l) => l.digest))
    );
  } catch {
    return false;
  }
}

/** The tag a signature goes under where the registry has no referrers API. */
export function signatureTag(digest: string): string {
  return `${digest.replace(':', '-')}.sig`;
}

async function pushSignature(
  client: RegistryClient,
  key: Parameters<typeof signDigest>[0],
  digest: string,
  size: number,
): Promise<NonNullable<PublishResult['signature']>> {
  const payload = signDigest(key, digest);
  const payloadBytes = jsonBytes(payload);
  const empty = Buffer.from('{}');
  await client.pushBlob({ digest: EMPTY_DIGEST, size: empty.byteLength, bytes: empty });
  const sigDesc: Descriptor = {
    mediaType: MEDIA_SIGNATURE,
    digest: digestOf(payloadBytes),
    size: payloadBytes.byteLength,
  };
  await client.pushBlob({ digest: sigDesc.digest, size: sigDesc.size, bytes: payloadBytes });
  const artifact: ImageManifest = {
    schemaVersion: 2,
    mediaType: MEDIA_OCI_MANIFEST,
    artifactType: ARTIFACT_SIGNATURE,
    config: { mediaType: MEDIA_EMPTY, digest: EMPTY_DIGEST, size: empty.byteLength },
    layers: [sigDesc],
    subject: { mediaType: MEDIA_OCI_MANIFEST, digest, size },
    annotations: { [ANN_KEY]: payload.key },
  };
  const bytes = jsonBytes(artifact);
  const sigDigest = digestOf(bytes);
  const put = await client.putManifest(sigDigest, bytes);
  // A registry that processed `subject` says so (OCI-Subject) or lists it under referrers.
  let referrers = put.subject === digest;
  if (!referrers) {
    const idx = await client.referrers(digest, ARTIFACT_SIGNATURE);
    referrers = idx !== null && idx.manifests.some((d) => d.digest === sigDigest);
  }
  let tag: string | null = null;
  if (!referrers) {
    tag = signatureTag(digest);
    await client.putManifest(tag, bytes);
  }
  return { digest: sigDigest, key: payload.key, tag, referrers };
}
