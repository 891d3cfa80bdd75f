/**
 * The parent chain of a published generation, walked on demand: each
 * config names its parent's manifest digest, so the recipes of older
 * generations are found (and authenticated: every manifest is fetched by
 * the digest its child's config gives) by following `parent` back from the
 * generation being pulled. The walk stops where the registry no longer has
 * a manifest (retention), where the chain ends, or after MAX_STEPS.
 */
import { SquashtreeError } from '../errors.js';
import type { RegistryClient } from './client.js';
import { configRecipes } from './recipe.js';
import { fetchGeneration, type RemoteGeneration } from './stack-manifest.js';
import type { OciRecipe } from './types.js';

const MAX_STEPS = 64;

export class Chain {
  private readonly recipes = new Map<string, OciRecipe>();
  /** Images seen as layers of a walked generation: one seen without a recipe has none. */
  private readonly seen = new Set<string>();
  private next: string | null = null;
  private steps = 0;
  /** Generations walked beyond the head (for reports). */
  readonly walked: number[] = [];

  constructor(
    private readonly client: RegistryClient,
    head: RemoteGeneration,
    private readonly where: string,
  ) {
    this.add(head);
  }

  private add(g: RemoteGeneration): void {
    for (const [d, r] of configRecipes(g.config)) if (!this.recipes.has(d)) this.recipes.set(d, r);
    for (const i of g.images) this.seen.add(i.digest);
    this.next = g.config.parent;
  }

  /** The recipe of image `digest`, or null when none is known along the chain. */
  async recipeFor(digest: string): Promise<OciRecipe | null> {
    for (;;) {
      const r = this.recipes.get(digest);
      if (r) return r;
      if (this.seen.has(digest)) return null;
      if (!(await this.step())) return null;
    }
  }

  private async step(): Promise<boolean> {
    const next = this.next;
    if (next === null || this.steps >= MAX_STEPS) return false;
    this.steps++;
    this.next = null;
    let g: RemoteGeneration;
    try {
      g = await fetchGeneration(this.client, next, `${this.where} (parent ${next})`);
    } catch (e) {
      // A parent the registry no longer keeps, or not ours: the chain ends here.
      if (
        e instanceof SquashtreeError &&
        (e.code === 'E_OCI_NOT_FOUND' || e.code === 'E_OCI_MANIFEST')
      )
        return false;
      throw e;
    }
    this.walked.push(g.config.generation);
    this.add(g);
    return true;
  }
}
