/**
 * Directories that must never be a tree, a store or an upper: the system's
 * own roots (a tree on /usr would hide it under an overlay, a store on /etc
 * would be made private, 0700) and anything on a pseudo filesystem (the
 * kernel's, not files: `init --dir /proc` would pack it). The list names
 * roots only: /var/db/pkg, /usr/src/linux and /home/ann/tex are what trees are.
 */
import { promises as fsp } from 'node:fs';
import { SquashtreeError } from '../errors.js';
import { readMounts, type MountEntry } from '../mount/mountinfo.js';

export const SYSTEM_ROOTS: ReadonlySet<string> = new Set([
  '/',
  '/bin',
  '/boot',
  '/dev',
  '/etc',
  '/home',
  '/lib',
  '/lib32',
  '/lib64',
  '/libx32',
  '/media',
  '/mnt',
  '/opt',
  '/proc',
  '/root',
  '/run',
  '/sbin',
  '/sys',
  '/tmp',
  '/usr',
  '/usr/bin',
  '/usr/include',
  '/usr/lib',
  '/usr/lib64',
  '/usr/libexec',
  '/usr/local',
  '/usr/sbin',
  '/usr/share',
  '/var',
  '/var/cache',
  '/var/lib',
  '/var/log',
  '/var/spool',
  '/var/tmp',
]);

/** Filesystems that hold the kernel's state, not files. */
export const PSEUDO_FILESYSTEMS: ReadonlySet<string> = new Set([
  'proc',
  'sysfs',
  'devtmpfs',
  'devpts',
  'cgroup',
  'cgroup2',
  'securityfs',
  'debugfs',
  'tracefs',
  'configfs',
  'pstore',
  'bpf',
  'efivarfs',
  'mqueue',
  'hugetlbfs',
  'fusectl',
  'binfmt_misc',
  'autofs',
  'rpc_pipefs',
  'nsfs',
  'selinuxfs',
  'ramfs',
]);

/** A path with a ".." segment (configured paths are taken as written, never resolved). */
export function hasDotDot(p: string): boolean {
  return p.split('/').some((seg) => seg === '..');
}

/** Where the kernel's pseudo filesystems live on every Linux system. */
const PSEUDO_ROOTS = ['/proc', '/sys', '/dev'];

/** Why `p` (absolute, normalised) may not be a tree's dir, store or upper, or undefined. */
export function systemRootProblem(p: string): string | undefined {
  const clean = p.length > 1 ? p.replace(/\/+$/, '') : p;
  if (SYSTEM_ROOTS.has(clean)) return `${clean} is a system directory`;
  const pseudo = PSEUDO_ROOTS.find((r) => clean.startsWith(`${r}/`));
  return pseudo ? `${clean} lies in ${pseudo}, the kernel's pseudo filesystem` : undefined;
}

/** The mount that holds `path`: the last one mounted at its longest mount-point prefix. */
function mountOf(mounts: readonly MountEntry[], path: string): MountEntry | undefined {
  let best: MountEntry | undefined;
  for (const m of mounts) {
    const inside =
      m.mountPoint === '/' || path === m.mountPoint || path.startsWith(`${m.mountPoint}/`);
    if (inside && (!best || m.mountPoint.length >= best.mountPoint.length)) best = m;
  }
  return best;
}

/**
 * Refuse `dir` as a tree's `what` (dir, store, upper) when it is, or
 * resolves through symlinks to, a system root, or lies on a pseudo
 * filesystem. A path that does not exist yet is checked as written.
 */
export async function checkNotSystemDir(dir: string, what: string): Promise<void> {
  const real = await fsp.realpath(dir).catch(() => dir);
  const refuse = (why: string, hint: string): never => {
    throw new SquashtreeError('E_UNSAFE_PATH', `refusing ${dir} as a tree's ${what}: ${why}`, {
      path: dir,
      hint,
    });
  };
  const root = systemRootProblem(real);
  if (root)
    refuse(
      `${root}${real !== dir ? ` (${dir} leads there)` : ''}`,
      'choose a directory of its own, such as /var/db/repos/gentoo or /usr/src/linux',
    );
  const m = mountOf(await readMounts(), real);
  if (m && PSEUDO_FILESYSTEMS.has(m.fstype))
    refuse(
      `it is on a ${m.fstype} filesystem (mounted on ${m.mountPoint}), which holds the kernel's state, not files`,
      'give the directory that holds the files of the tree',
    );
}
