/**
 * Recipes on the wire: the store's record of how a base was merged
 * (src/store/manifest.ts), as a generation's config carries it, and the
 * checks a follower makes before it runs one. A recipe it cannot follow
 * exactly (another merge rule or version, another environment, a setting it
 * does not know) is not run: the image is downloaded instead.
 */
import { MERGE_METHOD, mergeEnvironment, type MergeSettings } from '../squashfs/recipe.js';
import type { Recipe } from '../store/manifest.js';
import { ociRecipeSchema, type OciRecipe, type StackConfig } from './types.js';

export function toOciRecipe(r: Recipe): OciRecipe {
  return {
    method: r.method,
    inputs: r.inputs.map((i) => ({ digest: `sha256:${i.sha256}`, size: i.bytes })),
    settings: { ...r.settings },
    environment: { ...r.environment },
  };
}

/** The recipes of a config that parse; others are left out (their images are downloaded). */
export function configRecipes(config: StackConfig): Map<string, OciRecipe> {
  const out = new Map<string, OciRecipe>();
  for (const [digest, raw] of Object.entries(config.recipes ?? {})) {
    const parsed = ociRecipeSchema.safeParse(raw);
    if (parsed.success && /^sha256:[0-9a-f]{64}$/.test(digest)) out.set(digest, parsed.data);
  }
  return out;
}

const KNOWN_SETTINGS: Record<keyof MergeSettings, 'boolean'> = { keepWhiteouts: 'boolean' };

/** Why this machine cannot run the recipe and get the same bytes, or null when it can. */
export function recipeUnusable(r: OciRecipe): string | null {
  if (r.method !== MERGE_METHOD) {
    return `it was made by ${r.method}; this squashtree merges by ${MERGE_METHOD}`;
  }
  const here = mergeEnvironment();
  const keys = new Set([...Object.keys(here), ...Object.keys(r.environment)]);
  for (const k of [...keys].sort()) {
    if (here[k] !== r.environment[k]) {
      return `the builder's environment differs (${k} ${r.environment[k] ?? 'unset'} there, ${here[k] ?? 'unset'} here)`;
    }
  }
  for (const [k, v] of Object.entries(r.settings)) {
    const want = (KNOWN_SETTINGS as Record<string, string>)[k];
    if (want === undefined) return `it uses a merge setting this squashtree does not know (${k})`;
    if (typeof v !== want) return `its merge setting ${k} is not a ${want}`;
  }
  return null;
}

/** The writer's options a (usable) recipe asks for. */
export function recipeSettings(r: OciRecipe): MergeSettings {
  return { keepWhiteouts: r.settings.keepWhiteouts === true };
}
