/**
 * pull: make a published generation the current one of a local tree,
 * downloading only the images the store lacks. Under the tree's lock:
 *
 *  1. HEAD the tag; a digest already applied (and still current) ends here.
 *  2. GET the manifest by digest (its bytes must hash to it), check its
 *     signature when a key is given, GET the config; a generation older than
 *     the local one is refused unless --allow-downgrade (no rollback attacks).
 *  3. Pending local changes are never lost: pull refuses while there are any,
 *     unless --discard.
 *  4. Each missing image streams into a temp file in the store (removed by
 *     the next run if this one dies), checked for size and sha256 while it
 *     arrives and by unsquashfs, then renamed to its final name.
 *  5. The new manifest is written atomically (the same swap commit uses),
 *     then STORE/oci.json, then old generations beyond `keep` are collected.
 *
 * A mounted tree keeps its images until its next restart (or at once with
 * --restart); its session's images are never collected meanwhile.
 */
import { promises as fsp } from 'node:fs';
import type { KeyObject } from 'node:crypto';
import { COMPRESSORS, type Compressor } from '../config/schema.js';
import { SquashtreeError, errnoCode } from '../errors.js';
import { publishFile } from '../fs/durable.js';
import { sha256File } from '../fs/hash.js';
import { checkMetadata } from '../image/check.js';
import type { TreeContext } from '../lifecycle/context.js';
import { discardLocked } from '../lifecycle/discard.js';
import { observe, type Observation } from '../lifecycle/observe.js';
import { tempImagePath } from '../lifecycle/publish.js';
import { startLocked } from '../lifecycle/start.js';
import { treeStatus } from '../lifecycle/status.js';
import { stopLocked } from '../lifecycle/stop.js';
import type { Tree } from '../lifecycle/tree.js';
import {
  currentGeneration,
  imageFileName,
  writeManifest,
  type Generation,
  type ImageRecord,
  type Manifest,
} from '../store/manifest.js';
import { collectGarbage, ensureStore, imagePath } from '../store/store.js';
import type { RegistryClient } from './client.js';
import { makeClient, signatureTag, warnPlainHttp, type RegistryOptions } from './publish.js';
import { formatReference, parseReference, type Reference } from './reference.js';
import { loadPublicKey, verifyDigest } from './sign.js';
import { cleanupOciTemps, readOciState, writeOciState } from './state.js';
import {
  ANN_BLOCK_SIZE,
  ANN_COMPRESSION,
  ANN_CREATED,
  ANN_GENERATION,
  ANN_TITLE,
  ARTIFACT_SIGNATURE,
  ARTIFACT_STACK,
  MEDIA_CONFIG,
  MEDIA_LAYER,
  MEDIA_SIGNATURE,
  imageManifestSchema,
  layerAnnotationsSchema,
  signaturePayloadSchema,
  stackConfigSchema,
  type Descriptor,
  type ImageManifest,
  type SignaturePayload,
  type StackConfig,
} from './types.js';

export interface PullOptions extends RegistryOptions {
  /** Ed25519 public key (PEM): refuse manifests it did not sign. */
  verifyKey?: string;
  allowDowngrade?: boolean;
  /** Switch a mounted tree to the new generation at once. */
  restart?: boolean;
  /** Drop pending local changes instead of refusing. */
  discard?: boolean;
}

export interface PulledImage {
  file: string;
  bytes: number;
}

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
  downloaded: PulledImage[];
  /** Images the store had already (by sha256). */
  reused: string[];
  /** Bytes of image blobs received. */
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

interface RemoteImage {
  digest: string;
  sha256: string;
  size: number;
  file: string;
  kind: 'base' | 'layer';
  compression: Compressor | 'unknown';
  blockSize: number;
  created: string;
}

function badManifest(where: string, why: string): SquashtreeError {
  return new SquashtreeError('E_OCI_MANIFEST', `${where} is not a squashtree generation: ${why}`, {
    hint: 'pull a reference that squashtree publish wrote (REPOSITORY, REPOSITORY:latest or REPOSITORY:gen-N)',
  });
}

export function parseStackManifest(bytes: Buffer, where: string): ImageManifest {
  let data: unknown;
  try {
    data = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw badManifest(where, 'the manifest is not JSON');
  }
  const parsed = imageManifestSchema.safeParse(data);
  if (!parsed.success) throw badManifest(where, 'not an OCI image manifest');
  const m = parsed.data;
  if (m.artifactType !== ARTIFACT_STACK || m.config.mediaType !== MEDIA_CONFIG)
    throw badManifest(where, `artifactType ${m.artifactType ?? '(none)'}`);
  if (m.layers.length === 0) throw badManifest(where, 'no images');
  return m;
}

function remoteImages(m: ImageManifest, where: string): RemoteImage[] {
  const names = new Set<string>();
  return m.layers.map((l: Descriptor) => {
    if (l.mediaType !== MEDIA_LAYER) throw badManifest(where, `a layer of type ${l.mediaType}`);
    const ann = layerAnnotationsSchema.safeParse(l.annotations ?? {});
    if (!ann.success) throw badManifest(where, `layer ${l.digest} lacks a valid image file name`);
    const file = ann.data[ANN_TITLE];
    if (names.has(file)) throw badManifest(where, `image ${file} is listed twice`);
    names.add(file);
    const comp = ann.data[ANN_COMPRESSION];
    return {
      digest: l.digest,
      sha256: l.digest.slice('sha256:'.length),
      size: l.size,
      file,
      kind: file.endsWith('-base.sqfs') ? 'base' : 'layer',
      compression: (COMPRESSORS as readonly string[]).includes(comp)
        ? (comp as Compressor)
        : 'unknown',
      blockSize: Number(ann.data[ANN_BLOCK_SIZE] ?? 0),
      created: ann.data[ANN_CREATED] ?? new Date().toISOString(),
    };
  });
}

function fileNumber(file: string): number {
  return Number(/^g(\d+)-/.exec(file)?.[1] ?? 0);
}

/** Signature payloads that refer to `digest`: through referrers, else the sha256-<hex>.sig tag. */
async function findSignatures(client: RegistryClient, digest: string): Promise<SignaturePayload[]> {
  const descs: { digest: string }[] = [];
  const idx = await client.referrers(digest, ARTIFACT_SIGNATURE);
  if (idx) descs.push(...idx.manifests.filter((d) => d.artifactType === ARTIFACT_SIGNATURE));
  if (descs.length === 0) {
    const head = await client.headManifest(signatureTag(digest));
    if (head) descs.push(head);
  }
  const out: SignaturePayload[] = [];
  for (const d of descs.slice(0, 16)) {
    const fetched = await client.getManifest(d.digest);
    let parsed;
    try {
      parsed = imageManifestSchema.safeParse(JSON.parse(fetched.bytes.toString('utf8')));
    } catch {
      continue;
    }
    if (!parsed.success) continue;
    const sig = parsed.data;
    if (sig.artifactType !== ARTIFACT_SIGNATURE || sig.subject?.digest !== digest) continue;
    const layer = sig.layers.find((l) => l.mediaType === MEDIA_SIGNATURE);
    if (!layer) continue;
    const bytes = await client.getBlobBytes(layer.digest, layer.size, 64 << 10);
    try {
      const p = signaturePayloadSchema.safeParse(JSON.parse(bytes.toString('utf8')));
      if (p.success) out.push(p.data);
    } catch {
      // not a signature payload: ignore it like any unrelated referrer
    }
  }
  return out;
}

async function checkSignature(
  client: RegistryClient,
  digest: string,
  key: KeyObject,
  keyPath: string,
  where: string,
): Promise<string> {
  const payloads = await findSignatures(client, digest);
  if (payloads.length === 0) {
    throw new SquashtreeError('E_OCI_SIGNATURE', `${where} (${digest}) is not signed`, {
      hint: 'nothing was applied; the builder signs with: squashtree publish NAME REF --sign-key FILE',
    });
  }
  for (const p of payloads) if (verifyDigest(key, digest, p)) return p.key;
  throw new SquashtreeError(
    'E_OCI_SIGNATURE',
    `${where} (${digest}) is not signed by the key ${keyPath} (signed by ${[...new Set(payloads.map((p) => p.key))].join(', ')})`,
    {
      hint: "nothing was applied; check that --verify-key is the public half of the builder's --sign-key",
    },
  );
}

export async function pullTree(
  tree: Tree,
  refText: string,
  opts: PullOptions = {},
): Promise<PullResult> {
  const ref = parseReference(refText);
  const key = opts.verifyKey ? await loadPublicKey(opts.verifyKey) : undefined;
  return tree.locked((ctx) =>
    pullLocked(ctx, ref, opts, key ? { key, path: opts.verifyKey ?? '' } : undefined),
  );
}

async function pullLocked(
  ctx: TreeContext,
  ref: Reference,
  opts: PullOptions,
  verify: { key: KeyObject; path: string } | undefined,
): Promise<PullResult> {
  const t0 = performance.now();
  const { tree, reporter } = ctx;
  const store = tree.store;
  await ensureStore(store);
  await cleanupOciTemps(store);
  const obs = await observe(ctx);
  const m = obs.manifest;
  const state = await readOciState(store);
  const client = await makeClient(ref, opts);
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
    downloaded: [] as PulledImage[],
    reused: [] as string[],
    bytesDownloaded: 0,
    mounted: obs.state === 'mounted',
    switched: false,
    discarded: null,
  };
  if (state?.digest === digest && m && m.current === state.localGeneration) {
    return {
      ...base,
      switched: await restartIfBehind(ctx, obs, m, opts),
      generation: state.generation,
      localGeneration: m.current,
      upToDate: true,
      transferBytes: client.stats.received,
      imageBytes: sumBytes(m, currentGeneration(m).images),
      signedBy: null,
      timestamp: null,
      durationMs: performance.now() - t0,
    };
  }

  reporter.step(`fetching manifest ${digest}`);
  const fetched = await client.getManifest(digest);
  const manifest = parseStackManifest(fetched.bytes, where);
  const signedBy = verify
    ? await checkSignature(client, digest, verify.key, verify.path, where)
    : null;
  const configBytes = await client.getBlobBytes(manifest.config.digest, manifest.config.size);
  let config: StackConfig;
  try {
    config = stackConfigSchema.parse(JSON.parse(configBytes.toString('utf8')));
  } catch {
    throw badManifest(where, 'its config is not a squashtree config');
  }
  const annotated = manifest.annotations?.[ANN_GENERATION];
  if (annotated !== undefined && Number(annotated) !== config.generation)
    throw badManifest(
      where,
      `its annotation says generation ${annotated}, its config ${config.generation}`,
    );
  const remote = remoteImages(manifest, where);
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

  let discardNeeded = false;
  if (obs.state === 'mounted' || obs.state === 'interrupted') {
    const st = await treeStatus(ctx);
    if (obs.state === 'interrupted' || st.pending.files > 0) {
      if (!opts.discard) {
        throw new SquashtreeError(
          'E_PENDING',
          `tree "${tree.name}" has ${st.pending.files} pending change(s)${obs.state === 'interrupted' ? ' from an interrupted session' : ''}; pulling would hide them`,
          {
            hint: `commit them (squashtree commit ${tree.name}) and publish them from here, or drop them: squashtree pull ${tree.name} REF --discard`,
          },
        );
      }
      discardNeeded = true;
    }
  }

  const same =
    m !== null &&
    currentGeneration(m)
      .images.map((f) => m.images[f]?.sha256)
      .join(',') === remote.map((r) => r.sha256).join(',');
  if (same && !discardNeeded) {
    await writeOciState(store, stateRecord(where, digest, n, m.current));
    return {
      ...base,
      switched: await restartIfBehind(ctx, obs, m, opts),
      generation: n,
      localGeneration: m.current,
      upToDate: true,
      transferBytes: client.stats.received,
      imageBytes: sumBytes(m, currentGeneration(m).images),
      signedBy,
      timestamp: config.timestamp,
      durationMs: performance.now() - t0,
    };
  }

  if (!m) await fsp.mkdir(tree.dir, { recursive: true, mode: 0o755 });
  let last = m?.lastGeneration ?? 0;
  const localGeneration = n > last ? n : last + 1;
  last = Math.max(last, localGeneration, ...remote.map((r) => fileNumber(r.file)));
  const bySha = new Map<string, string>();
  for (const [file, rec] of Object.entries(m?.images ?? {})) bySha.set(rec.sha256, file);
  const records: Record<string, ImageRecord> = {};
  const names: string[] = [];
  for (const r of remote) {
    const have = bySha.get(r.sha256);
    if (have !== undefined && (await exists(imagePath(store, have)))) {
      names.push(have);
      base.reused.push(have);
      continue;
    }
    let name = r.file;
    if (
      (m?.images[name] !== undefined && m.images[name]?.sha256 !== r.sha256) ||
      names.includes(name)
    )
      name = imageFileName(++last, r.kind);
    const path = imagePath(store, name);
    if (await matches(path, r)) {
      // Published by a pull that died before its manifest: already verified.
      base.reused.push(name);
    } else {
      reporter.step(`downloading ${r.file} (${r.size} bytes)`);
      const tmp = tempImagePath(store);
      try {
        await client.downloadBlob(r.digest, r.size, tmp, (got) => {
          reporter.progress(r.file, r.size > 0 ? got / r.size : 1);
        });
        await checkMetadata(tmp);
        await publishFile(tmp, path);
      } catch (e) {
        await fsp.rm(tmp, { force: true });
        throw e;
      }
      base.downloaded.push({ file: name, bytes: r.size });
    }
    names.push(name);
    bySha.set(r.sha256, name);
    records[name] = {
      file: name,
      kind: r.kind,
      bytes: r.size,
      sha256: r.sha256,
      compression: r.compression,
      blockSize: r.blockSize,
      created: r.created,
    };
  }
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
  const next: Manifest = m
    ? {
        ...m,
        images: { ...m.images, ...records },
        generations: [...m.generations, gen],
        current: localGeneration,
        lastGeneration: last,
      }
    : {
        format: 'squashtree-manifest/1',
        tree: tree.name,
        current: localGeneration,
        lastGeneration: last,
        images: records,
        generations: [gen],
      };
  await writeManifest(store, next);
  await writeOciState(store, stateRecord(where, digest, n, localGeneration));
  reporter.step(
    `generation ${n} is current${obs.state === 'mounted' ? ' (the tree shows it after a restart)' : ''}`,
  );

  let discarded: PullResult['discarded'] = null;
  let switched = false;
  if (discardNeeded) {
    // Remounts a mounted tree on the new current generation.
    const d = await discardLocked(ctx);
    discarded = { files: d.files, bytes: d.bytes };
    switched = obs.state === 'mounted';
  } else if (opts.restart && obs.state === 'mounted') {
    reporter.step(`restarting ${tree.dir} on generation ${n}`);
    await stopLocked(ctx, { noCompact: true });
    await startLocked(ctx);
    switched = true;
  }
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

/**
 * Nothing new to pull, but a mounted tree still shows an older generation
 * (a pull without --restart, or a restart that found the tree busy): with
 * --restart, switch it now, unless it has pending changes.
 */
async function restartIfBehind(
  ctx: TreeContext,
  obs: Observation,
  m: Manifest,
  opts: PullOptions,
): Promise<boolean> {
  const s = obs.session;
  if (!opts.restart || obs.state !== 'mounted' || !s) return false;
  if ((s.committedGeneration ?? s.generation) === m.current) return false;
  if ((await treeStatus(ctx)).pending.files > 0) {
    ctx.reporter.warn(
      `${ctx.tree.name} has pending changes: not restarted onto generation ${m.current}`,
    );
    return false;
  }
  ctx.reporter.step(`restarting ${ctx.tree.dir} on generation ${m.current}`);
  await stopLocked(ctx, { noCompact: true });
  await startLocked(ctx);
  return true;
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

async function exists(path: string): Promise<boolean> {
  try {
    await fsp.lstat(path);
    return true;
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return false;
    throw e;
  }
}

/** An image file already in place with the wanted size and sha256. */
async function matches(path: string, r: RemoteImage): Promise<boolean> {
  try {
    const st = await fsp.lstat(path);
    if (!st.isFile() || st.size !== r.size) return false;
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return false;
    throw e;
  }
  return (await sha256File(path)) === r.sha256;
}
