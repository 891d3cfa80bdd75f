/**
 * Mounting and unmounting, with util-linux for the kernel's filesystems and
 * squashfuse, fuse-overlayfs and fusermount3 for the FUSE engine (which one
 * is the current operation's mounter, see engine.ts). nosuid and nodev go on
 * every mount we make (flags are not inherited through an overlay), and the
 * kernel overlay's behaviour is pinned with redirect_dir, index and metacopy
 * off so it does not depend on how the kernel was built.
 */
import { SquashtreeError } from '../errors.js';
import { run } from '../exec/run.js';
import { currentMounter } from './engine.js';
import { readMounts } from './mountinfo.js';

export const SAFE_FLAGS = ['nosuid', 'nodev'];
export const OVERLAY_FLAGS = ['redirect_dir=off', 'index=off', 'metacopy=off'];
/** The legacy mount(2) data string is one page; longer lowerdir lists fail with a misleading error. */
const MOUNT_DATA_MAX = 4000;

function checkOptionPath(p: string): void {
  if (/[,:\\\n]/.test(p)) {
    throw new SquashtreeError(
      'E_UNSAFE_PATH',
      `path ${JSON.stringify(p)} cannot be passed in mount options`,
      {
        path: p,
        hint: 'use state, store and upper paths without commas, colons or backslashes',
      },
    );
  }
}

/** Mount options FUSE (and fusermount3 for a user) accepts besides ro/nosuid/nodev. */
const FUSE_PASSED = new Set(['noexec', 'exec', 'noatime']);

/**
 * Options every FUSE mount gets. As root the tree is for every user
 * (allow_other; default_permissions makes the kernel check modes as it does
 * for its own filesystems); a user's FUSE mount is for that user alone.
 */
function fuseOptions(extra: readonly string[]): string[] {
  const m = currentMounter();
  return [
    ...SAFE_FLAGS,
    ...(m.privileged ? ['allow_other', 'default_permissions'] : []),
    ...extra.filter((o) => FUSE_PASSED.has(o)),
  ];
}

export async function mountSquashfs(
  image: string,
  target: string,
  extra: readonly string[] = [],
): Promise<void> {
  if (currentMounter().kind === 'fuse') {
    checkOptionPath(image);
    await run('squashfuse', ['-o', ['ro', ...fuseOptions(extra)].join(','), image, target], {
      hint: 'check that squashfuse is installed and /dev/fuse usable (squashtree doctor), and that the image is intact (squashtree verify)',
    });
    return;
  }
  await run(
    'mount',
    ['-t', 'squashfs', '-o', ['loop', 'ro', ...SAFE_FLAGS, ...extra].join(','), image, target],
    {
      hint: 'check that the kernel supports squashfs (squashtree doctor) and that the image is intact (squashtree verify)',
    },
  );
}

/** Whether this operation may mount a tmpfs (root may, whatever the engine). */
export function canMountTmpfs(): boolean {
  return currentMounter().privileged;
}

export async function mountTmpfs(target: string, size: string): Promise<void> {
  if (!canMountTmpfs()) {
    throw new SquashtreeError('E_ENGINE', `cannot mount a tmpfs on ${target} without root`, {
      path: target,
      hint: 'this is a bug: without root squashtree keeps scratch data in plain directories',
    });
  }
  await run('mount', [
    '-t',
    'tmpfs',
    '-o',
    ['mode=0700', `size=${size}`, ...SAFE_FLAGS].join(','),
    'squashtree-upper',
    target,
  ]);
}

export interface OverlaySpec {
  /** Top layer first, as overlayfs wants it. */
  lower: readonly string[];
  upper?: string;
  work?: string;
  extra?: readonly string[];
}

export function overlayOptions(spec: OverlaySpec): string {
  for (const p of [...spec.lower, spec.upper ?? '', spec.work ?? '']) if (p) checkOptionPath(p);
  const parts = [`lowerdir=${spec.lower.join(':')}`];
  if (spec.upper && spec.work) parts.push(`upperdir=${spec.upper}`, `workdir=${spec.work}`);
  else parts.push('ro');
  parts.push(...OVERLAY_FLAGS, ...SAFE_FLAGS, ...(spec.extra ?? []));
  const data = parts.join(',');
  if (data.length > MOUNT_DATA_MAX) {
    throw new SquashtreeError(
      'E_MOUNT',
      `the overlay's mount options are ${data.length} bytes, over the kernel's page limit`,
      {
        hint: 'too many layers: run squashtree compact, or lower compact-after',
      },
    );
  }
  return data;
}

/** fuse-overlayfs takes the kernel's lowerdir/upperdir/workdir syntax, without the kernel's switches. */
export function fuseOverlayOptions(spec: OverlaySpec): string {
  for (const p of [...spec.lower, spec.upper ?? '', spec.work ?? '']) if (p) checkOptionPath(p);
  const parts = [`lowerdir=${spec.lower.join(':')}`];
  if (spec.upper && spec.work) parts.push(`upperdir=${spec.upper}`, `workdir=${spec.work}`);
  // noacl: SquashFS cannot hold POSIX ACLs (system.* xattrs) anyway, and without the ACL lookup on
  // every file a full read of the GURU corpus took half the time (8.2 s -> 4.0 s, fresh mounts).
  parts.push('noacl', ...fuseOptions(spec.extra ?? []));
  return parts.join(',');
}

export async function mountOverlay(target: string, spec: OverlaySpec): Promise<void> {
  if (currentMounter().kind === 'fuse') {
    await run('fuse-overlayfs', ['-o', fuseOverlayOptions(spec), target], {
      hint: 'check that fuse-overlayfs is installed and /dev/fuse usable (squashtree doctor)',
    });
    return;
  }
  await run('mount', ['-t', 'overlay', '-o', overlayOptions(spec), 'squashtree', target], {
    hint: 'check that the kernel supports overlay (squashtree doctor)',
  });
}

/**
 * A bind mount of `from` on `to`, nosuid,nodev as every mount of a tree
 * (root only). The flags need a remount; if that fails the bind comes off.
 */
export async function mountBind(
  from: string,
  to: string,
  opts: { readonly?: boolean } = {},
): Promise<void> {
  await run('mount', ['--bind', from, to]);
  try {
    await run('mount', ['-o', `remount,bind,${opts.readonly ? 'ro,' : ''}nosuid,nodev`, to]);
  } catch (e) {
    await run('umount', [to]).catch(() => undefined);
    throw e;
  }
}

/** A read-only bind mount of `from` on `to` (the kernel readonly engine's one image). */
export async function mountBindReadonly(from: string, to: string): Promise<void> {
  await mountBind(from, to, { readonly: true });
}

export class BusyError extends SquashtreeError {}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function umountOnce(target: string, lazy: boolean): Promise<void> {
  // A user cannot call umount(2); fusermount3 (setuid) unmounts the user's own FUSE mounts.
  if (!currentMounter().privileged)
    await run('fusermount3', ['-u', ...(lazy ? ['-z'] : []), target]);
  else await run('umount', lazy ? ['-l', target] : [target]);
}

/**
 * Unmount; a busy target becomes E_BUSY so callers can name the holders. A
 * FUSE daemon lets go of the mounts below it only once it has exited, a
 * moment after its own unmount: with FUSE a busy target is retried for about
 * two seconds before it counts as busy.
 */
export async function unmount(target: string, opts: { lazy?: boolean } = {}): Promise<void> {
  const fuse = currentMounter().kind === 'fuse' || !currentMounter().privileged;
  for (let attempt = 1; ; attempt++) {
    try {
      await umountOnce(target, opts.lazy ?? false);
      return;
    } catch (e) {
      if (e instanceof SquashtreeError && /busy/i.test(e.stderr ?? '')) {
        if (fuse && attempt < 12) {
          await sleep(40 * attempt);
          continue;
        }
        throw new BusyError('E_BUSY', `${target} is busy`, {
          command: e.command,
          stderr: e.stderr,
          path: target,
        });
      }
      throw e;
    }
  }
}

/**
 * Unmount several targets in order (deepest first is the caller's job) with
 * one umount process: a stop unmounts a dozen image mounts, and a process
 * each was most of its time. If that fails, one at a time names the culprit.
 */
export async function unmountAll(targets: readonly string[]): Promise<void> {
  if (targets.length === 0) return;
  if (targets.length > 1 && currentMounter().kind === 'kernel' && currentMounter().privileged) {
    try {
      await run('umount', [...targets]);
      return;
    } catch {
      // fall through: find which one, and leave the others unmounted
    }
  }
  const still = new Set((await readMounts()).map((m) => m.mountPoint));
  for (const t of targets) if (still.has(t)) await unmount(t);
}
