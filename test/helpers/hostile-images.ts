/**
 * Shared by the hostile-*.test.ts files: the base tree, the ways an image
 * is damaged (DAMAGES), and reading a store's manifest and listing.
 */
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { assertSameTree, type Spec } from './tree.js';
import { SMALL } from './setup.js';

export function textBlob(lines: number, tag: string): string {
  let s = '';
  for (let i = 0; i < lines; i++) s += `${tag} line ${i} ${'abcdefghij'.repeat(1 + (i % 7))}\n`;
  return s;
}

export const BASE: Spec = {
  ...SMALL,
  'big.txt': textBlob(12_000, 'base'),
  docs: { dir: { 'notes.txt': textBlob(500, 'notes'), 'empty.txt': '' } },
};

export interface Damage {
  name: string;
  /** Damage the image file in place (or replace/remove it). */
  apply: (path: string) => Promise<void>;
  /** Can the manifest's sha256 be updated to match (is there a file left)? */
  deep: boolean;
}

export async function u64(path: string, offset: number): Promise<number> {
  const fh = await fsp.open(path, 'r');
  try {
    const b = Buffer.alloc(8);
    await fh.read(b, 0, 8, offset);
    return Number(b.readBigUInt64LE(0));
  } finally {
    await fh.close();
  }
}

export async function flip(path: string, offset: number, len: number): Promise<void> {
  const fh = await fsp.open(path, 'r+');
  try {
    const b = Buffer.alloc(len);
    await fh.read(b, 0, len, offset);
    for (let i = 0; i < len; i++) b[i] = (b[i] ?? 0) ^ 0xff;
    await fh.write(b, 0, len, offset);
  } finally {
    await fh.close();
  }
}

// SquashFS 4.0 superblock: inode_table_start at 64, directory_table_start at 72; data blocks
// (compressed where that saves space) start right after the 96-byte superblock.
export const DAMAGES: Damage[] = [
  {
    name: 'truncated to half',
    deep: true,
    apply: async (p) => {
      const st = await fsp.stat(p);
      await fsp.truncate(p, Math.floor(st.size / 2));
    },
  },
  {
    name: 'superblock zeroed',
    deep: true,
    apply: async (p) => {
      const fh = await fsp.open(p, 'r+');
      await fh.write(Buffer.alloc(96), 0, 96, 0);
      await fh.close();
    },
  },
  {
    name: 'bytes flipped in compressed data',
    deep: true,
    apply: async (p) => {
      const end = await u64(p, 64);
      for (const frac of [0.2, 0.5, 0.8]) await flip(p, 96 + Math.floor((end - 96) * frac), 16);
    },
  },
  {
    name: 'bytes flipped in metadata (inode and directory tables)',
    deep: true,
    apply: async (p) => {
      await flip(p, (await u64(p, 64)) + 6, 8);
      await flip(p, (await u64(p, 72)) + 6, 8);
    },
  },
  {
    name: 'not SquashFS at all',
    deep: true,
    apply: async (p) => {
      const st = await fsp.stat(p);
      await fsp.writeFile(p, randomBytes(st.size));
    },
  },
  {
    name: 'missing',
    deep: false,
    apply: (p) => fsp.rm(p),
  },
];

export interface ManifestJson {
  images: Record<string, { sha256: string; bytes: number }>;
  generations: { generation: number; images: string[] }[];
  current: number;
}

export async function readManifest(store: string): Promise<ManifestJson> {
  return JSON.parse(await fsp.readFile(join(store, 'manifest.json'), 'utf8')) as ManifestJson;
}

/** Make the manifest agree with the damaged file, so only unsquashfs, mount or a read can tell. */
export async function blessInManifest(store: string, file: string): Promise<void> {
  const m = await readManifest(store);
  const data = await fsp.readFile(join(store, file));
  const rec = m.images[file];
  assert.ok(rec);
  rec.sha256 = createHash('sha256').update(data).digest('hex');
  rec.bytes = data.length;
  await fsp.writeFile(join(store, 'manifest.json'), `${JSON.stringify(m, null, 2)}\n`);
}

export async function storeListing(store: string): Promise<string[]> {
  const out: string[] = [];
  for (const n of (await fsp.readdir(store)).sort()) out.push(n);
  return out;
}

export interface VerifyJson {
  trees: {
    result?: { ok: boolean; images: { file: string; ok: boolean; problems: string[] }[] };
  }[];
}

/** Every file of the tree read back; the first error, or '' when all read and match the model. */
export async function readEverything(tree: string, model: string): Promise<string> {
  try {
    const r = await assertSameTree(model, tree, 'read back').then(
      () => '',
      (e: unknown) => String(e).split('\n')[0] ?? 'differs',
    );
    return r;
  } catch (e) {
    return String(e);
  }
}
