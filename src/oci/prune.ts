/**
 * Retention in the registry: delete the manifests of generations older
 * than the `keep` newest, except those whose images a kept generation's
 * recipe needs (a follower rebuilding a kept base fetches its inputs as
 * blobs, and a blob stays only while some manifest names it). Deletion is
 * by digest through the distribution API, with the generation's signature
 * artifacts; the registry's own garbage collection then frees the blobs no
 * manifest names any more.
 */
import { SquashtreeError, errorMessage } from '../errors.js';
import type { Reporter } from '../lifecycle/context.js';
import type { RegistryClient } from './client.js';
import { configRecipes } from './recipe.js';
import { signatureManifests } from './signatures.js';
import { fetchGeneration, parseStackManifest } from './stack-manifest.js';

export interface PruneResult {
  keep: number;
  /** Generations whose manifests stay, newest first. */
  kept: number[];
  /** Of the kept, those older than the `keep` newest, kept for a recipe's inputs. */
  keptForRecipes: number[];
  deleted: { generation: number; digest: string }[];
  /** Why pruning stopped (the publish itself stands). */
  error: { code: string; message: string; hint?: string } | null;
}

export async function pruneRegistry(
  client: RegistryClient,
  keep: number,
  reporter: Reporter,
): Promise<PruneResult> {
  const result: PruneResult = { keep, kept: [], keptForRecipes: [], deleted: [], error: null };
  try {
    await prune(client, Math.max(1, keep), reporter, result);
  } catch (e) {
    if (!(e instanceof SquashtreeError)) throw e;
    result.error = {
      code: e.code,
      message: e.message,
      ...(e.hint !== undefined ? { hint: e.hint } : {}),
    };
  }
  return result;
}

async function prune(
  client: RegistryClient,
  keep: number,
  reporter: Reporter,
  result: PruneResult,
): Promise<void> {
  const where = client.where;
  const gens = (await client.listTags())
    .map((t) => /^gen-(\d+)$/.exec(t)?.[1])
    .filter((n): n is string => n !== undefined)
    .map(Number)
    .sort((a, b) => b - a);
  const latest = (await client.headManifest('latest'))?.digest;
  const digestOf = new Map<number, string>();
  for (const n of gens) {
    const head = await client.headManifest(`gen-${n}`);
    if (head) digestOf.set(n, head.digest);
  }
  const kept = gens.filter((n, i) => i < keep || digestOf.get(n) === latest);
  const keptLayers = new Set<string>();
  const needed = new Set<string>();
  for (const n of kept) {
    const digest = digestOf.get(n);
    if (!digest) continue;
    const g = await fetchGeneration(client, digest, `${where}:gen-${n}`);
    for (const l of g.manifest.layers) keptLayers.add(l.digest);
    for (const r of configRecipes(g.config).values())
      for (const i of r.inputs) needed.add(i.digest);
  }
  for (const d of keptLayers) needed.delete(d);
  result.kept.push(...kept);
  for (const n of gens) {
    if (kept.includes(n)) continue;
    const digest = digestOf.get(n);
    if (!digest) continue;
    if (needed.size > 0) {
      const layers = parseStackManifest(
        (await client.getManifest(digest)).bytes,
        `${where}:gen-${n}`,
      ).layers.map((l) => l.digest);
      if (layers.some((d) => needed.has(d))) {
        for (const d of layers) needed.delete(d);
        result.kept.push(n);
        result.keptForRecipes.push(n);
        continue;
      }
    }
    reporter.step(`deleting generation ${n} (${digest}) from ${where}`);
    for (const sig of await signatureManifests(client, digest)) await client.deleteManifest(sig);
    try {
      await client.deleteManifest(digest);
    } catch (e) {
      if (e instanceof SquashtreeError) throw e;
      throw new SquashtreeError('E_OCI_DELETE', `deleting gen-${n}: ${errorMessage(e)}`);
    }
    result.deleted.push({ generation: n, digest });
  }
}
