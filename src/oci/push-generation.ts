/**
 * Pushing one local generation: every image as a blob (a HEAD first: blobs
 * the registry has are not sent again), a small config blob, and an image
 * manifest whose layers are the images in stack order, tagged `gen-<N>`
 * (immutable: a different stack under an existing gen tag is refused). The
 * config carries the recipes of its images whose inputs the registry holds,
 * so followers can rebuild them instead of downloading them.
 */
import type { KeyObject } from 'node:crypto';
import { SquashtreeError } from '../errors.js';
import type { Generation, Manifest } from '../store/manifest.js';
import { imagePath } from '../store/store.js';
import { digestOf, type RegistryClient } from './client.js';
import { formatReference, type Reference } from './reference.js';
import { toOciRecipe } from './recipe.js';
import { pushSignature, type PushedSignature } from './signatures.js';
import {
  ANN_BLOCK_SIZE,
  ANN_COMPRESSION,
  ANN_CREATED,
  ANN_GENERATION,
  ANN_KIND,
  ANN_TITLE,
  ANN_TREE,
  ARTIFACT_STACK,
  MEDIA_CONFIG,
  MEDIA_LAYER,
  MEDIA_OCI_MANIFEST,
  jsonBytes,
  type Descriptor,
  type ImageManifest,
  type OciRecipe,
  type StackConfig,
} from './types.js';

export interface PublishedBlob {
  file: string;
  digest: string;
  bytes: number;
  uploaded: boolean;
}

export interface PushedGeneration {
  generation: number;
  digest: string;
  /** Size of the manifest (a signature's subject names it). */
  size: number;
  bytes: Buffer;
  blobs: PublishedBlob[];
  /** Images whose recipe the config carries. */
  recipes: string[];
  /** The gen tag named this manifest (or one with the same images) already. */
  existed: boolean;
  signature: PushedSignature | null;
}

export interface PushContext {
  client: RegistryClient;
  ref: Reference;
  store: string;
  tree: string;
  m: Manifest;
  /** Blob digests known to be in the registry (grows as blobs are pushed or found). */
  present: Set<string>;
  signKey: KeyObject | undefined;
  step: (what: string) => void;
}

async function inRegistry(p: PushContext, digest: string): Promise<boolean> {
  if (p.present.has(digest)) return true;
  if ((await p.client.headBlob(digest)) === null) return false;
  p.present.add(digest);
  return true;
}

/** Recipes of the generation's images whose every input the registry holds. */
async function availableRecipes(
  p: PushContext,
  gen: Generation,
): Promise<Record<string, OciRecipe>> {
  const out: Record<string, OciRecipe> = {};
  for (const file of gen.images) {
    const rec = p.m.images[file];
    if (!rec?.recipe) continue;
    const recipe = toOciRecipe(rec.recipe);
    let ok = true;
    for (const i of recipe.inputs) if (!(await inRegistry(p, i.digest))) ok = false;
    if (ok) out[`sha256:${rec.sha256}`] = recipe;
  }
  return out;
}

export async function pushGeneration(
  p: PushContext,
  gen: Generation,
  parent: string | null,
  timestamp: string | null,
): Promise<PushedGeneration> {
  const { client, m } = p;
  const blobs: PublishedBlob[] = [];
  const layers: Descriptor[] = [];
  for (const file of gen.images) {
    const rec = m.images[file];
    if (!rec) throw new SquashtreeError('E_INTERNAL', `image ${file} has no record`);
    const digest = `sha256:${rec.sha256}`;
    p.step(`blob ${file} (${rec.bytes} bytes)`);
    const uploaded = await client.pushBlob({
      digest,
      size: rec.bytes,
      path: imagePath(p.store, file),
    });
    p.present.add(digest);
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
  const recipes = await availableRecipes(p, gen);
  const base = m.images[gen.images[0] ?? ''];
  const config: StackConfig = {
    format: 'squashtree-oci-config/1',
    tree: p.tree,
    generation: gen.generation,
    parentGeneration: gen.parent,
    parent,
    action: gen.action,
    created: gen.created,
    compression: base?.compression ?? 'unknown',
    blockSize: base?.blockSize ?? 0,
    files: gen.files,
    bytes: gen.bytes,
    timestamp,
    ...(Object.keys(recipes).length > 0 ? { recipes } : {}),
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
      [ANN_TREE]: p.tree,
      [ANN_GENERATION]: String(gen.generation),
      [ANN_CREATED]: gen.created,
    },
  };
  let bytes = jsonBytes(manifest);
  let digest = digestOf(bytes);
  const genTag = `gen-${gen.generation}`;
  const existing = await client.headManifest(genTag);
  let existed = false;
  if (existing && existing.digest !== digest) {
    // Published before (its config may name a parent published since): same images, same generation.
    const prior = await client.getManifest(existing.digest);
    if (!sameImages(prior.bytes, layers)) {
      throw new SquashtreeError(
        'E_OCI_TAG',
        `${formatReference(p.ref, genTag)} already names another manifest (${existing.digest})`,
        {
          hint: 'gen-N tags are immutable: this repository holds another tree or an earlier history of this one; publish to a new repository',
        },
      );
    }
    bytes = prior.bytes;
    digest = prior.digest;
    existed = true;
  } else if (existing) {
    existed = true;
  } else {
    p.step(`manifest ${digest} as ${genTag}`);
    await client.putManifest(genTag, bytes);
  }
  const signature = p.signKey
    ? await pushSignature(client, p.signKey, digest, bytes.byteLength)
    : null;
  return {
    generation: gen.generation,
    digest,
    size: bytes.byteLength,
    bytes,
    blobs,
    recipes: Object.keys(recipes),
    existed,
    signature,
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
