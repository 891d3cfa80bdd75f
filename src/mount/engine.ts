/**
 * Mount engines. The same layered on-disk format (SquashFS images, overlay
 * whiteouts) can be mounted three ways:
 *
 *   kernel    loop + squashfs + overlay (root only; the fastest)
 *   fuse      squashfuse per image, fuse-overlayfs for the stack and the upper
 *             (works without root where /dev/fuse is usable)
 *   readonly  the image stack without an upper: read-only, nothing to commit
 *
 * The lifecycle modules call mount(), umount() and friends in mount.ts
 * without naming an engine: the engine of the tree being worked on is
 * ambient, set once per operation with withMounter(), so that commit,
 * compaction and verification need not thread it through every call.
 * Which programs do the mounting is the "mounter": the readonly engine uses
 * the kernel's when it can and the FUSE programs otherwise.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { constants as C, promises as fsp } from 'node:fs';
import { delimiter, join } from 'node:path';

import { ENGINES, type EngineName, type EngineSetting } from '../config/schema.js';

export { ENGINES, type EngineName, type EngineSetting };

export type MounterKind = 'kernel' | 'fuse';

export interface Mounter {
  kind: MounterKind;
  /** Running as root: tmpfs, bind mounts, loop devices, allow_other. */
  privileged: boolean;
}

export const isRoot = (): boolean => process.geteuid?.() === 0;

let userMode = false;

/** User mode (--user): trees are mounted with FUSE even by root, as the user would. */
export function preferUserEngines(): void {
  userMode = true;
}

const store = new AsyncLocalStorage<Mounter>();
const unset = (): Mounter => ({ kind: 'kernel', privileged: isRoot() });

/**
 * Run fn with m as its operation's mounter. The one currentMounter() gives
 * when none is set is not set, unless another is set around this call: once
 * used, AsyncLocalStorage (Node 20) hooks every promise of the process,
 * which cost a one-day commit of the 203k-file tree about 0.1 s of 1.0.
 */
export function withMounter<T>(m: Mounter, fn: () => Promise<T>): Promise<T> {
  const d = unset();
  const same = m.kind === d.kind && m.privileged === d.privileged;
  return same && store.getStore() === undefined ? fn() : store.run(m, fn);
}

/** The mounter of the current operation; the kernel's when none was set (as before engines). */
export function currentMounter(): Mounter {
  return store.getStore() ?? unset();
}

/** Filesystem types a mounter's image and overlay mounts show in mountinfo. */
export const FSTYPES: Record<MounterKind, { image: string; overlay: string }> = {
  kernel: { image: 'squashfs', overlay: 'overlay' },
  fuse: { image: 'fuse.squashfuse', overlay: 'fuse.fuse-overlayfs' },
};

export function isImageFstype(t: string): boolean {
  return t === FSTYPES.kernel.image || t === FSTYPES.fuse.image;
}

export function isOverlayFstype(t: string): boolean {
  return t === FSTYPES.kernel.overlay || t === FSTYPES.fuse.overlay;
}

/** The first executable `name` on PATH (and the sbin dirs root's PATH may lack), or undefined. */
export async function which(name: string): Promise<string | undefined> {
  const dirs = [
    ...(process.env.PATH ?? '').split(delimiter),
    '/usr/local/sbin',
    '/usr/sbin',
    '/sbin',
    '/usr/bin',
    '/bin',
  ];
  for (const d of dirs) {
    if (!d) continue;
    try {
      await fsp.access(join(d, name), C.X_OK);
      return join(d, name);
    } catch {
      // not here
    }
  }
  return undefined;
}

async function kernelHas(fs: string): Promise<boolean> {
  try {
    const text = await fsp.readFile('/proc/filesystems', 'utf8');
    return text.split('\n').some((l) => l.split('\t').pop()?.trim() === fs);
  } catch {
    return false;
  }
}

/** Why the kernel's mounter cannot be used here, or undefined when it can. */
export async function kernelUnusable(): Promise<string | undefined> {
  if (!isRoot()) return 'needs root (loop devices and kernel mounts)';
  if (userMode) return 'user mode (--user) mounts with FUSE';
  const missing: string[] = [];
  for (const fs of ['squashfs', 'overlay']) {
    // A module not loaded yet counts as present if modprobe can load it; mount loads it itself.
    if (!(await kernelHas(fs)) && !(await moduleExists(fs))) missing.push(fs);
  }
  if (missing.length) return `the kernel has no ${missing.join(' and ')} filesystem`;
  try {
    await fsp.access('/dev/loop-control');
  } catch {
    return 'no loop devices (/dev/loop-control is missing)';
  }
  return undefined;
}

async function moduleExists(name: string): Promise<boolean> {
  try {
    const release = (await fsp.readFile('/proc/sys/kernel/osrelease', 'utf8')).trim();
    const dep = await fsp.readFile(`/lib/modules/${release}/modules.dep`, 'utf8');
    return new RegExp(`/${name}\\.ko(\\.[a-z]+)?:`).test(dep);
  } catch {
    return false;
  }
}

/** Why the FUSE programs cannot be used here (for images only, or for the overlay too). */
export async function fuseUnusable(withOverlay: boolean): Promise<string | undefined> {
  const programs = ['squashfuse', ...(withOverlay ? ['fuse-overlayfs'] : [])];
  if (!isRoot()) programs.push('fusermount3');
  const missing: string[] = [];
  for (const p of programs) if (!(await which(p))) missing.push(p);
  if (missing.length)
    return `${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} not installed`;
  try {
    await fsp.access('/dev/fuse', C.R_OK | C.W_OK);
  } catch {
    return isRoot()
      ? 'no /dev/fuse (modprobe fuse)'
      : '/dev/fuse is not readable and writable by this user';
  }
  return undefined;
}

export interface EngineChoice {
  engine: EngineName;
  mounter: Mounter;
  /** Why this engine: chosen in the config, or the first that works. */
  reason: string;
  /** Why each engine that was passed over was not used. */
  rejected: Partial<Record<EngineName, string>>;
}

async function unusable(e: EngineName): Promise<string | undefined> {
  if (e === 'kernel') return kernelUnusable();
  if (e === 'fuse') return fuseUnusable(true);
  // Read-only needs only images: the kernel's squashfs, or squashfuse.
  if (!(await kernelUnusable())) return undefined;
  return fuseUnusable(false);
}

async function readonlyMounter(): Promise<Mounter> {
  return { kind: (await kernelUnusable()) ? 'fuse' : 'kernel', privileged: isRoot() };
}

export async function mounterFor(engine: EngineName): Promise<Mounter> {
  if (engine === 'readonly') return readonlyMounter();
  return { kind: engine, privileged: isRoot() };
}

/**
 * Pick the engine for a tree: the configured one (checked, so that a
 * failure names its cause), or with "auto" the first of kernel, fuse,
 * readonly that works on this machine.
 */
export async function chooseEngine(setting: EngineSetting): Promise<EngineChoice> {
  const rejected: Partial<Record<EngineName, string>> = {};
  if (setting !== 'auto') {
    const why = await unusable(setting);
    if (why) rejected[setting] = why;
    return {
      engine: setting,
      mounter: await mounterFor(setting),
      reason: 'set in the config',
      rejected,
    };
  }
  for (const e of ENGINES) {
    const why = await unusable(e);
    if (!why) {
      return {
        engine: e,
        mounter: await mounterFor(e),
        reason: e === 'kernel' ? 'auto: the kernel can mount it' : `auto: the first that works`,
        rejected,
      };
    }
    rejected[e] = why;
  }
  return {
    engine: 'kernel',
    mounter: await mounterFor('kernel'),
    reason: 'auto: none works',
    rejected,
  };
}
