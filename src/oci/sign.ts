/**
 * Ed25519 signatures over manifest digests (node:crypto). The publisher
 * signs the ASCII digest of the stack manifest; the signature travels as an
 * artifact whose `subject` is that manifest, found through the referrers API
 * or, on registries without one, under the tag `sha256-<hex>.sig`.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';
import { promises as fsp, constants as C } from 'node:fs';
import { join, resolve } from 'node:path';
import { SquashtreeError, errnoCode, errorMessage } from '../errors.js';
import type { SignaturePayload } from './types.js';

export const PRIVATE_KEY_FILE = 'squashtree-sign.key';
export const PUBLIC_KEY_FILE = 'squashtree-sign.pub';

/** sha256 of the public key's DER (SPKI) encoding: names a key in messages and payloads. */
export function keyId(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  const der = pub.export({ type: 'spki', format: 'der' });
  return `sha256:${createHash('sha256').update(der).digest('hex')}`;
}

export interface GeneratedKey {
  privateKey: string;
  publicKey: string;
  keyId: string;
}

async function writeNew(path: string, data: string, mode: number, force: boolean): Promise<void> {
  const flags = C.O_WRONLY | C.O_CREAT | C.O_NOFOLLOW | (force ? C.O_TRUNC : C.O_EXCL);
  let fh;
  try {
    fh = await fsp.open(path, flags, mode);
  } catch (e) {
    if (errnoCode(e) === 'EEXIST') {
      throw new SquashtreeError('E_KEY', `${path} exists`, {
        path,
        hint: 'choose another --out dir, or pass --force to replace the key pair',
      });
    }
    throw e;
  }
  try {
    await fh.chmod(mode);
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export async function generateKey(dir: string, force = false): Promise<GeneratedKey> {
  const out = resolve(dir);
  await fsp.mkdir(out, { recursive: true, mode: 0o700 });
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const priv = join(out, PRIVATE_KEY_FILE);
  const pub = join(out, PUBLIC_KEY_FILE);
  await writeNew(
    priv,
    privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    0o600,
    force,
  );
  await writeNew(pub, publicKey.export({ type: 'spki', format: 'pem' }).toString(), 0o644, force);
  return { privateKey: priv, publicKey: pub, keyId: keyId(publicKey) };
}

async function readKeyFile(path: string): Promise<{ text: string; mode: number }> {
  try {
    const [text, st] = await Promise.all([fsp.readFile(path, 'utf8'), fsp.stat(path)]);
    return { text, mode: st.mode };
  } catch (e) {
    throw new SquashtreeError('E_KEY', `cannot read key ${path}: ${errorMessage(e)}`, {
      path,
      hint: 'make one with: squashtree key generate --out DIR',
    });
  }
}

export async function loadPrivateKey(path: string): Promise<KeyObject> {
  const { text, mode } = await readKeyFile(path);
  if ((mode & 0o077) !== 0) {
    throw new SquashtreeError('E_KEY', `private key ${path} is readable by other users`, {
      path,
      hint: `chmod 600 ${path}`,
    });
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(text);
  } catch (e) {
    throw new SquashtreeError('E_KEY', `${path} is not a private key: ${errorMessage(e)}`, {
      path,
      hint: 'pass the .key file that squashtree key generate wrote',
    });
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new SquashtreeError(
      'E_KEY',
      `${path} is a ${String(key.asymmetricKeyType)} key, not Ed25519`,
      {
        path,
        hint: 'make an Ed25519 key pair with: squashtree key generate',
      },
    );
  }
  return key;
}

export async function loadPublicKey(path: string): Promise<KeyObject> {
  const { text } = await readKeyFile(path);
  let key: KeyObject;
  try {
    key = createPublicKey(text);
  } catch (e) {
    throw new SquashtreeError('E_KEY', `${path} is not a public key: ${errorMessage(e)}`, {
      path,
      hint: 'pass the .pub file that squashtree key generate wrote',
    });
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new SquashtreeError(
      'E_KEY',
      `${path} is a ${String(key.asymmetricKeyType)} key, not Ed25519`,
      {
        path,
        hint: 'pass the .pub file that squashtree key generate wrote',
      },
    );
  }
  return key;
}

export function signDigest(key: KeyObject, digest: string): SignaturePayload {
  return {
    format: 'squashtree-signature/1',
    algorithm: 'ed25519',
    digest,
    signature: sign(null, Buffer.from(digest, 'ascii'), key).toString('base64'),
    key: keyId(key),
  };
}

export function verifyDigest(key: KeyObject, digest: string, p: SignaturePayload): boolean {
  if (p.digest !== digest) return false;
  try {
    return verify(null, Buffer.from(digest, 'ascii'), key, Buffer.from(p.signature, 'base64'));
  } catch {
    return false;
  }
}
