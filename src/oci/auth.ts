/**
 * Registry credentials and the challenge a registry answers 401 with.
 * Credentials come from SQUASHTREE_REGISTRY_USER / SQUASHTREE_REGISTRY_PASSWORD,
 * else from the "auths" of the standard docker config
 * ($DOCKER_CONFIG/config.json or ~/.docker/config.json), as `docker login`,
 * `podman login --authfile` and `oras login` write it. Credential helpers
 * (credsStore) are not run.
 */
import { promises as fsp } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { errnoCode, SquashtreeError } from '../errors.js';

export interface Credentials {
  username: string;
  password: string;
  /** Where they came from, for messages (never the secret). */
  source: string;
}

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.DOCKER_CONFIG ?? join(homedir(), '.docker'), 'config.json');
}

/** The keys a docker config may file a registry's credentials under. */
function authKeys(registry: string): string[] {
  if (registry === 'docker.io') {
    return ['https://index.docker.io/v1/', 'index.docker.io', 'docker.io', 'registry-1.docker.io'];
  }
  return [registry, `https://${registry}`, `http://${registry}`, `https://${registry}/v1/`];
}

export async function loadCredentials(
  registry: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Credentials | null> {
  const user = env.SQUASHTREE_REGISTRY_USER;
  const password = env.SQUASHTREE_REGISTRY_PASSWORD;
  if (user !== undefined && user !== '') {
    return {
      username: user,
      password: password ?? '',
      source: 'SQUASHTREE_REGISTRY_USER/SQUASHTREE_REGISTRY_PASSWORD',
    };
  }
  const path = dockerConfigPath(env);
  let text: string;
  try {
    text = await fsp.readFile(path, 'utf8');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'EACCES') return null;
    throw e;
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new SquashtreeError('E_OCI_AUTH', `${path} is not valid JSON`, {
      path,
      hint: 'fix or remove it, or set SQUASHTREE_REGISTRY_USER and SQUASHTREE_REGISTRY_PASSWORD',
    });
  }
  const auths = (data as { auths?: Record<string, { auth?: string; identitytoken?: string }> })
    .auths;
  if (!auths || typeof auths !== 'object') return null;
  const wanted = authKeys(registry);
  const byKey = new Map(Object.entries(auths).map(([k, v]) => [k.replace(/\/+$/, ''), v]));
  for (const key of wanted) {
    const entry = byKey.get(key.replace(/\/+$/, ''));
    if (!entry || typeof entry.auth !== 'string' || entry.auth === '') continue;
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) continue;
    return {
      username: decoded.slice(0, colon),
      password: decoded.slice(colon + 1),
      source: `${path} (auths."${key}")`,
    };
  }
  return null;
}

export function basicHeader(c: Credentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
}

/** Parse `Bearer realm="...",service="...",scope="..."` (quoted or token values). */
export function parseChallenge(header: string): Challenge | null {
  const m = /^\s*([A-Za-z]+)\s*(.*)$/s.exec(header);
  if (!m) return null;
  const params: Record<string, string> = {};
  const re = /([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))\s*,?\s*/g;
  let p: RegExpExecArray | null;
  const rest = m[2] ?? '';
  while ((p = re.exec(rest)) !== null) {
    params[(p[1] ?? '').toLowerCase()] = (p[2] ?? p[3] ?? '').replace(/\\(.)/g, '$1');
  }
  return { scheme: (m[1] ?? '').toLowerCase(), params };
}
