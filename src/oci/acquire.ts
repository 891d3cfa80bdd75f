/**
 * How a follower obtains each image of a generation it pulls: reused from
 * the store (by sha256), rebuilt from its recipe, or downloaded. A recipe
 * is followed when this machine can reproduce it exactly and its inputs,
 * found here or fetched as blobs (recursively: an input may itself be a
 * base with a recipe, along the parent chain), cost fewer bytes than the
 * image; a rebuild whose result differs from the published digest falls
 * back to the download. A fetched input that does not hash to its digest
 * is refused (E_OCI_DIGEST), as any tampered blob is.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { publishFile } from '../fs/durable.js';
import { checkMetadata } from '../image/check.js';
import type { Reporter } from '../lifecycle/context.js';
import { errnoCode } from '../errors.js';
import type { Chain } from './chain.js';
import type { RegistryClient } from './client.js';
import { RebuildFailed, rebuildImage } from './rebuild.js';
import { recipeUnusable } from './recipe.js';
import type { RemoteImage } from './stack-manifest.js';
import type { OciRecipe } from './types.js';

export type How = 'reused' | 'downloaded' | 'rebuilt';

export interface ImageOutcome {
  file: string;
  digest: string;
  /** Size of the image. */
  bytes: number;
  how: How;
  /** Blob bytes received for it: the image itself, or the inputs fetched to rebuild it. */
  transferred: number;
  /** Why it was downloaded rather than rebuilt, or what it was rebuilt from. */
  reason?: string;
  /** A rebuilt image's inputs, bottom first. */
  inputs?: { digest: string; bytes: number; how: How }[];
}

type Plan =
  | { kind: 'local'; digest: string; size: number; path: string }
  | { kind: 'download'; digest: string; size: number; reason?: string }
  | {
      kind: 'rebuild';
      digest: string;
      size: number;
      recipe: OciRecipe;
      inputs: Plan[];
      cost: number;
    };

/** Recipes nest (a base rebuilt from a base rebuilt from ...) at most this deep. */
const MAX_DEPTH = 12;

export const DOWNLOAD_PREFIX = '.download-';

/** Where a blob downloads to: kept across interrupted runs, so the next one resumes it. */
export function downloadPath(store: string, digest: string): string {
  return join(store, `${DOWNLOAD_PREFIX}${digest.replace(/^sha256:/, '')}`);
}

/** Remove the download files (after a pull that applied its generation). */
export async function removeDownloads(store: string): Promise<void> {
  let names: string[];
  try {
    names = await fsp.readdir(store);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return;
    throw e;
  }
  for (const n of names)
    if (n.startsWith(DOWNLOAD_PREFIX)) await fsp.rm(join(store, n), { force: true });
}

function short(digest: string): string {
  return `${digest.slice(0, 19)}…`;
}

function describeInputs(inputs: readonly Plan[]): string {
  const n = (k: Plan['kind']): number => inputs.filter((i) => i.kind === k).length;
  const parts = [
    n('local') ? `${n('local')} here` : '',
    n('download') ? `${n('download')} fetched` : '',
    n('rebuild') ? `${n('rebuild')} rebuilt` : '',
  ].filter(Boolean);
  return `${inputs.length} images (${parts.join(', ')})`;
}

export interface AcquireOptions {
  client: RegistryClient;
  store: string;
  chain: Chain;
  reporter: Reporter;
  /** Images the store holds, by sha256 hex. */
  local: Map<string, string>;
  /** False: download every missing image (pull --no-rebuild). */
  rebuild: boolean;
}

export class Acquirer {
  private readonly inRegistry = new Map<string, boolean>();

  constructor(private readonly o: AcquireOptions) {}

  private async hasBlob(digest: string): Promise<boolean> {
    let known = this.inRegistry.get(digest);
    if (known === undefined) {
      known = (await this.o.client.headBlob(digest)) !== null;
      this.inRegistry.set(digest, known);
    }
    return known;
  }

  private cost(p: Plan): number {
    return p.kind === 'local' ? 0 : p.kind === 'download' ? p.size : p.cost;
  }

  /** The cheapest way to obtain a blob, or null when there is none. */
  private async plan(
    digest: string,
    size: number,
    target: boolean,
    depth: number,
    above: ReadonlySet<string>,
  ): Promise<Plan | null> {
    const path = this.o.local.get(digest.replace(/^sha256:/, ''));
    if (path !== undefined) return { kind: 'local', digest, size, path };
    const downloadable = target || (await this.hasBlob(digest));
    let reason: string | undefined;
    const recipe =
      this.o.rebuild && depth < MAX_DEPTH && !above.has(digest)
        ? await this.o.chain.recipeFor(digest)
        : null;
    if (recipe) {
      const why = recipeUnusable(recipe);
      if (why) reason = `not rebuilt: ${why}`;
      else {
        const inputs: Plan[] = [];
        const next = new Set(above).add(digest);
        let missing: string | undefined;
        for (const i of recipe.inputs) {
          const p = await this.plan(i.digest, i.size, false, depth + 1, next);
          if (!p) {
            missing = i.digest;
            break;
          }
          inputs.push(p);
        }
        if (missing !== undefined) {
          reason = `not rebuilt: its input ${short(missing)} is neither here nor in the registry`;
        } else {
          const cost = inputs.reduce((n, p) => n + this.cost(p), 0);
          if (!downloadable || cost < size)
            return { kind: 'rebuild', digest, size, recipe, inputs, cost };
          reason = `not rebuilt: fetching its inputs (${cost} bytes) costs more than the image`;
        }
      }
    } else if (!this.o.rebuild && target) {
      reason = 'rebuilding is turned off (--no-rebuild)';
    }
    if (!downloadable) return null;
    return { kind: 'download', digest, size, ...(reason !== undefined ? { reason } : {}) };
  }

  /** The file holding plan `p`'s blob; rebuilt ones are temp files the caller removes. */
  private async make(p: Plan, temps: string[]): Promise<string> {
    if (p.kind === 'local') return p.path;
    if (p.kind === 'download') {
      const path = downloadPath(this.o.store, p.digest);
      this.o.reporter.step(`fetching input ${short(p.digest)} (${p.size} bytes)`);
      await this.o.client.downloadBlob(p.digest, p.size, path, { resume: true });
      return path;
    }
    const inputs: string[] = [];
    for (const i of p.inputs) inputs.push(await this.make(i, temps));
    this.o.reporter.step(`rebuilding ${short(p.digest)} from ${p.inputs.length} images`);
    const tmp = await rebuildImage(this.o.store, p.recipe, inputs, p);
    temps.push(tmp);
    return tmp;
  }

  /** Put image `r` at `dest` (a new name in the store), rebuilt where that is cheaper. */
  async acquire(r: RemoteImage, dest: string): Promise<ImageOutcome> {
    const before = this.o.client.stats.blobReceived;
    const received = (): number => this.o.client.stats.blobReceived - before;
    const plan = (await this.plan(r.digest, r.size, true, 0, new Set())) ?? {
      kind: 'download' as const,
      digest: r.digest,
      size: r.size,
    };
    let reason = plan.kind === 'download' ? plan.reason : undefined;
    if (plan.kind === 'rebuild') {
      const temps: string[] = [];
      try {
        const tmp = await this.make(plan, temps);
        await publishFile(tmp, dest);
        this.o.local.set(r.sha256, dest);
        return {
          file: r.file,
          digest: r.digest,
          bytes: r.size,
          how: 'rebuilt',
          transferred: received(),
          reason: `rebuilt by ${plan.recipe.method} from ${describeInputs(plan.inputs)} instead of downloading ${plan.size} bytes`,
          inputs: plan.inputs.map((i) => ({
            digest: i.digest,
            bytes: i.size,
            how: i.kind === 'local' ? 'reused' : i.kind === 'download' ? 'downloaded' : 'rebuilt',
          })),
        };
      } catch (e) {
        if (!(e instanceof RebuildFailed)) throw e;
        reason = e.message;
        this.o.reporter.warn(`${r.file}: ${e.message}; downloading it instead`);
      } finally {
        for (const t of temps) await fsp.rm(t, { force: true });
      }
    }
    if (reason === undefined && r.kind === 'base') {
      reason = 'it has no recipe (packed by mksquashfs, or published without its inputs)';
    }
    this.o.reporter.step(`downloading ${r.file} (${r.size} bytes)`);
    const path = downloadPath(this.o.store, r.digest);
    await this.o.client.downloadBlob(r.digest, r.size, path, {
      resume: true,
      onProgress: (got) => {
        this.o.reporter.progress(r.file, r.size > 0 ? got / r.size : 1);
      },
    });
    try {
      await checkMetadata(path);
    } catch (e) {
      await fsp.rm(path, { force: true });
      throw e;
    }
    await publishFile(path, dest);
    this.o.local.set(r.sha256, dest);
    return {
      file: r.file,
      digest: r.digest,
      bytes: r.size,
      how: 'downloaded',
      transferred: received(),
      ...(reason !== undefined ? { reason } : {}),
    };
  }
}
