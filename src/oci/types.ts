/**
 * The OCI shapes squashtree writes and reads: a generation is an image
 * manifest whose layers are the generation's SquashFS images (base first),
 * with a small JSON config; a signature is an artifact whose `subject` is
 * that manifest.
 */
import { z } from 'zod';
import { COMPRESSORS } from '../config/schema.js';
import { IMAGE_NAME } from '../store/manifest.js';

export const MEDIA_OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const MEDIA_OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const MEDIA_DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const MEDIA_EMPTY = 'application/vnd.oci.empty.v1+json';
export const EMPTY_DIGEST =
  'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a';

export const ARTIFACT_STACK = 'application/vnd.squashtree.stack.v1';
export const MEDIA_CONFIG = 'application/vnd.squashtree.config.v1+json';
export const MEDIA_LAYER = 'application/vnd.squashtree.layer.v1.squashfs';
export const ARTIFACT_SIGNATURE = 'application/vnd.squashtree.signature.v1';
export const MEDIA_SIGNATURE = 'application/vnd.squashtree.signature.v1+json';

/** Layer annotations. */
export const ANN_TITLE = 'org.opencontainers.image.title';
export const ANN_CREATED = 'org.opencontainers.image.created';
export const ANN_COMPRESSION = 'org.squashtree.compression';
export const ANN_BLOCK_SIZE = 'org.squashtree.block-size';
export const ANN_KIND = 'org.squashtree.kind';
export const ANN_GENERATION = 'org.squashtree.generation';
export const ANN_TREE = 'org.squashtree.tree';
export const ANN_KEY = 'org.squashtree.key';

const digest = z.string().regex(/^sha256:[0-9a-f]{64}$/);

export const descriptorSchema = z.object({
  mediaType: z.string(),
  digest,
  size: z.number().int().nonnegative(),
  artifactType: z.string().optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});
export type Descriptor = z.infer<typeof descriptorSchema>;

export const imageManifestSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.literal(MEDIA_OCI_MANIFEST).optional(),
  artifactType: z.string().optional(),
  config: descriptorSchema,
  layers: z.array(descriptorSchema),
  subject: descriptorSchema.optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});
export type ImageManifest = z.infer<typeof imageManifestSchema>;

export const indexSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  manifests: z.array(descriptorSchema),
});
export type ImageIndex = z.infer<typeof indexSchema>;

/**
 * How an image of the stack can be made from other blobs (src/squashfs/recipe.ts):
 * the merge rule, the input blobs (bottom first), the settings and the
 * builder's environment. Checked entry by entry, so one a follower does not
 * understand only costs that image's download.
 */
export const ociRecipeSchema = z.object({
  method: z.string(),
  inputs: z.array(z.object({ digest, size: z.number().int().nonnegative() })).min(1),
  settings: z.record(z.string(), z.union([z.boolean(), z.number(), z.string()])),
  environment: z.record(z.string(), z.string()),
});
export type OciRecipe = z.infer<typeof ociRecipeSchema>;

/** The config blob of a generation. */
export const stackConfigSchema = z.object({
  format: z.literal('squashtree-oci-config/1'),
  tree: z.string(),
  generation: z.number().int().positive(),
  /** The builder's parent generation and the digest of its published manifest, where known. */
  parentGeneration: z.number().int().positive().nullable(),
  parent: digest.nullable(),
  action: z.string(),
  created: z.string(),
  compression: z.enum(COMPRESSORS).or(z.literal('unknown')),
  blockSize: z.number().int().nonnegative(),
  files: z.number().int().nonnegative().nullable(),
  bytes: z.number().int().nonnegative().nullable(),
  /** metadata/timestamp.chk of a portage repository, when the builder could read it. */
  timestamp: z.string().nullable(),
  /** Recipes of the stack's images that have one, by image digest (absent in older configs). */
  recipes: z.record(z.string(), z.unknown()).optional(),
});
export type StackConfig = z.infer<typeof stackConfigSchema>;

/** What a stack manifest's layer must carry. */
export const layerAnnotationsSchema = z.object({
  [ANN_TITLE]: z.string().regex(IMAGE_NAME),
  [ANN_COMPRESSION]: z.string(),
  [ANN_BLOCK_SIZE]: z.string().regex(/^\d+$/).optional(),
  [ANN_CREATED]: z.string().optional(),
});

/** The payload of a signature blob. */
export const signaturePayloadSchema = z.object({
  format: z.literal('squashtree-signature/1'),
  algorithm: z.literal('ed25519'),
  /** The signed message: this manifest digest as ASCII. */
  digest,
  signature: z.string(),
  key: z.string(),
});
export type SignaturePayload = z.infer<typeof signaturePayloadSchema>;

/** Canonical bytes of a JSON document we push (stable key order as written). */
export function jsonBytes(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}
