/**
 * The steps of a pull that decide and record (pull.ts runs them in order,
 * pull-images.ts places the images): resolve the reference to a manifest
 * digest, fetch and verify the generation it names, and record it as a new
 * local generation. Each takes what it needs and returns data; none of them
 * touches the tree's mounts.
 */
import type { KeyObject } from 'node:crypto';
import { SquashtreeError } from '../errors.js';
import {
  appendGeneration,
  writeManifest,
  type Generation,
  type Manifest,
} from '../store/manifest.js';
import type { RegistryClient } from './client.js';
import type { Placed } from './pull-images.js';
import type { Reference } from './reference.js';
import { checkSignature } from './signatures.js';
import { fetchGeneration, type RemoteGeneration } from './stack-manifest.js';
import { writeOciState, type OciState } from './state.js';

const ACTIONS = ['init', 'adopt', 'commit', 'compact'] as const;

/** Resolve: the digest REF names (as given, or its tag's HEAD). */
export async function resolveDigest(
  client: RegistryClient,
  ref: Reference,
  where: string,
  treeName: string,
): Promise<string> {
  if (ref.digest) return ref.digest;
  const head = await client.headManifest(ref.tag ?? 'latest');
  if (!head) {
    throw new SquashtreeError('E_OCI_NOT_FOUND', `${where} does not exist`, {
      hint: `publish it from the builder first: squashtree publish ${treeName} ${ref.registry}/${ref.repository}`,
    });
  }
  return head.digest;
}

export interface Verified {
  head: RemoteGeneration;
  signedBy: string | null;
}

/**
 * Verify: the generation at DIGEST (its manifest hashes to it), signed by
 * the key when one is given, and not older than what this tree has (no
 * rollback attacks) unless a downgrade is allowed.
 */
export async function verifyGeneration(req: {
  client: RegistryClient;
  digest: string;
  where: string;
  treeName: string;
  verify: { key: KeyObject; path: string } | undefined;
  manifest: Manifest | null;
  state: OciState | null;
  allowDowngrade: boolean;
}): Promise<Verified> {
  const { client, digest, where, verify, manifest: m, state } = req;
  const head = await fetchGeneration(client, digest, where);
  const signedBy = verify
    ? await checkSignature(client, digest, verify.key, verify.path, where)
    : null;
  const n = head.config.generation;
  // What we last pulled, or a generation made here.
  const baseline = m
    ? state && state.localGeneration === m.current
      ? state.generation
      : m.current
    : 0;
  if (n < baseline && !req.allowDowngrade) {
    throw new SquashtreeError(
      'E_OCI_DOWNGRADE',
      `${where} holds generation ${n}, older than generation ${baseline} that ${req.treeName} has`,
      {
        hint: 'nothing was applied; if going back is intended, pull again with --allow-downgrade (squashtree rollback goes back to a kept local generation)',
      },
    );
  }
  return { head, signedBy };
}

export function stateRecord(
  ref: string,
  digest: string,
  generation: number,
  localGeneration: number,
): OciState {
  return {
    format: 'squashtree-oci-state/1',
    ref,
    digest,
    generation,
    localGeneration,
    pulledAt: new Date().toISOString(),
  };
}

/**
 * Record: the placed images as local generation LOCAL in the store's
 * manifest (written atomically), then oci.json. Returns the new manifest.
 */
export async function recordGeneration(req: {
  store: string;
  treeName: string;
  manifest: Manifest | null;
  head: RemoteGeneration;
  placed: Placed;
  localGeneration: number;
  where: string;
  digest: string;
  durationMs: number;
}): Promise<Manifest> {
  const { manifest: m, head, placed, localGeneration } = req;
  const { config } = head;
  const gen: Generation = {
    generation: localGeneration,
    parent: m?.current ?? null,
    action: (ACTIONS as readonly string[]).includes(config.action)
      ? (config.action as Generation['action'])
      : 'adopt',
    created: config.created,
    durationMs: Math.round(req.durationMs),
    images: placed.names,
    files: config.files,
    bytes: config.bytes,
  };
  // A copy: the manifest read at the start stays as it was until the new one is written.
  const next: Manifest = m
    ? { ...m, images: { ...m.images }, generations: [...m.generations] }
    : {
        format: 'squashtree-manifest/1',
        tree: req.treeName,
        current: localGeneration,
        lastGeneration: placed.last,
        images: {},
        generations: [],
      };
  appendGeneration(next, placed.records, gen, placed.last);
  await writeManifest(req.store, next);
  await writeOciState(
    req.store,
    stateRecord(req.where, req.digest, config.generation, localGeneration),
  );
  return next;
}
