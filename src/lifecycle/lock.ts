/**
 * One lock per tree, so two invocations never race. It is a flock(2) lock on
 * a file in the state dir, taken by util-linux flock(1) on a descriptor we
 * hand it: the lock belongs to the open file description, so it stays ours
 * after flock(1) exits and ends when we close the file or die. Shell scripts
 * share the same lock with `flock STATE_DIR/NAME/lock ...`, and a child of
 * `squashtree run` that inherits the descriptor (SQUASHTREE_LOCK_FD) holds
 * it already.
 */
import { fstatSync, promises as fsp, constants as C } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { SquashtreeError } from '../errors.js';
import { run } from '../exec/run.js';

export interface TreeLock {
  path: string;
  fd: number;
  release(): Promise<void>;
}

export interface LockOptions {
  /** Seconds to wait for another invocation to finish; 0 fails at once. */
  waitSeconds: number;
}

/** A descriptor inherited from `squashtree run` that already holds this lock. */
function inheritedFd(path: string): number | undefined {
  const v = process.env.SQUASHTREE_LOCK_FD;
  if (!v) return undefined;
  const [fd, lockPath] = v.split(':', 2);
  return lockPath === path && /^\d+$/.test(fd ?? '') ? Number(fd) : undefined;
}

export async function acquireLock(path: string, opts: LockOptions): Promise<TreeLock> {
  const inherited = inheritedFd(path);
  if (inherited !== undefined) {
    try {
      fstatSync(inherited);
      return { path, fd: inherited, release: () => Promise.resolve() };
    } catch {
      // The descriptor did not survive (a program between us closed it): waiting would deadlock.
      throw new SquashtreeError(
        'E_LOCKED',
        `this tree is locked by the squashtree run that started us`,
        {
          path,
          hint: 'squashtree run commits when its command finishes; no commit is needed inside it',
        },
      );
    }
  }
  let fh: FileHandle;
  try {
    fh = await fsp.open(path, C.O_RDWR | C.O_CREAT | C.O_NOFOLLOW, 0o600);
  } catch (e) {
    throw new SquashtreeError('E_UNSAFE_PATH', `cannot open lock file ${path}: ${String(e)}`, {
      path,
      hint: 'the state dir holds something squashtree did not create; remove it',
    });
  }
  const st = await fh.stat();
  if (!st.isFile() || st.uid !== (process.geteuid?.() ?? 0)) {
    await fh.close();
    throw new SquashtreeError(
      'E_UNSAFE_PATH',
      `lock file ${path} is not a regular file owned by us`,
      {
        path,
        hint: `remove ${path}`,
      },
    );
  }
  const args =
    opts.waitSeconds > 0 ? ['-x', '-w', String(opts.waitSeconds), '3'] : ['-x', '-n', '3'];
  try {
    await run('flock', args, { extraFds: [fh.fd], okCodes: [0] });
  } catch (e) {
    let holder = '';
    try {
      holder = (await fsp.readFile(path, 'utf8')).trim();
    } catch {
      // unreadable holder info is not worth a second error
    }
    await fh.close();
    if (e instanceof SquashtreeError && e.code === 'E_COMMAND') {
      throw new SquashtreeError(
        'E_LOCKED',
        `another squashtree is working on this tree${holder ? ` (${holder})` : ''}`,
        {
          path,
          hint: 'wait for it to finish, or pass --wait SECONDS to wait longer',
        },
      );
    }
    throw e;
  }
  await fh.truncate(0);
  await fh.write(`pid ${process.pid}: ${process.argv.slice(2).join(' ')}\n`, 0);
  return {
    path,
    fd: fh.fd,
    release: async () => {
      await fh.close();
    },
  };
}
