/**
 * The images of a generation being pulled, placed in the store: each is
 * reused (the store has it by sha256, or a pull that died before its
 * manifest left it in place), or acquired (rebuilt or downloaded, see
 * acquire.ts) under its published name, or under a new number where that
 * name holds something else here.
 */
import { promises as fsp } from 'node:fs';
import { errnoCode } from '../errors.js';
import { sha256File } from '../fs/hash.js';
import type { Reporter } from '../lifecycle/context.js';
import { imageFileName, type ImageRecord, type Manifest } from '../store/manifest.js';
import { imagePath } from '../store/store.js';
import { Acquirer, type ImageOutcome } from './acquire.js';
import type { Chain } from './chain.js';
import type { RegistryClient } from './client.js';
import type { RemoteImage } from './stack-manifest.js';

export interface PulledImage {
  file: string;
  bytes: number;
}

export interface PlaceRequest {
  client: RegistryClient;
  store: string;
  m: Manifest | null;
  remote: readonly RemoteImage[];
  chain: Chain;
  reporter: Reporter;
  rebuild: boolean;
  /** The highest image number in use: new names count on from it. */
  last: number;
}

export interface Placed {
  /** The generation's image names, base first. */
  names: string[];
  /** Records of the images new to the store. */
  records: Record<string, ImageRecord>;
  images: ImageOutcome[];
  downloaded: PulledImage[];
  rebuilt: PulledImage[];
  reused: string[];
  last: number;
}

export function imageNumber(file: string): number {
  return Number(/^g(\d+)-/.exec(file)?.[1] ?? 0);
}

export async function placeImages(req: PlaceRequest): Promise<Placed> {
  const { store, m } = req;
  const out: Placed = {
    names: [],
    records: {},
    images: [],
    downloaded: [],
    rebuilt: [],
    reused: [],
    last: req.last,
  };
  const local = new Map<string, string>();
  const bySha = new Map<string, string>();
  for (const [file, rec] of Object.entries(m?.images ?? {})) {
    if (!(await exists(imagePath(store, file)))) continue;
    bySha.set(rec.sha256, file);
    local.set(rec.sha256, imagePath(store, file));
  }
  const acquirer = new Acquirer({
    client: req.client,
    store,
    chain: req.chain,
    reporter: req.reporter,
    local,
    rebuild: req.rebuild,
  });
  const reused = (file: string, r: RemoteImage): void => {
    out.reused.push(file);
    out.images.push({ file, digest: r.digest, bytes: r.size, how: 'reused', transferred: 0 });
  };
  for (const r of req.remote) {
    const have = bySha.get(r.sha256);
    if (have !== undefined) {
      out.names.push(have);
      reused(have, r);
      continue;
    }
    let name = r.file;
    if (
      (m?.images[name] !== undefined && m.images[name]?.sha256 !== r.sha256) ||
      out.names.includes(name)
    )
      name = imageFileName(++out.last, r.kind);
    const path = imagePath(store, name);
    if (await matches(path, r)) {
      // Published by a pull that died before its manifest: already verified.
      reused(name, r);
      local.set(r.sha256, path);
    } else {
      const outcome = await acquirer.acquire(r, path);
      out.images.push({ ...outcome, file: name });
      (outcome.how === 'rebuilt' ? out.rebuilt : out.downloaded).push({
        file: name,
        bytes: r.size,
      });
    }
    out.names.push(name);
    bySha.set(r.sha256, name);
    out.records[name] = {
      file: name,
      kind: r.kind,
      bytes: r.size,
      sha256: r.sha256,
      compression: r.compression,
      blockSize: r.blockSize,
      created: r.created,
    };
  }
  return out;
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
