/**
 * Signature artifacts in the registry: an Ed25519 signature of a manifest
 * digest (sign.ts) pushed as an artifact whose `subject` is that manifest,
 * found through the referrers API or, on registries without one (such as
 * distribution 2.8), under the tag `sha256-<hex>.sig`.
 */
import type { KeyObject } from 'node:crypto';
import { SquashtreeError } from '../errors.js';
import { digestOf, type RegistryClient } from './client.js';
import { signDigest, verifyDigest } from './sign.js';
import {
  ANN_KEY,
  ARTIFACT_SIGNATURE,
  EMPTY_DIGEST,
  MEDIA_EMPTY,
  MEDIA_OCI_MANIFEST,
  MEDIA_SIGNATURE,
  imageManifestSchema,
  jsonBytes,
  signaturePayloadSchema,
  type Descriptor,
  type ImageManifest,
  type SignaturePayload,
} from './types.js';

export interface PushedSignature {
  digest: string;
  key: string;
  tag: string | null;
  referrers: boolean;
}

/** The tag a signature goes under where the registry has no referrers API. */
export function signatureTag(digest: string): string {
  return `${digest.replace(':', '-')}.sig`;
}

export async function pushSignature(
  client: RegistryClient,
  key: KeyObject,
  digest: string,
  size: number,
): Promise<PushedSignature> {
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

/** Digests of the signature artifacts that refer to `digest`. */
export async function signatureManifests(
  client: RegistryClient,
  digest: string,
): Promise<string[]> {
  const out: string[] = [];
  const idx = await client.referrers(digest, ARTIFACT_SIGNATURE);
  if (idx) {
    for (const d of idx.manifests) if (d.artifactType === ARTIFACT_SIGNATURE) out.push(d.digest);
  }
  if (out.length === 0) {
    const head = await client.headManifest(signatureTag(digest));
    if (head) out.push(head.digest);
  }
  return out;
}

/** Signature payloads that refer to `digest`. */
async function findSignatures(client: RegistryClient, digest: string): Promise<SignaturePayload[]> {
  const out: SignaturePayload[] = [];
  for (const d of (await signatureManifests(client, digest)).slice(0, 16)) {
    const fetched = await client.getManifest(d);
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

/** The key id that signed `digest`, or E_OCI_SIGNATURE. */
export async function checkSignature(
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
