/**
 * Directories that hold runtime state, uppers and images must belong to us
 * and be writable by nobody else; otherwise a local user could pre-create a
 * path (a symlink, a 0777 dir) and swap in content that root then mounts.
 * Paths are created without following symlinks and checked after creation.
 */
import { promises as fsp } from 'node:fs';
import { dirname, resolve, sep } from 'node:path';
import { SquashtreeError, errnoCode } from '../errors.js';

const myUid = (): number => process.geteuid?.() ?? 0;

function unsafe(path: string, why: string, hint: string): SquashtreeError {
  return new SquashtreeError('E_UNSAFE_PATH', `refusing to use ${path}: ${why}`, { path, hint });
}

/** Every ancestor must be owned by root or us and not writable by others (unless sticky, like /tmp). */
async function checkAncestors(path: string): Promise<void> {
  const real = await fsp.realpath(path);
  const parts = real.split(sep).filter(Boolean);
  let cur = '/';
  for (let i = 0; i <= parts.length; i++) {
    const st = await fsp.stat(cur);
    const owned = st.uid === 0 || st.uid === myUid();
    const othersWrite = (st.mode & 0o022) !== 0 && (st.mode & 0o1000) === 0;
    if (!owned || othersWrite) {
      throw unsafe(
        path,
        `its ancestor ${cur} is ${owned ? 'writable by other users' : `owned by uid ${st.uid}`}`,
        'choose a location whose parent directories only root can write',
      );
    }
    if (i < parts.length) cur = resolve(cur, parts[i] ?? '');
  }
}

export interface SecureDirOptions {
  /** Mode for a new directory and the most it may allow when it exists (0700 or 0755). */
  mode: number;
  /** Create missing parents (each one checked the same way). */
  parents?: boolean;
}

/**
 * Make sure `path` is a real directory owned by us with no group/other write
 * (and, for mode 0700, no group/other access at all). Creates it if missing.
 */
export async function ensureSecureDir(path: string, opts: SecureDirOptions): Promise<void> {
  const abs = resolve(path);
  const parent = dirname(abs);
  try {
    await fsp.lstat(parent);
  } catch (e) {
    if (errnoCode(e) !== 'ENOENT' || !opts.parents) throw e;
    await ensureSecureDir(parent, { mode: 0o755, parents: true });
  }
  await checkAncestors(parent);
  try {
    await fsp.mkdir(abs, { mode: opts.mode });
  } catch (e) {
    if (errnoCode(e) !== 'EEXIST') throw e;
  }
  await checkOwnedDir(abs, opts.mode);
}

/** Check an existing directory without creating anything. */
export async function checkOwnedDir(abs: string, mode: number): Promise<void> {
  const st = await fsp.lstat(abs);
  if (st.isSymbolicLink()) {
    throw unsafe(abs, 'it is a symbolic link', `remove ${abs}; squashtree creates it itself`);
  }
  if (!st.isDirectory()) throw unsafe(abs, 'it is not a directory', `remove or move ${abs}`);
  if (st.uid !== myUid()) {
    throw unsafe(
      abs,
      `it is owned by uid ${st.uid}, not by us`,
      `remove ${abs}; squashtree creates it itself`,
    );
  }
  const forbidden = mode === 0o700 ? 0o077 : 0o022;
  if ((st.mode & forbidden) !== 0) {
    throw unsafe(
      abs,
      `its mode is ${(st.mode & 0o7777).toString(8).padStart(4, '0')}`,
      `remove ${abs} (squashtree recreates it) or run chmod ${mode.toString(8)} ${abs} if you trust its content`,
    );
  }
}

/** A file inside a secure dir: refuse symlinks and foreign owners. Missing is fine. */
export async function checkOwnedFile(abs: string): Promise<boolean> {
  let st;
  try {
    st = await fsp.lstat(abs);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return false;
    throw e;
  }
  if (st.isSymbolicLink()) throw unsafe(abs, 'it is a symbolic link', `remove ${abs}`);
  if (!st.isFile()) throw unsafe(abs, 'it is not a regular file', `remove ${abs}`);
  if (st.uid !== myUid()) throw unsafe(abs, `it is owned by uid ${st.uid}`, `remove ${abs}`);
  if ((st.mode & 0o022) !== 0) throw unsafe(abs, 'it is writable by other users', `remove ${abs}`);
  return true;
}
