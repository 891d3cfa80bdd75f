/**
 * One corpus with one compressor, end to end through the CLI:
 *
 *   init the base and start; then for L = 0..16 layers: read (at 1, 4, 8
 *   and 16 layers), apply the delta for layer L+1, and either commit, full
 *   mksquashfs of the merged tree for comparison, stop and start (on the
 *   `runs` layers that end at 8: these are timed, and so are that stop,
 *   with nothing left to commit, and that start) or restart (its stop
 *   commits). At 8 layers the store is copied aside. Afterwards the
 *   8-layer store is compacted `runs` times (each a fresh copy), and the
 *   last compacted tree is read as the single-image baseline.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { currentGeneration, readManifest } from '../../src/store/manifest.js';
import type { Corpus, DeltaInfo } from './corpus.js';
import { BenchError, run } from './exec.js';
import { measureReads, type ReadResult } from './reads.js';
import {
  Squashtree,
  defaultsToml,
  treeToml,
  type CompressorSpec,
  type SqRun,
} from './squashtree.js';
import { summarize, type Summary } from './stats.js';
import { BUILTIN_DEFAULTS } from '../../src/config/schema.js';
import { secs } from './format.js';

/** Space is measured on base + 8 layers (the figure). */
export const STACK_TARGET = 8;
/**
 * The deepest stack the default policy allows while mounted: a stop that
 * leaves more than compact-after images compacts, so a tree starts on at
 * most compact-after images and its session adds one layer.
 */
export const DEFAULT_DEPTH = BUILTIN_DEFAULTS.compactAfter;
export const READ_DEPTHS = [...new Set([1, 2, DEFAULT_DEPTH, 4, 8, 16])].sort((a, b) => a - b);
export const MAX_LAYERS = 16;
const TREE = 'bench';

export interface ComboOptions {
  runs: number;
  cold: boolean;
  work: string;
  probe: string;
  /** Copy the merged tree at 8 layers here (once per corpus) for the plain-directory reads. */
  plainDir?: string;
  log: (line: string) => void;
}

export interface LayerLog {
  layer: number;
  delta: DeltaInfo;
  /** 'commit' when timed on its own, 'restart' when restart's on-stop commit made it. */
  by: 'commit' | 'restart';
  ms: number;
  pendingFiles: number;
  layerBytes: number;
}

export interface CommitSample {
  layer: number;
  wallMs: number;
  selfMs: number;
  layerBytes: number;
  pendingFiles: number;
  rssTreeKb?: number;
  rssNodeKb?: number;
  fullMs: number;
  fullBytes: number;
}

export interface CompactSample {
  wallMs: number;
  selfMs: number;
  bytesBefore: number;
  bytesAfter: number;
  rssTreeKb?: number;
  rssNodeKb?: number;
}

export interface DepthReads {
  layers: number;
  images: number;
  reads: ReadResult;
}

export interface ComboResult {
  compressor: string;
  init: { wallMs: number; imageBytes: number };
  commits: CommitSample[];
  commit: { wall: Summary; self: Summary; layerBytes: Summary; pendingFiles: Summary };
  fullPack: { wall: Summary; bytes: Summary };
  week?: {
    delta: DeltaInfo;
    wallMs: number;
    selfMs: number;
    pendingFiles: number;
    layerBytes: number;
  };
  /** Timed around each timed commit: stop with nothing to commit, then start (images mounted). */
  startStop: { images: number[]; start: Summary; stop: Summary };
  reads: DepthReads[];
  single: ReadResult;
  bytes: { stack8: number; stack8Images: number; fresh8: number; compacted: Summary };
  compacts: CompactSample[];
  compact: { wall: Summary; self: Summary };
  rss: {
    commitTreeKb: Summary;
    commitNodeKb: Summary;
    compactTreeKb: Summary;
    compactNodeKb: Summary;
  };
  layers: LayerLog[];
  wallMs: number;
}

/** The layers whose commits are timed: the `runs` ones that end at STACK_TARGET. */
export function measuredLayers(runs: number): Set<number> {
  const out = new Set<number>();
  for (let l = Math.max(1, STACK_TARGET - runs + 1); l <= STACK_TARGET; l++) out.add(l);
  for (let l = STACK_TARGET + 1; l <= Math.min(runs, MAX_LAYERS); l++) out.add(l);
  return out;
}

const defined = (xs: (number | undefined)[]): number[] =>
  xs.filter((x): x is number => x !== undefined);

async function currentImages(store: string): Promise<{ bytes: number; images: number }> {
  const m = await readManifest(store);
  if (!m) throw new BenchError(`no manifest in ${store}`);
  const g = currentGeneration(m);
  return {
    bytes: g.images.reduce((n, f) => n + (m.images[f]?.bytes ?? 0), 0),
    images: g.images.length,
  };
}

export async function runCombo(
  corpus: Corpus,
  spec: CompressorSpec,
  index: number,
  o: ComboOptions,
): Promise<ComboResult> {
  const t0 = performance.now();
  const dir = join(o.work, `c${index}-${spec.compression}`);
  const scratch = join(dir, 'scratch');
  const mnt = join(dir, 'tree');
  const store = join(dir, 'store');
  const cfg = join(dir, 'squashtree.toml');
  await fsp.mkdir(scratch, { recursive: true });
  await fsp.mkdir(mnt);
  await fsp.writeFile(cfg, defaultsToml(spec));
  const sq = new Squashtree(cfg, join(dir, 'state'), o.probe, scratch);
  const say = (s: string): void => {
    const at = ((performance.now() - t0) / 1000).toFixed(1).padStart(6);
    o.log(`  ${at} s [${corpus.name} / ${spec.label}] ${s}`);
  };

  say('init');
  const init = await sq.init(TREE, corpus.baseDir, store);
  // The images are made; from here on the tree is mounted on its own dir, so the base stays readable.
  await fsp.writeFile(cfg, defaultsToml(spec) + treeToml(TREE, mnt, store));

  const measured = measuredLayers(o.runs);
  const deltas = corpus.deltas();
  const layers: LayerLog[] = [];
  const commits: CommitSample[] = [];
  const reads: DepthReads[] = [];
  const starts: { ms: number; images: number }[] = [];
  const stops: number[] = [];
  let week: ComboResult['week'];
  let stack8 = { bytes: 0, images: 0 };
  let fresh8 = 0;
  const store8 = join(dir, 'store-at-8');

  const expectImages = (got: number, want: number): void => {
    if (got !== want) throw new BenchError(`expected ${want} images, start reports ${got}`);
  };
  expectImages((await sq.start()).result.layers, 1);
  for (let l = 0; ; l++) {
    // Mounted here: base + l layers, nothing pending.
    if (READ_DEPTHS.includes(l)) {
      const r0 = performance.now();
      reads.push({ layers: l, images: l + 1, reads: await measureReads(mnt, o.runs, o.cold) });
      say(
        `reads through base + ${l} layer${l === 1 ? '' : 's'} (${l + 1} images): ${secs(performance.now() - r0)}`,
      );
    }
    if (l === MAX_LAYERS) {
      if (deltas.week) {
        const delta = await deltas.week(mnt);
        const c = await sq.commit();
        week = {
          delta,
          wallMs: c.ms,
          selfMs: c.result.durationMs,
          pendingFiles: c.result.pendingFiles,
          layerBytes: c.result.layerBytes,
        };
      }
      await sq.stop();
      break;
    }
    const layer = l + 1;
    const d0 = performance.now();
    const delta = await deltas.apply(layer, mnt);
    delta.ms = performance.now() - d0;
    if (!measured.has(layer)) {
      // What a portage postsync hook does: restart, whose stop commits the sync.
      const r = await sq.restart();
      const c = r.result.stop.commit;
      if (!c?.committed) throw new BenchError(`layer ${layer}: restart committed nothing`);
      expectImages(r.result.start.layers, layer + 1);
      layers.push({
        layer,
        delta,
        by: 'restart',
        ms: r.ms,
        pendingFiles: c.pendingFiles,
        layerBytes: c.layerBytes,
      });
      continue;
    }
    const c = await sq.commit();
    if (!c.result.committed) throw new BenchError(`layer ${layer}: nothing committed`);
    const full = join(dir, 'full.sqfs');
    const f = await run('mksquashfs', [
      mnt,
      full,
      '-noappend',
      '-comp',
      spec.compression,
      ...spec.args,
    ]);
    const fullBytes = (await fsp.stat(full)).size;
    await fsp.rm(full);
    if (layer === STACK_TARGET) {
      fresh8 = fullBytes;
      if (o.plainDir !== undefined) {
        say('copying the merged tree to a plain directory');
        await run('cp', ['-a', `${mnt}/.`, o.plainDir]);
      }
    }
    commits.push(commitSample(layer, c, f.ms, fullBytes));
    say(
      `layer ${layer}: commit ${(c.ms / 1000).toFixed(2)} s (${c.result.pendingFiles} changes), full mksquashfs ${(f.ms / 1000).toFixed(2)} s`,
    );
    // The timed stop has nothing to commit (the commit just took it all), and so has the start.
    const st = await sq.stop();
    if (st.result.commit?.committed) throw new BenchError('stop committed again after a commit');
    stops.push(st.ms);
    layers.push({
      layer,
      delta,
      by: 'commit',
      ms: c.ms,
      pendingFiles: c.result.pendingFiles,
      layerBytes: c.result.layerBytes,
    });
    if (layer === STACK_TARGET) {
      stack8 = await currentImages(store);
      await run('cp', ['-a', store, store8]);
    }
    const started = await sq.start();
    expectImages(started.result.layers, layer + 1);
    starts.push({ ms: started.ms, images: layer + 1 });
  }

  const compacts: CompactSample[] = [];
  let single: ReadResult | undefined;
  for (let r = 0; r < o.runs; r++) {
    say(`compact ${r + 1}/${o.runs}`);
    const rdir = join(dir, `compact-${r}`);
    const rstore = join(rdir, 'store');
    const rtree = join(rdir, 'tree');
    const rcfg = join(rdir, 'squashtree.toml');
    await fsp.mkdir(rtree, { recursive: true });
    await run('cp', ['-a', store8, rstore]);
    await fsp.writeFile(rcfg, defaultsToml(spec) + treeToml(TREE, rtree, rstore));
    const sqc = new Squashtree(rcfg, join(rdir, 'state'), o.probe, scratch);
    const c = await sqc.compact();
    if (!c.result.compacted) throw new BenchError(`compact did nothing: ${c.result.reason ?? ''}`);
    const after = await currentImages(rstore);
    compacts.push({
      wallMs: c.ms,
      selfMs: c.result.durationMs,
      bytesBefore: c.result.bytesBefore,
      bytesAfter: after.bytes,
      ...(c.rssTreeKb !== undefined ? { rssTreeKb: c.rssTreeKb } : {}),
      ...(c.rssNodeKb !== undefined ? { rssNodeKb: c.rssNodeKb } : {}),
    });
    if (r === o.runs - 1) {
      const s = await sqc.start();
      if (s.result.layers !== 1) throw new BenchError('the compacted tree is not one image');
      const r0 = performance.now();
      single = await measureReads(rtree, o.runs, o.cold);
      say(`reads through the compacted single image: ${secs(performance.now() - r0)}`);
      await sqc.stop();
    } else {
      await fsp.rm(rdir, { recursive: true, force: true });
    }
  }
  if (!single) throw new BenchError('no single-image reads');

  const sum = (f: (c: CommitSample) => number | undefined): Summary =>
    summarize(defined(commits.map(f)));
  const sumC = (f: (c: CompactSample) => number | undefined): Summary =>
    summarize(defined(compacts.map(f)));
  return {
    compressor: spec.label,
    init: { wallMs: init.ms, imageBytes: init.result.imageBytes },
    commits,
    commit: {
      wall: sum((c) => c.wallMs),
      self: sum((c) => c.selfMs),
      layerBytes: sum((c) => c.layerBytes),
      pendingFiles: sum((c) => c.pendingFiles),
    },
    fullPack: { wall: sum((c) => c.fullMs), bytes: sum((c) => c.fullBytes) },
    ...(week ? { week } : {}),
    startStop: {
      images: starts.map((x) => x.images),
      start: summarize(starts.map((x) => x.ms)),
      stop: summarize(stops),
    },
    reads,
    single,
    bytes: {
      stack8: stack8.bytes,
      stack8Images: stack8.images,
      fresh8,
      compacted: sumC((c) => c.bytesAfter),
    },
    compacts,
    compact: { wall: sumC((c) => c.wallMs), self: sumC((c) => c.selfMs) },
    rss: {
      commitTreeKb: sum((c) => c.rssTreeKb),
      commitNodeKb: sum((c) => c.rssNodeKb),
      compactTreeKb: sumC((c) => c.rssTreeKb),
      compactNodeKb: sumC((c) => c.rssNodeKb),
    },
    layers,
    wallMs: performance.now() - t0,
  };
}

function commitSample(
  layer: number,
  c: SqRun & { result: { durationMs: number; layerBytes: number; pendingFiles: number } },
  fullMs: number,
  fullBytes: number,
): CommitSample {
  return {
    layer,
    wallMs: c.ms,
    selfMs: c.result.durationMs,
    layerBytes: c.result.layerBytes,
    pendingFiles: c.result.pendingFiles,
    ...(c.rssTreeKb !== undefined ? { rssTreeKb: c.rssTreeKb } : {}),
    ...(c.rssNodeKb !== undefined ? { rssNodeKb: c.rssNodeKb } : {}),
    fullMs,
    fullBytes,
  };
}
