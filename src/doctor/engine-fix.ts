/**
 * What would make each engine work here, for doctor's fix lines and for the
 * error of a command that no engine can serve: only the packages that are
 * missing, or the device mode when the programs are all there.
 */
import { constants as C, promises as fsp } from 'node:fs';
import { SquashtreeError } from '../errors.js';
import {
  ENGINES,
  isRoot,
  kernelUnusable,
  which,
  type EngineChoice,
  type EngineName,
} from '../mount/engine.js';

/** Packages that hold each FUSE program (Debian, Gentoo). */
const FUSE_PACKAGES: Record<string, [string, string]> = {
  squashfuse: ['squashfuse', 'sys-fs/squashfuse'],
  'fuse-overlayfs': ['fuse-overlayfs', 'sys-fs/fuse-overlayfs'],
  fusermount3: ['fuse3', 'sys-fs/fuse'],
};

async function missingFusePrograms(withOverlay: boolean): Promise<string[]> {
  const programs = ['squashfuse', ...(withOverlay ? ['fuse-overlayfs'] : [])];
  if (!isRoot()) programs.push('fusermount3');
  const missing: string[] = [];
  for (const p of programs) if (!(await which(p))) missing.push(p);
  return missing;
}

/** What makes the FUSE programs usable here. */
export async function fuseFix(withOverlay: boolean): Promise<string> {
  const missing = await missingFusePrograms(withOverlay);
  if (missing.length) {
    const pkgs = missing.map((p) => FUSE_PACKAGES[p] ?? [p, p]);
    return `install ${missing.join(', ')}: apt-get install ${pkgs.map((p) => p[0]).join(' ')} (Gentoo: emerge ${pkgs.map((p) => p[1]).join(' ')})`;
  }
  try {
    await fsp.access('/dev/fuse', C.F_OK);
  } catch {
    return 'load the fuse module as root: modprobe fuse';
  }
  return isRoot()
    ? 'check /dev/fuse (a character device 10:229 that root can open)'
    : 'as root, let users open /dev/fuse: chmod 0666 /dev/fuse (Debian\'s udev rule sets that mode at boot; elsewhere add a udev rule KERNEL=="fuse", MODE="0666")';
}

/** What makes the kernel engine usable here. */
export async function kernelFix(): Promise<string> {
  const why = (await kernelUnusable()) ?? '';
  if (!isRoot()) return 'run squashtree as root (sudo squashtree ...) for the kernel engine';
  if (why.includes('--user')) return 'leave out --user for the kernel engine';
  if (why.includes('loop')) return 'load the loop module: modprobe loop (CONFIG_BLK_DEV_LOOP)';
  return 'load the modules (modprobe squashfs overlay), or build the kernel with CONFIG_SQUASHFS and CONFIG_OVERLAY_FS';
}

export async function engineFix(e: EngineName): Promise<string> {
  if (e === 'kernel') return kernelFix();
  if (e === 'fuse') return fuseFix(true);
  return (await kernelUnusable()) === undefined ? 'none needed' : fuseFix(false);
}

/**
 * The engine chosen cannot work here: name why, for every engine "auto"
 * tried, and what would fix each (said once where two share a fix).
 */
export async function noEngineError(
  what: string,
  setting: string,
  choice: EngineChoice,
): Promise<SquashtreeError> {
  const tried = setting === 'auto' ? ENGINES : [choice.engine];
  const whys = tried.map((e) => `${e}: ${choice.rejected[e] ?? 'works'}`);
  const fixes: string[] = [];
  for (const e of tried) {
    const fix = await engineFix(e);
    if (!fixes.some((f) => f.endsWith(fix))) fixes.push(`${e}: ${fix}`);
  }
  return new SquashtreeError(
    'E_ENGINE',
    setting === 'auto'
      ? `no engine can mount ${what} for this user on this machine (${whys.join('; ')})`
      : `${what} cannot be mounted with the ${choice.engine} engine here: ${choice.rejected[choice.engine] ?? ''}`,
    { hint: `${fixes.join('; or ')} (squashtree doctor checks each)` },
  );
}
