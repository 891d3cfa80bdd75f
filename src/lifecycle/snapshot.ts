/**
 * What of the upper a generation holds: the signature of every upper entry
 * as it was when that generation's layer was captured (layer/upper-scan.ts). A session
 * keeps one per generation it made, named by the generation's number, and
 * writes it BEFORE the manifest that names the generation: a commit killed
 * between the manifest and the session record is then recognised by the
 * next one (the generation, its images and its top image's sha256 match),
 * which stacks on it instead of packing the same changes again.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { errnoCode } from '../errors.js';
import { writeFileAtomic } from '../fs/durable.js';
import type { Layout } from './layout.js';
import type { UpperSnapshot } from '../layer/upper-scan.js';

const FORMAT = 'squashtree-upper/2';
const NAME = /^upper-g(\d{6,})\.json$/;
/** What commits before stacking wrote: the upper of the session's only layer, no generation. */
const LEGACY = 'committed-upper.json';

export interface GenerationSnapshot {
  generation: number;
  /** The generation's images, base first. */
  images: string[];
  /** sha256 of its top image, null when the generation was not published yet (never read). */
  top: string | null;
  entries: UpperSnapshot;
}

export function snapshotPath(layout: Layout, generation: number): string {
  return join(layout.sessionHome, `upper-g${String(generation).padStart(6, '0')}.json`);
}

export async function writeGenerationSnapshot(
  layout: Layout,
  s: GenerationSnapshot,
): Promise<void> {
  // Keys are binary strings; latin1 JSON keeps every byte.
  const text = JSON.stringify({
    format: FORMAT,
    generation: s.generation,
    images: s.images,
    top: s.top,
    entries: Object.fromEntries(s.entries),
  });
  await writeFileAtomic(snapshotPath(layout, s.generation), Buffer.from(text, 'latin1'), 0o600);
}

interface Stored {
  format?: string;
  generation?: number;
  images?: string[];
  top?: string | null;
  entries?: Record<string, string>;
}

/** The snapshot of a generation, or null when this session has none for it (or it is damaged). */
export async function readGenerationSnapshot(
  layout: Layout,
  generation: number,
): Promise<GenerationSnapshot | null> {
  let raw: Buffer;
  try {
    raw = await fsp.readFile(snapshotPath(layout, generation));
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return null;
    throw e;
  }
  let s: Stored;
  try {
    s = JSON.parse(raw.toString('latin1')) as Stored;
  } catch {
    return null;
  }
  // A damaged snapshot only costs a commit of the whole upper (see commit-chain.ts).
  if (s.format !== FORMAT || s.generation !== generation || !Array.isArray(s.images)) return null;
  if (typeof s.entries !== 'object') return null;
  return {
    generation,
    images: s.images,
    top: typeof s.top === 'string' ? s.top : null,
    entries: new Map(Object.entries(s.entries)),
  };
}

/** The snapshot commits before stacking kept (one per session), for counting what is pending. */
export async function readLegacySnapshot(layout: Layout): Promise<UpperSnapshot | null> {
  try {
    const raw = await fsp.readFile(join(layout.sessionHome, LEGACY));
    return new Map(Object.entries(JSON.parse(raw.toString('latin1')) as Record<string, string>));
  } catch (e) {
    if (errnoCode(e) === 'ENOENT' || e instanceof SyntaxError) return null;
    throw e;
  }
}

async function snapshotFiles(layout: Layout): Promise<{ name: string; generation: number }[]> {
  let names: string[];
  try {
    names = await fsp.readdir(layout.sessionHome);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return [];
    throw e;
  }
  return names.flatMap((name) => {
    const m = NAME.exec(name);
    return m ? [{ name, generation: Number(m[1]) }] : [];
  });
}

/** Remove the session's snapshots (and the legacy one) except those of `keep`. */
export async function removeSnapshots(
  layout: Layout,
  keep: ReadonlySet<number> = new Set(),
): Promise<void> {
  for (const f of await snapshotFiles(layout)) {
    if (!keep.has(f.generation)) await fsp.rm(join(layout.sessionHome, f.name), { force: true });
  }
  await fsp.rm(join(layout.sessionHome, LEGACY), { force: true });
}

/** Snapshots of generations no manifest has named (a commit killed before its manifest). */
export async function removeUnnamedSnapshots(
  layout: Layout,
  lastGeneration: number,
): Promise<void> {
  for (const f of await snapshotFiles(layout)) {
    if (f.generation > lastGeneration)
      await fsp.rm(join(layout.sessionHome, f.name), { force: true });
  }
}
