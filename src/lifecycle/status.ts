/** status: what a tree holds and what is pending, read without taking the lock. */
import { promises as fsp } from 'node:fs';
import { currentGeneration } from '../store/manifest.js';
import { storeBytes } from '../store/store.js';
import type { TreeContext } from './context.js';
import { observe, type TreeState } from './observe.js';
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

export async function treeStatus(ctx: TreeContext): Promise<TreeStatus> {
  const { tree } = ctx;
  const obs = await observe(ctx);
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
    storeBytes: await storeBytes(tree.store),
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
    engine: {
      name: ctx.engine?.engine ?? 'kernel',
      setting: tree.engine,
      reason: ctx.engine?.reason ?? 'default',
      rejected: { ...(ctx.engine?.rejected ?? {}) },
    },
  };
}
