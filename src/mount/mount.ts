/**
 * Mounting and unmounting with util-linux. nosuid and nodev go on every
 * mount we make (flags are not inherited through an overlay), and the
 * overlay's behaviour is pinned with redirect_dir, index and metacopy off so
 * it does not depend on how the kernel was built.
 */
import { SquashtreeError } from '../errors.js';
import { run } from '../exec/run.js';
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

export async function mountSquashfs(
  image: string,
  target: string,
  extra: readonly string[] = [],
): Promise<void> {
  await run(
    'mount',
    ['-t', 'squashfs', '-o', ['loop', 'ro', ...SAFE_FLAGS, ...extra].join(','), image, target],
    {
      hint: 'check that the kernel supports squashfs (squashtree doctor) and that the image is intact (squashtree verify)',
    },
  );
}

export async function mountTmpfs(target: string, size: string): Promise<void> {
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

export async function mountOverlay(target: string, spec: OverlaySpec): Promise<void> {
  await run('mount', ['-t', 'overlay', '-o', overlayOptions(spec), 'squashtree', target], {
    hint: 'check that the kernel supports overlay (squashtree doctor)',
  });
}

export class BusyError extends SquashtreeError {}

/** Unmount; a busy target becomes E_BUSY so callers can name the holders. */
export async function unmount(target: string, opts: { lazy?: boolean } = {}): Promise<void> {
  try {
    await run('umount', opts.lazy ? ['-l', target] : [target]);
  } catch (e) {
    if (e instanceof SquashtreeError && /busy/i.test(e.stderr ?? '')) {
      throw new BusyError('E_BUSY', `${target} is busy`, {
        command: e.command,
        stderr: e.stderr,
        path: target,
      });
    }
    throw e;
  }
}

/**
 * Unmount several targets in order (deepest first is the caller's job) with
 * one umount process: a stop unmounts a dozen image mounts, and a process
 * each was most of its time. If that fails, one at a time names the culprit.
 */
export async function unmountAll(targets: readonly string[]): Promise<void> {
  if (targets.length === 0) return;
  if (targets.length > 1) {
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
