/**
 * A real non-root user for a test, without touching the host's /etc or
 * /dev: a private mount namespace (kept alive by a bind of its nsfs file)
 * gets a copy of /etc/passwd and /etc/group with the test user added, and
 * a /dev/fuse node of mode 0666 (this machine's /dev/fuse is 0600, which
 * Debian's udev rule would make 0666). Every command of the test user runs
 * in that namespace through nsenter + setpriv, so its FUSE mounts are
 * invisible outside; cleanup unmounts them all (also when the test fails)
 * and lets the namespace go.
 */
import { promises as fsp, readFileSync } from 'node:fs';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { publicBin, type CliResult } from './cli.js';

export interface TestUser {
  name: string;
  uid: number;
  gid: number;
  /** Base temp dir (0755); home is base/home, the runtime dir base/run. */
  base: string;
  home: string;
  runtime: string;
  /** squashtree as the user, in user mode (XDG paths from its env). */
  sq(...args: string[]): Promise<CliResult>;
  sqOk(...args: string[]): Promise<CliResult>;
  /** A shell command as the user. */
  sh(cmd: string): Promise<CliResult>;
  /** A long-running shell command as the user (kill it by its pid). */
  spawnSh(cmd: string): ChildProcess;
  /** Run as root inside the namespace (to see the user's mounts). */
  inNs(cmd: string, args: string[]): string;
  /** Mount points below base inside the namespace. */
  mounts(): string[];
}

function freeId(): number {
  const used = new Set(
    readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .map((l) => Number(l.split(':')[2])),
  );
  for (;;) {
    const id = 61000 + Math.floor(Math.random() * 3000);
    if (!used.has(id)) return id;
  }
}

function collect(child: ChildProcess): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      resolve({ status: code ?? (signal ? 128 : -1), stdout, stderr });
    });
  });
}

export interface UserOptions {
  /**
   * Mode of the user's /dev/fuse (default 0666, as Debian's udev rule sets
   * it; 0600 is what this machine has: root only).
   */
  devFuseMode?: number;
}

/**
 * A new mount namespace starts with a copy of every mount there is, other
 * tests' image mounts below the temp dir too, and a copy keeps the image's
 * loop device attached after that test unmounted it, until this namespace
 * goes: such a test would then find a loop left behind. The copies are of
 * no use here, so they go at once (lazily, deepest first; only here).
 */
function dropForeignMounts(inNs: (cmd: string, args: string[]) => string, base: string): void {
  const tmp = tmpdir();
  // Any image or overlay mount copied in keeps its loop device attached while the
  // namespace lives: other tests' and other runs' (a second test run, a benchmark).
  const imageLike = /^(squashfs|overlay|erofs|fuse(\..*)?|fuseblk)$/;
  const points = inNs('cat', ['/proc/self/mountinfo'])
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => {
      const path = (l.split(' ')[4] ?? '').replace(/\\([0-7]{3})/g, (_, o: string) =>
        String.fromCharCode(parseInt(o, 8)),
      );
      const fstype = l.split(' - ')[1]?.split(' ')[0] ?? '';
      return { path, fstype };
    })
    .filter(
      ({ path, fstype }) =>
        (path.startsWith(`${tmp}/`) || imageLike.test(fstype)) &&
        path !== base &&
        !path.startsWith(`${base}/`),
    )
    .map(({ path }) => path)
    .reverse();
  for (const p of points) {
    try {
      inNs('umount', ['-l', p]);
    } catch {
      // gone with its parent already
    }
  }
}

export async function makeUser(t: TestContext, opts: UserOptions = {}): Promise<TestUser> {
  const base = await fsp.mkdtemp(join(tmpdir(), 'st-user-'));
  await fsp.chmod(base, 0o755);
  const uid = freeId();
  const gid = uid;
  const name = `sqtest${uid}`;
  const ns = join(base, 'ns');
  const nsFile = join(ns, 'mnt');
  const home = join(base, 'home');
  const runtime = join(base, 'run');
  let nsReady = false;

  const inNs = (cmd: string, args: string[]): string =>
    execFileSync('nsenter', [`--mount=${nsFile}`, cmd, ...args], { encoding: 'utf8' });
  const mounts = (): string[] => {
    if (!nsReady) return [];
    const text = inNs('cat', ['/proc/self/mountinfo']);
    return text
      .split('\n')
      .map((l) =>
        (l.split(' ')[4] ?? '').replace(/\\([0-7]{3})/g, (_, o: string) =>
          String.fromCharCode(parseInt(o, 8)),
        ),
      )
      .filter((p) => p.startsWith(`${base}/`) && !p.startsWith(ns))
      .sort((a, b) => b.length - a.length);
  };
  const cleanup = async (): Promise<void> => {
    if (nsReady) {
      for (let round = 0; round < 10 && mounts().length > 0; round++) {
        for (const p of mounts()) {
          try {
            inNs('umount', [p]);
          } catch {
            try {
              inNs('umount', ['-l', p]);
            } catch {
              // gone meanwhile
            }
          }
        }
        if (mounts().length > 0) await new Promise((r) => setTimeout(r, 200));
      }
    }
    for (const p of [nsFile, ns]) {
      try {
        execFileSync('umount', [p], { stdio: 'ignore' });
      } catch {
        // not mounted
      }
    }
    await fsp.rm(base, { recursive: true, force: true });
  };
  t.after(cleanup);

  await fsp.mkdir(ns);
  execFileSync('mount', ['--bind', ns, ns]);
  execFileSync('mount', ['--make-private', ns]);
  await fsp.writeFile(nsFile, '');
  execFileSync('unshare', [`--mount=${nsFile}`, '--propagation', 'private', 'true']);
  nsReady = true;
  dropForeignMounts(inNs, base);
  const fuse = join(base, 'fuse');
  execFileSync('mknod', ['-m', (opts.devFuseMode ?? 0o666).toString(8), fuse, 'c', '10', '229']);
  inNs('mount', ['--bind', fuse, '/dev/fuse']);
  for (const [file, line] of [
    ['passwd', `${name}:x:${uid}:${gid}:squashtree test:${home}:/bin/sh`],
    ['group', `${name}:x:${gid}:`],
  ] as const) {
    const copy = join(base, file);
    await fsp.writeFile(copy, `${readFileSync(`/etc/${file}`, 'utf8').trimEnd()}\n${line}\n`, {
      mode: 0o644,
    });
    inNs('mount', ['--bind', copy, `/etc/${file}`]);
  }
  await fsp.mkdir(home, { mode: 0o755 });
  await fsp.mkdir(runtime, { mode: 0o700 });
  await fsp.chown(home, uid, gid);
  await fsp.chown(runtime, uid, gid);

  const env = [
    'env',
    '-i',
    'PATH=/usr/local/bin:/usr/bin:/bin',
    `HOME=${home}`,
    `XDG_RUNTIME_DIR=${runtime}`,
    'LC_ALL=C',
  ];
  const asUser = (argv: string[]): ChildProcess =>
    spawn(
      'nsenter',
      [
        `--mount=${nsFile}`,
        'setpriv',
        `--reuid=${uid}`,
        `--regid=${gid}`,
        '--clear-groups',
        ...env,
        ...argv,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
  const sq = (...args: string[]): Promise<CliResult> =>
    collect(asUser([process.execPath, publicBin(), ...args]));
  return {
    name,
    uid,
    gid,
    base,
    home,
    runtime,
    sq,
    async sqOk(...args) {
      const r = await sq(...args);
      if (r.status !== 0)
        throw new Error(
          `(as ${name}) squashtree ${args.join(' ')} exited ${r.status}\n${r.stdout}\n${r.stderr}`,
        );
      return r;
    },
    sh: (cmd) => collect(asUser(['sh', '-c', cmd])),
    spawnSh: (cmd) => asUser(['sh', '-c', cmd]),
    inNs,
    mounts,
  };
}

/**
 * A tree's content as the user sees it: type, mode, owner, size, link
 * target and sha256 of every entry, read by the user (root cannot enter a
 * user's FUSE mount). Node, not find: fuse-overlayfs shows the inode
 * numbers of its lower layers, which repeat across squashfuse mounts, and
 * find takes a repeated directory inode for a loop.
 */
export const DUMP_SCRIPT = `
const fs = require('node:fs'), path = require('node:path'), crypto = require('node:crypto');
const root = process.argv[1]; const out = {};
(function walk(rel) {
  const p = rel ? path.join(root, rel) : root;
  const st = fs.lstatSync(p);
  const type = st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : st.isFile() ? 'f' : 'o';
  let extra = '';
  if (type === 'f') extra = crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex');
  if (type === 'l') extra = fs.readlinkSync(p);
  out[rel || '.'] = [type, (st.mode & 0o7777).toString(8), st.uid, st.gid, type === 'f' ? st.size : 0, extra].join(' ');
  if (type === 'd') for (const n of fs.readdirSync(p).sort()) walk(rel ? rel + '/' + n : n);
})('');
process.stdout.write(JSON.stringify(out));
`;

export async function dumpAs(user: TestUser, dir: string): Promise<Record<string, string>> {
  const r = await user.sh(
    `exec ${process.execPath} -e "$1" "$2"`
      .replace('"$1"', `'${DUMP_SCRIPT.replace(/'/g, `'\\''`)}'`)
      .replace('"$2"', `'${dir}'`),
  );
  if (r.status !== 0) throw new Error(`dump of ${dir} failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, string>;
}
