/**
 * The demo: a throwaway portage-like tree taken through init, start, a
 * simulated sync, commit, stop, start, a content check and stop, with the
 * time and space of each step. It uses its own temp dir, config, store and
 * state dir, touches nothing else, and removes all it made and mounted.
 */
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applySync, generateRepo } from '../corpus/portage.js';
import { loadConfig } from '../config/load.js';
import { SquashtreeError } from '../errors.js';
import { run } from '../exec/run.js';
import { compareTrees } from '../image/compare.js';
import { silentReporter, type Reporter } from '../lifecycle/context.js';
import { initTree } from '../lifecycle/init.js';
import { Tree } from '../lifecycle/tree.js';
import { unmount } from '../mount/mount.js';
import { mountsUnder, readMounts } from '../mount/mountinfo.js';
import { detachStaleLoops } from '../mount/image-stack.js';

export interface DemoStep {
  step: string;
  detail: string;
  ms: number;
}

export interface DemoResult {
  workDir: string;
  steps: DemoStep[];
  treeFiles: number;
  treeBytes: number;
  imageBytes: number;
  layerBytes: number;
  commitMs: number;
  fullRepackMs: number;
  identical: boolean;
  cleanedUp: boolean;
}

export interface DemoOptions {
  categories?: number;
  packagesPerCategory?: number;
  reporter?: Reporter;
  /** Keep the temp dir (for debugging); mounts are always undone. */
  keep?: boolean;
}

async function dirBytes(path: string): Promise<number> {
  const { stdout } = await run('du', ['-s', '--block-size=1', path]);
  return Number(stdout.split(/\s/)[0]);
}

export async function runDemo(opts: DemoOptions = {}): Promise<DemoResult> {
  const rep = opts.reporter ?? silentReporter;
  const work = await fsp.mkdtemp(join(tmpdir(), 'squashtree-demo-'));
  const steps: DemoStep[] = [];
  const timed = async <T>(
    step: string,
    fn: () => Promise<T>,
    detail: (r: T) => string,
  ): Promise<T> => {
    const t0 = performance.now();
    const r = await fn();
    const s = { step, detail: detail(r), ms: performance.now() - t0 };
    steps.push(s);
    rep.step(`${step}: ${s.detail} (${Math.round(s.ms)} ms)`);
    return r;
  };
  const tree = join(work, 'repo');
  const expected = join(work, 'expected');
  const configPath = join(work, 'squashtree.toml');
  const stateDir = join(work, 'state');
  const shape = {
    categories: opts.categories ?? 16,
    packagesPerCategory: opts.packagesPerCategory ?? 60,
    seed: 2026,
  };
  let cleanedUp = false;
  try {
    const base = await timed(
      'generate a portage-like tree',
      async () => {
        await generateRepo(expected, shape);
        return generateRepo(tree, shape);
      },
      (s) =>
        `${s.files} files in ${s.packages.length} packages, ${(s.bytes / 1e6).toFixed(1)} MB of text`,
    );
    const diskBefore = await dirBytes(tree);

    const init = await timed(
      'init: pack it into a verified SquashFS image',
      async () => {
        const config = await loadConfig(configPath);
        return initTree({
          config,
          stateDir,
          name: 'demo',
          dir: tree,
          settings: { store: join(work, 'store'), compression: 'gzip' },
          removeSource: true,
          reporter: silentReporter,
          lockWaitSeconds: 30,
        });
      },
      (r) =>
        `${(r.imageBytes / 1e6).toFixed(2)} MB image for ${(diskBefore / 1e6).toFixed(1)} MB on disk (${Math.round((1 - r.imageBytes / diskBefore) * 100)}% saved); source files removed after verification`,
    );

    const cfg = (await loadConfig(configPath)).trees[0];
    if (!cfg) throw new SquashtreeError('E_INTERNAL', 'demo tree missing from its config');
    const t = new Tree(cfg, stateDir, silentReporter, 30);
    await timed(
      'start: mount image read-only + tmpfs upper + overlay',
      () => t.start(),
      (r) => `generation ${r.generation} mounted on ${tree}`,
    );
    await timed(
      'simulated sync (new, changed, deleted files, a directory replaced)',
      async () => {
        await applySync(expected, base, 7, 60);
        return applySync(tree, base, 7, 60);
      },
      (s) =>
        `${s.added} version bumps, ${s.deleted} packages removed, ${s.replacedDirs} package dirs replaced`,
    );
    const commit = await timed(
      'commit: pack only the upper into a layer',
      () => t.commit(),
      (r) => `${r.pendingFiles} changes in a ${(r.layerBytes / 1024).toFixed(0)} KiB layer`,
    );
    // One commit, one time: what the step took as the user waited for it (lock and all).
    const commitMs = steps[steps.length - 1]?.ms ?? commit.durationMs;
    const full = await timed(
      'for comparison: a full re-pack of the tree (the old recipe)',
      async () => {
        const t0 = performance.now();
        await run('mksquashfs', [
          tree,
          join(work, 'full.sqfs'),
          '-noappend',
          '-quiet',
          '-no-progress',
          '-comp',
          'gzip',
        ]);
        return performance.now() - t0;
      },
      (ms) =>
        `commit took ${Math.round(commitMs)} ms against ${Math.round(ms)} ms for a full mksquashfs`,
    );
    await timed(
      'stop',
      () => t.stop(),
      () => 'overlay, image and tmpfs unmounted',
    );
    await timed(
      'start again',
      () => t.start(),
      (r) => `generation ${r.generation} with ${r.layers} images`,
    );
    const cmp = await timed(
      'content check against an unmanaged copy',
      () => compareTrees(expected, tree, { contents: true }),
      (c) =>
        c.differences.length === 0
          ? `identical: ${c.entries} entries, every file compared byte for byte`
          : `${c.differences.length} DIFFERENCES, first ${c.differences[0]?.path ?? ''}`,
    );
    await timed(
      'stop',
      () => t.stop(),
      () => 'unmounted',
    );
    const st = await t.status();
    return {
      workDir: work,
      steps,
      treeFiles: base.files,
      treeBytes: diskBefore,
      imageBytes: init.imageBytes,
      layerBytes: commit.layerBytes,
      commitMs,
      fullRepackMs: full,
      identical: cmp.differences.length === 0 && st.generation === 2,
      cleanedUp: await cleanup(work, opts.keep).then(() => (cleanedUp = true)),
    };
  } finally {
    if (!cleanedUp) await cleanup(work, opts.keep);
  }
}

/** Unmount anything left below the demo's dir, free its loops, delete it. */
async function cleanup(work: string, keep = false): Promise<void> {
  for (const m of mountsUnder(await readMounts(), work))
    await unmount(m.mountPoint, { lazy: true });
  await detachStaleLoops(work);
  if (!keep) await fsp.rm(work, { recursive: true, force: true });
}
