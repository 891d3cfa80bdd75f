/**
 * The generation manifest: which images make up each generation of a tree,
 * with their sizes and sha256. It is the single source of truth for what is
 * committed; it is replaced atomically, so a crash leaves the old or the new
 * manifest, and images are published before the manifest names them.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { COMPRESSORS } from '../config/schema.js';
import { SquashtreeError, errnoCode } from '../errors.js';
import { writeFileAtomic } from '../fs/durable.js';
import { MERGE_METHOD, mergeEnvironment, type MergeSettings } from '../squashfs/recipe.js';

export const MANIFEST_FILE = 'manifest.json';
export const IMAGE_NAME = /^g\d{6,}-(base|layer)\.sqfs$/;

const sha256 = z.string().regex(/^[0-9a-f]{64}$/);

/**
 * How a base made by compaction can be made again (src/squashfs/recipe.ts):
 * the merge rule and its version, the input images by content (bottom
 * first), the settings that change the output and the environment it ran
 * in. A follower holding the inputs rebuilds the base instead of
 * downloading it. Bases packed by mksquashfs have none.
 */
const recipeSchema = z.object({
  method: z.string(),
  inputs: z.array(z.object({ sha256, bytes: z.number().int().nonnegative() })).min(1),
  settings: z.record(z.string(), z.union([z.boolean(), z.number(), z.string()])),
  environment: z.record(z.string(), z.string()),
});

const imageSchema = z.object({
  file: z.string().regex(IMAGE_NAME),
  kind: z.enum(['base', 'layer']),
  bytes: z.number().int().nonnegative(),
  sha256,
  compression: z.enum(COMPRESSORS).or(z.literal('unknown')),
  blockSize: z.number().int().nonnegative(),
  created: z.string(),
  /** Optional: manifests written before recipes existed have none. */
  recipe: recipeSchema.optional(),
});

const generationSchema = z.object({
  generation: z.number().int().positive(),
  parent: z.number().int().positive().nullable(),
  action: z.enum(['init', 'adopt', 'commit', 'compact']),
  created: z.string(),
  durationMs: z.number().nonnegative(),
  /** Base first, newest layer last. */
  images: z.array(z.string().regex(IMAGE_NAME)).min(1),
  /** Size of the tree this generation holds, where known. */
  files: z.number().int().nonnegative().nullable(),
  bytes: z.number().int().nonnegative().nullable(),
});

export const manifestSchema = z.object({
  format: z.literal('squashtree-manifest/1'),
  tree: z.string(),
  current: z.number().int().positive(),
  lastGeneration: z.number().int().positive(),
  images: z.record(z.string(), imageSchema),
  generations: z.array(generationSchema).min(1),
});

export type ImageRecord = z.infer<typeof imageSchema>;
export type Recipe = z.infer<typeof recipeSchema>;
export type Generation = z.infer<typeof generationSchema>;
export type Manifest = z.infer<typeof manifestSchema>;

/**
 * Add GEN, with the images it brings, as the newest generation and make it
 * current (in M; the caller writes the manifest). LAST is the highest
 * generation number handed out, GEN's own unless a pull skipped numbers.
 */
export function appendGeneration(
  m: Manifest,
  images: Readonly<Record<string, ImageRecord>>,
  gen: Generation,
  last: number = gen.generation,
): void {
  Object.assign(m.images, images);
  m.generations.push(gen);
  m.current = gen.generation;
  m.lastGeneration = last;
}

export function manifestPath(store: string): string {
  return join(store, MANIFEST_FILE);
}

export async function readManifest(store: string): Promise<Manifest | null> {
  const path = manifestPath(store);
  let text: string;
  try {
    text = await fsp.readFile(path, 'utf8');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return null;
    throw e;
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw corrupt(path, `not valid JSON (${String(e)})`);
  }
  const parsed = manifestSchema.safeParse(data);
  if (!parsed.success) throw corrupt(path, parsed.error.issues[0]?.message ?? 'unexpected content');
  const m = parsed.data;
  for (const g of m.generations) {
    for (const f of g.images)
      if (!m.images[f]) throw corrupt(path, `generation ${g.generation} names unknown image ${f}`);
  }
  const newest = Math.max(...m.generations.map((g) => g.generation));
  if (m.lastGeneration < newest) {
    // New images are named after lastGeneration + 1: a smaller value would overwrite one.
    throw corrupt(path, `lastGeneration ${m.lastGeneration} is below generation ${newest}`);
  }
  if (!m.generations.some((g) => g.generation === m.current)) {
    throw corrupt(path, `current generation ${m.current} is not listed`);
  }
  return m;
}

function corrupt(path: string, why: string): SquashtreeError {
  return new SquashtreeError('E_MANIFEST', `the generation manifest ${path} is damaged: ${why}`, {
    path,
    hint: 'restore it from a backup; the images next to it are intact and `squashtree init --from-image` can adopt one of them',
  });
}

export async function writeManifest(store: string, m: Manifest): Promise<void> {
  manifestSchema.parse(m);
  await writeFileAtomic(manifestPath(store), `${JSON.stringify(m, null, 2)}\n`, 0o600);
}

export function generation(m: Manifest, n: number): Generation {
  const g = m.generations.find((x) => x.generation === n);
  if (!g) {
    throw new SquashtreeError('E_NO_GENERATION', `generation ${n} is not kept in the store`, {
      hint: `kept generations: ${m.generations.map((x) => x.generation).join(', ')}`,
    });
  }
  return g;
}

export function currentGeneration(m: Manifest): Generation {
  return generation(m, m.current);
}

export function imageFileName(gen: number, kind: 'base' | 'layer'): string {
  return `g${String(gen).padStart(6, '0')}-${kind}.sqfs`;
}

/** The recipe of a base the native writer merged from `inputs` (bottom first) with `settings`. */
export function mergeRecipe(inputs: readonly ImageRecord[], settings: MergeSettings): Recipe {
  return {
    method: MERGE_METHOD,
    inputs: inputs.map((r) => ({ sha256: r.sha256, bytes: r.bytes })),
    settings: { ...settings },
    environment: mergeEnvironment(),
  };
}
