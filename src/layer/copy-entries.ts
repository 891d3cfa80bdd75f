/**
 * Copying chosen entries of the upper into the staging dir, and nothing
 * else: GNU tar, reading the names (binary, NUL-separated) from a list file,
 * one archive piped from a tar in the upper to a tar in the stage. It keeps
 * what a layer needs (modes, owners, times, hard links among the names,
 * devices, xattrs, holes of sparse files) and never recurses: a dir that is
 * listed is copied without what it holds, so a commit copies what changed,
 * not the whole session. The overlay's own xattrs (trusted.overlay.*,
 * user.fuseoverlayfs.*) are left behind unless the copy is packed as the
 * upper is (an interrupted session's, whose opaque dirs keep their mark).
 * tar leaves sockets out; they are made here.
 */
import { promises as fsp } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { runPiped } from '../exec/run.js';
import { fsPath } from '../fs/paths.js';
import type { Entry } from '../fs/walk.js';

export interface CopyOptions {
  /** Keep trusted.overlay.* and user.fuseoverlayfs.* (default: leave them out). */
  keepOverlayXattrs?: boolean;
}

async function makeSocket(stage: string, e: Entry): Promise<void> {
  // A socket file is made by binding one; Node takes a text path, so bind a plain name and rename.
  const temp = join(stage, '.squashtree-socket');
  await fsp.rm(temp, { force: true });
  await new Promise<void>((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(temp, () => {
      // Closing a listening socket keeps its file (libuv unlinks nothing).
      server.close(() => {
        resolve();
      });
    });
  });
  const to = fsPath(stage, e.path);
  await fsp.rename(temp, to);
  await fsp.chmod(to, e.mode);
  await fsp.lchown(to, e.uid, e.gid).catch(() => undefined);
  const t = Number(e.mtimeNs / 1_000_000n) / 1000;
  await fsp.lutimes(to, t, t);
}

/** Copy `paths` (binary relative paths, parents first, '' the root) of `upper` into `stage`. */
/**
 * The overlay's own xattrs (trusted.overlay.X), as tar globs that leave out
 * the escaped ones (trusted.overlay.overlay.X): those are a user's
 * trusted.overlay.X that the kernel stored escaped, content to keep. tar's
 * excludes win over its includes, so the globs spell out "not overlay.".
 */
const OVERLAY_OWN = [
  'trusted.overlay.[!o]*',
  'trusted.overlay.o[!v]*',
  'trusted.overlay.ov[!e]*',
  'trusted.overlay.ove[!r]*',
  'trusted.overlay.over[!l]*',
  'trusted.overlay.overl[!a]*',
  'trusted.overlay.overla[!y]*',
  'trusted.overlay.overlay[!.]*',
];

export async function copyEntries(
  upper: string,
  stage: string,
  entries: readonly Entry[],
  opts: CopyOptions = {},
): Promise<void> {
  await fsp.mkdir(stage, { recursive: true, mode: 0o700 });
  const list = `${stage}.list`;
  const names = entries.map((e) =>
    Buffer.concat([Buffer.from(e.path === '' ? '.' : e.path, 'latin1'), Buffer.from([0])]),
  );
  await fsp.writeFile(list, Buffer.concat(names), { mode: 0o600 });
  const xattrs = ['--xattrs', '--xattrs-include=*'];
  const leaveOut = opts.keepOverlayXattrs
    ? []
    : [...OVERLAY_OWN.map((p) => `--xattrs-exclude=${p}`), '--xattrs-exclude=user.fuseoverlayfs.*'];
  try {
    await runPiped(
      {
        cmd: 'tar',
        args: [
          '--create',
          '--file=-',
          `--directory=${upper}`,
          '--no-recursion',
          '--numeric-owner',
          '--sparse',
          ...xattrs,
          ...leaveOut,
          '--null',
          '--verbatim-files-from',
          `--files-from=${list}`,
        ],
      },
      {
        cmd: 'tar',
        args: [
          '--extract',
          '--file=-',
          `--directory=${stage}`,
          '--numeric-owner',
          '--preserve-permissions',
          ...xattrs,
        ],
      },
      {
        hint: 'the staging filesystem must have room for the changes and support device nodes and xattrs (tmpfs, ext4, xfs, btrfs do); GNU tar is needed',
      },
    );
  } finally {
    await fsp.rm(list, { force: true });
  }
  for (const e of entries) if (e.type === 'socket') await makeSocket(stage, e);
}
