/**
 * Registry references as docker, podman and ORAS write them:
 * `[HOST[:PORT]/]REPOSITORY[:TAG][@sha256:HEX]`. The first component is a
 * host when it holds a dot or a colon or is `localhost`; otherwise the
 * reference is on Docker Hub (whose one-component names live under
 * `library/`).
 */
import { SquashtreeError } from '../errors.js';

export interface Reference {
  /** Host (and port) as written, `docker.io` for Docker Hub. */
  registry: string;
  /** The host the API is served from (Docker Hub's differs from its name). */
  apiHost: string;
  repository: string;
  tag?: string;
  digest?: string;
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
export const DIGEST = /^sha256:[0-9a-f]{64}$/;

function bad(ref: string, why: string): SquashtreeError {
  return new SquashtreeError('E_USAGE', `not a registry reference: ${ref} (${why})`, {
    hint: 'write it as HOST[:PORT]/REPOSITORY[:TAG], for example registry.example.org/gentoo/repo',
  });
}

export function parseReference(ref: string): Reference {
  let rest = ref.trim();
  if (rest.includes('://')) throw bad(ref, 'leave out the scheme; --plain-http selects http');
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw bad(ref, `${digest} is not a sha256 digest`);
  }
  let tag: string | undefined;
  const slash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > slash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw bad(ref, `${tag} is not a valid tag`);
  }
  const parts = rest.split('/');
  let registry = 'docker.io';
  const first = parts[0] ?? '';
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    registry = first;
    parts.shift();
  }
  if (registry === 'index.docker.io' || registry === 'registry-1.docker.io') registry = 'docker.io';
  if (registry === 'docker.io' && parts.length === 1) parts.unshift('library');
  if (parts.length === 0 || parts.some((p) => !COMPONENT.test(p))) {
    throw bad(ref, 'repository names are lowercase letters, digits and . _ - separated by /');
  }
  const repository = parts.join('/');
  return {
    registry,
    apiHost: registry === 'docker.io' ? 'registry-1.docker.io' : registry,
    repository,
    ...(tag !== undefined ? { tag } : {}),
    ...(digest !== undefined ? { digest } : {}),
  };
}

export function formatReference(r: Reference, tagOrDigest?: string): string {
  const t = tagOrDigest ?? r.digest ?? r.tag;
  const sep = t === undefined ? '' : DIGEST.test(t) ? '@' : ':';
  return `${r.registry}/${r.repository}${t === undefined ? '' : `${sep}${t}`}`;
}

/** True for hosts on this machine, where --plain-http is reasonable. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\./.test(h);
}
