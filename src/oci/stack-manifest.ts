/**
 * Reading a published generation: its stack manifest (the images, base
 * first, as layers), its config, and the images as the store will record
 * them. Anything that is not what squashtree publish writes is refused.
 */
import { COMPRESSORS, type Compressor } from '../config/schema.js';
import { SquashtreeError } from '../errors.js';
import type { RegistryClient } from './client.js';
import {
  ANN_BLOCK_SIZE,
  ANN_COMPRESSION,
  ANN_CREATED,
  ANN_GENERATION,
  ANN_TITLE,
  ARTIFACT_STACK,
  MEDIA_CONFIG,
  MEDIA_LAYER,
  imageManifestSchema,
  layerAnnotationsSchema,
  stackConfigSchema,
  type Descriptor,
  type ImageManifest,
  type StackConfig,
} from './types.js';

export interface RemoteImage {
  digest: string;
  sha256: string;
  size: number;
  file: string;
  kind: 'base' | 'layer';
  compression: Compressor | 'unknown';
  blockSize: number;
  created: string;
}

export interface RemoteGeneration {
  digest: string;
  manifestBytes: number;
  manifest: ImageManifest;
  config: StackConfig;
  images: RemoteImage[];
}

export function badManifest(where: string, why: string): SquashtreeError {
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

export function remoteImages(m: ImageManifest, where: string): RemoteImage[] {
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

/** GET a generation by manifest digest: manifest, config and images, all checked. */
export async function fetchGeneration(
  client: RegistryClient,
  digest: string,
  where: string,
): Promise<RemoteGeneration> {
  const fetched = await client.getManifest(digest);
  const manifest = parseStackManifest(fetched.bytes, where);
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
  return {
    digest,
    manifestBytes: fetched.bytes.byteLength,
    manifest,
    config,
    images: remoteImages(manifest, where),
  };
}
