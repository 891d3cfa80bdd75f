/** status: what a tree holds and what is pending, read without taking the lock. */
import { promises as fsp } from 'node:fs';
import { currentGeneration, type Manifest } from '../store/manifest.js';
import { storeBytes } from '../store/store.js';
import type { TreeContext } from './context.js';
import { observe, type Observation, type TreeState } from './observe.js';
import { canMountTmpfs } from '../mount/mount.js';
import { pendingOf } from './pending.js';

export interface UpperUsage {
  kind: 'tmpfs' | 'dir';
  path: string;
  usedBytes: number;
  limitBytes: number;
  usedInodes: number;
  limitInodes: number;
  /** True when no bytes or no inodes are left: writers get ENOSPC. */
  full: boolean;
}

/**
 * Why the store is bigger than the tree: the current generation's images,
 * the images only older kept generations need (rollback), and images no
 * generation names any more (the next commit's collection deletes them).
 */
export interface StoreUse {
  currentBytes: number;
  rollbackBytes: number;
  /** The kept generations other than the current, newest first. */
  rollbackGenerations: number[];
  unnamedBytes: number;
}

function storeUse(m: Manifest | null, total: number): StoreUse {
  if (!m)
    return { currentBytes: 0, rollbackBytes: 0, rollbackGenerations: [], unnamedBytes: total };
  const size = (f: string): number => m.images[f]?.bytes ?? 0;
  const current = new Set(currentGeneration(m).images);
  const others = m.generations.filter((g) => g.generation !== m.current);
  const rollback = new Set(others.flatMap((g) => g.images).filter((f) => !current.has(f)));
  const sum = (files: Iterable<string>): number => [...files].reduce((n, f) => n + size(f), 0);
  const currentBytes = sum(current);
  const rollbackBytes = sum(rollback);
  return {
    currentBytes,
    rollbackBytes,
    rollbackGenerations: others.map((g) => g.generation).sort((a, b) => b - a),
    unnamedBytes: Math.max(0, total - currentBytes - rollbackBytes),
  };
}

export interface TreeStatus {
  name: string;
  dir: string;
  store: string;
  state: TreeState;
  mounted: boolean;
  generation: number | null;
  mountedGeneration: number | null;
  layers: number;
  imageBytes: number;
  storeBytes: number;
  /** What the store's bytes are for (see storeUse). */
  storeUse: StoreUse;
  files: number | null;
  bytes: number | null;
  pending: { files: number; bytes: number };
  upper: UpperUsage | null;
  lastCommit: { at: string; durationMs: number; generation: number } | null;
  generations: {
    generation: number;
    action: string;
    created: string;
    layers: number;
    bytes: number;
    current: boolean;
  }[];
  compression: string;
  /** Old generations the store keeps for rollback (the config's keep). */
  keep: number;
  /** The engine in use (or that start would use), why, and why not the others. */
  engine: { name: string; setting: string; reason: string; rejected: Record<string, string> };
}

async function upperUsage(ctx: TreeContext, active: boolean): Promise<UpperUsage | null> {
  const { layout } = ctx;
  if (!active) return null;
  try {
    const s = await fsp.statfs(layout.upperIsTmpfs ? layout.upperRoot : layout.upperData);
    const limitBytes = s.blocks * s.bsize;
    const usedBytes = (s.blocks - s.bfree) * s.bsize;
    const limitInodes = s.files;
    const usedInodes = s.files - s.ffree;
    return {
      // Without root the "tmpfs" upper is a plain dir in the runtime dir.
      kind: layout.upperIsTmpfs && canMountTmpfs() ? 'tmpfs' : 'dir',
      path: layout.upperData,
      usedBytes,
      limitBytes,
      usedInodes,
      limitInodes,
      full: s.bavail === 0 || (s.files > 0 && s.ffree === 0),
    };
  } catch {
    return null;
  }
}

export async function treeStatus(ctx: TreeContext, observed?: Observation): Promise<TreeStatus> {
  const { tree } = ctx;
  const obs = observed ?? (await observe(ctx));
  const m = obs.manifest;
  const cur = m ? currentGeneration(m) : null;
  const active = obs.state === 'mounted' || obs.state === 'interrupted';
  let pending = { files: 0, bytes: 0 };
  if (active && m) {
    const p = await pendingOf(ctx, obs, m);
    pending = { files: p.files, bytes: p.bytes };
  }
  const commits = m
    ? m.generations.filter((g) => g.action === 'commit').sort((a, b) => b.generation - a.generation)
    : [];
  const last = commits[0];
  const total = await storeBytes(tree.store);
  const bytesOf = (files: readonly string[]): number =>
    files.reduce((n, f) => n + (m?.images[f]?.bytes ?? 0), 0);
  return {
    name: tree.name,
    dir: tree.dir,
    store: tree.store,
    state: obs.state,
    mounted: obs.state === 'mounted',
    generation: m?.current ?? null,
    mountedGeneration:
      obs.session && active ? (obs.session.committedGeneration ?? obs.session.generation) : null,
    layers: cur?.images.length ?? 0,
    imageBytes: cur ? bytesOf(cur.images) : 0,
    storeBytes: total,
    storeUse: storeUse(m, total),
    files: cur?.files ?? null,
    bytes: cur?.bytes ?? null,
    pending,
    upper: await upperUsage(ctx, active),
    lastCommit: last
      ? { at: last.created, durationMs: last.durationMs, generation: last.generation }
      : null,
    generations: (m?.generations ?? []).map((g) => ({
      generation: g.generation,
      action: g.action,
      created: g.created,
      layers: g.images.length,
      bytes: bytesOf(g.images),
      current: g.generation === m?.current,
    })),
    compression: tree.compression,
    keep: tree.keep,
    engine: {
      name: ctx.engine?.engine ?? 'kernel',
      setting: tree.engine,
      reason: ctx.engine?.reason ?? 'default',
      rejected: { ...(ctx.engine?.rejected ?? {}) },
    },
  };
}
