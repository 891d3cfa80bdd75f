/**
 * Durable file replacement: write a temp file next to the target, fsync it,
 * rename() it over the target, fsync the directory. After a crash either the
 * old or the new file is there, never a torn one.
 */
import { promises as fsp, constants as C } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';

export async function fsyncPath(path: string): Promise<void> {
  const fh = await fsp.open(path, C.O_RDONLY | C.O_NOFOLLOW);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, C.O_RDONLY | C.O_DIRECTORY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export function tempName(target: string, tag = 'tmp'): string {
  return join(
    dirname(target),
    `.${basename(target)}.${tag}-${process.pid}-${randomBytes(4).toString('hex')}`,
  );
}

/** Atomically replace `path` with `data` (mode defaults to 0644). */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  mode = 0o644,
): Promise<void> {
  const tmp = tempName(path);
  const fh = await fsp.open(tmp, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (e) {
    await fh.close();
    await fsp.rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  try {
    await fsp.rename(tmp, path);
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw e;
  }
  await fsyncDir(dirname(path));
}

/**
 * Publish a finished temp file under its final name: fsync file, rename,
 * fsync dir. What is published is an image, so by default only its owner
 * may read it, whatever the umask was when it was written.
 */
export async function publishFile(tmp: string, finalPath: string, mode = 0o600): Promise<void> {
  await fsp.chmod(tmp, mode);
  await fsyncPath(tmp);
  await fsp.rename(tmp, finalPath);
  await fsyncDir(dirname(finalPath));
}
