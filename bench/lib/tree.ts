/**
 * One benchmark tree: its own config, state dir, store and mount point
 * below one dir, driven through the CLI of one build. A tree is made by
 * `init` from a corpus (the config then points it at its own mount point,
 * so the corpus is only ever read) or as a copy of another tree's stopped
 * store, which costs a file copy instead of a pack and a verify.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { BenchError, run } from './exec.js';
import { num, obj } from './fields.js';
import {
  Squashtree,
  defaultsToml,
  treeToml,
  type Build,
  type CompressorSpec,
  type SqRun,
} from './squashtree.js';

export const TREE = 'bench';

export interface TreeEnv {
  build: Build;
  spec: CompressorSpec;
  probe: string;
}

export class BenchTree {
  readonly store: string;
  readonly mnt: string;
  readonly cfg: string;
  readonly sq: Squashtree;

  private constructor(
    readonly dir: string,
    readonly env: TreeEnv,
    /** undefined: the product's default policy. */
    readonly compactAfter: number | undefined,
  ) {
    this.store = join(dir, 'store');
    this.mnt = join(dir, 'tree');
    this.cfg = join(dir, 'squashtree.toml');
    const scratch = join(dir, 'scratch');
    this.sq = new Squashtree(env.build, this.cfg, join(dir, 'state'), env.probe, scratch);
  }

  private async layout(): Promise<void> {
    await fsp.mkdir(join(this.dir, 'scratch'), { recursive: true });
    await fsp.mkdir(this.mnt, { recursive: true });
  }

  private async pointAtMount(): Promise<void> {
    await fsp.writeFile(
      this.cfg,
      defaultsToml(this.env.spec, this.compactAfter) + treeToml(TREE, this.mnt, this.store),
    );
  }

  /** `init` from a corpus dir; returns the tree (stopped) and the init run. */
  static async init(
    dir: string,
    env: TreeEnv,
    source: string,
    compactAfter?: number,
  ): Promise<{ tree: BenchTree; init: SqRun }> {
    const t = new BenchTree(dir, env, compactAfter);
    await t.layout();
    await fsp.writeFile(t.cfg, defaultsToml(env.spec, compactAfter));
    const init = await t.sq.init(TREE, source, t.store);
    await t.pointAtMount();
    return { tree: t, init };
  }

  /** A new tree on a copy of this (stopped) tree's store. */
  async copy(
    dir: string,
    compactAfter: number | undefined = this.compactAfter,
  ): Promise<BenchTree> {
    const t = new BenchTree(dir, this.env, compactAfter);
    await t.layout();
    await run('cp', ['-a', this.store, t.store]);
    await t.pointAtMount();
    return t;
  }

  /** Start and check how many images it mounted (when `images` is given). */
  async start(images?: number): Promise<SqRun & { images: number }> {
    const r = await this.sq.start();
    if (images !== undefined && Number.isFinite(r.images) && r.images !== images)
      throw new BenchError(`${this.dir}: expected ${images} images at start, got ${r.images}`);
    return r;
  }

  /** Images of the current generation and their bytes, from the store's manifest. */
  async images(): Promise<{ images: number; bytes: number; files: string[] }> {
    // Read as data, not through the library: a baseline build may keep other fields.
    let m: Record<string, unknown>;
    try {
      m = obj(JSON.parse(await fsp.readFile(join(this.store, 'manifest.json'), 'utf8')));
    } catch (e) {
      throw new BenchError(`no readable manifest in ${this.store}: ${String(e)}`);
    }
    const gens = Array.isArray(m.generations) ? m.generations : [];
    const g = obj(gens.find((x) => num(x, 'generation') === m.current));
    const files = (Array.isArray(g.images) ? g.images : []).filter(
      (f): f is string => typeof f === 'string',
    );
    const records = obj(m.images);
    return {
      images: files.length,
      bytes: files.reduce((n, f) => n + (num(records[f], 'bytes') || 0), 0),
      files,
    };
  }

  async remove(): Promise<void> {
    await fsp.rm(this.dir, { recursive: true, force: true });
  }
}

/** A full mksquashfs of a tree, as the old recipe does at shutdown; returns the run and the image's size. */
export async function fullPack(
  source: string,
  out: string,
  spec: CompressorSpec,
): Promise<{ wallMs: number; cpuMs: number; bytes: number }> {
  await fsp.rm(out, { force: true });
  const r = await run('mksquashfs', [
    source,
    out,
    '-noappend',
    '-comp',
    spec.compression,
    ...spec.args,
  ]);
  return { wallMs: r.ms, cpuMs: r.cpuMs, bytes: (await fsp.stat(out)).size };
}
