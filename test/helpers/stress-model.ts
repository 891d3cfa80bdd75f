/**
 * The model of stress.test.ts: a tree and a plain model dir that every random
 * filesystem operation is applied to alike (fileOp), with the two documented
 * overlay behaviours reproduced (see stress.test.ts).
 */
import { promises as fsp, lstatSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join, dirname } from 'node:path';
import { type Spec } from './tree.js';
import { type TreeFixture } from './setup.js';
import { Xattrs, runtimeOf } from './reliability.js';
import { Random } from '../../src/corpus/random.js';
import { walkSync, type Entry } from '../../src/fs/walk.js';

export const START: Spec = {
  'README.md': 'top level\n',
  'metadata.xml': { file: '<pkg/>\n', mode: 0o600, xattrs: { 'user.kind': 'meta' } },
  'app-misc': {
    dir: {
      hello: {
        dir: {
          'hello-1.0.ebuild': 'EAPI=8\nSRC_URI="x"\n',
          Manifest: 'DIST hello-1.0.tar.gz 100 SHA512 aa\n',
          files: { dir: { 'fix.patch': '--- a\n+++ b\n'.repeat(40) } },
        },
      },
      'linked-a': 'shared content\n',
      'linked-b': { hardlink: 'linked-a' },
    },
  },
  'dev-lang': {
    dir: {
      'big.bin': Buffer.alloc(200_000, 0x5a),
      'link-to-readme': { symlink: '../README.md' },
      empty: { dir: {} },
    },
    xattrs: { 'user.dir': 'yes' },
  },
};

export const FILE_NAMES = [
  ...Array.from({ length: 24 }, (_, i) => `f${i}`),
  'with space',
  'ünïcødé',
  'new\nline',
  '.hidden',
  'x'.repeat(200),
];
export const DIR_NAMES = [...Array.from({ length: 8 }, (_, i) => `d${i}`), 'dir with space'];
export const FILE_MODES = [0o644, 0o600, 0o755, 0o640, 0o444, 0o4755, 0o2750];
export const DIR_MODES = [0o755, 0o700, 0o750, 0o1777];

/** Binary relative path (walk's form) to a text path below root; every name used is UTF-8. */
export function p(root: string, rel: string): string {
  return rel === '' ? root : join(root, Buffer.from(rel, 'latin1').toString('utf8'));
}

export function relOf(parent: string, name: string): string {
  const bin = Buffer.from(name, 'utf8').toString('latin1');
  return parent === '' ? bin : `${parent}/${bin}`;
}

export function content(rng: Random, big: boolean): Buffer {
  const n = big ? rng.int(150_000, 600_000) : rng.int(0, 20_000);
  if (rng.chance(0.5)) {
    // Compressible text lines.
    const line = `line ${rng.hex(8)} ${'abc'.repeat(rng.int(1, 20))}\n`;
    return Buffer.from(line.repeat(Math.ceil(n / line.length)).slice(0, n));
  }
  const b = Buffer.alloc(n);
  let x = rng.int(1, 0x7fffffff);
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

export interface Ctx {
  f: TreeFixture;
  /** Also compact while mounted, and make hard links (off by default: see the todo tests). */
  mountedCompact: boolean;
  hardlinks: boolean;
  rng: Random;
  x: Xattrs;
  snaps: string;
  /** Model copy per generation number. */
  gens: Map<number, string>;
  /** The generation whose content the mounted tree (minus pending changes) shows. */
  committed: string;
  mounted: boolean;
  log: string[];
}

export async function copyTree(from: string, to: string): Promise<void> {
  await fsp.rm(to, { recursive: true, force: true });
  execFileSync('cp', ['-a', '--no-target-directory', from, to]);
}

export async function snapshot(c: Ctx, gen: number, from: string): Promise<void> {
  const dir = join(c.snaps, `g${gen}`);
  if (from !== dir) await copyTree(from, dir);
  c.gens.set(gen, dir);
}

/** With index=off, copying up one name of a hard-linked lower file gives it an inode of its own. */
export function breakIfLower(c: Ctx, rel: string): void {
  const m = lstatSync(p(c.f.model, rel));
  if (!m.isFile() || m.nlink < 2) return;
  let inUpper = false;
  try {
    inUpper = lstatSync(p(runtimeOf(c.f.sb).data, rel)).isFile();
  } catch {
    inUpper = false;
  }
  if (inUpper) return;
  const target = p(c.f.model, rel);
  const tmp = join(dirname(target), '.stress-break-tmp');
  execFileSync('cp', ['-a', target, tmp]);
  execFileSync('mv', ['-T', tmp, target]);
}

export interface Pick {
  files: Entry[];
  dirs: Entry[];
  all: Entry[];
}

export function survey(model: string): Pick {
  // walkSync lists the root first (path ''): it is a dir things can be created in.
  const everything = walkSync(model);
  const all = everything.filter((e) => e.path !== '');
  return {
    all,
    files: all.filter((e) => e.type === 'file'),
    dirs: everything.filter((e) => e.type === 'dir'),
  };
}

export function depth(rel: string): number {
  return rel === '' ? 0 : rel.split('/').length;
}

export function fresh(c: Ctx, s: Pick, names: readonly string[], maxDepth = 4): string | undefined {
  const parents = s.dirs.filter((d) => depth(d.path) < maxDepth);
  for (let i = 0; i < 20; i++) {
    const parent = c.rng.pick(parents);
    const rel = relOf(parent.path, c.rng.pick(names));
    if (!s.all.some((e) => e.path === rel)) return rel;
  }
  return undefined;
}

export async function both(c: Ctx, fn: (root: string) => Promise<void> | void): Promise<void> {
  await fn(c.f.tree);
  await fn(c.f.model);
}

/** One random filesystem operation on tree and model; returns its description. */
export async function fileOp(c: Ctx): Promise<string> {
  const { rng } = c;
  const s = survey(c.f.model);
  const kind = rng.pick([
    'create',
    'create',
    'overwrite',
    'append',
    'truncate',
    'chmod',
    'rename-file',
    'rename-dir',
    'rm',
    'flash',
    'rm-r-recreate',
    'symlink',
    c.hardlinks ? 'hardlink' : 'create',
    'xattr',
    'mkdir',
  ] as const);
  const anyFile = s.files.length > 0 ? rng.pick(s.files) : undefined;
  switch (kind) {
    case 'create': {
      const rel = fresh(c, s, FILE_NAMES);
      if (!rel) return 'create: no free name';
      const data = content(rng, rng.chance(0.05));
      await both(c, (r) => fsp.writeFile(p(r, rel), data));
      return `create ${rel} (${data.length} bytes)`;
    }
    case 'overwrite':
    case 'append':
    case 'truncate': {
      if (!anyFile) return `${kind}: no file`;
      breakIfLower(c, anyFile.path);
      if (kind === 'truncate') {
        const len = rng.chance(0.3) ? anyFile.size + rng.int(1, 5000) : rng.int(0, anyFile.size);
        await both(c, (r) => fsp.truncate(p(r, anyFile.path), len));
        return `truncate ${anyFile.path} to ${len}`;
      }
      const data = content(rng, false);
      await both(c, (r) =>
        kind === 'append'
          ? fsp.appendFile(p(r, anyFile.path), data)
          : fsp.writeFile(p(r, anyFile.path), data),
      );
      return `${kind} ${anyFile.path} (${data.length} bytes)`;
    }
    case 'chmod': {
      const dirs = s.dirs.filter((d) => d.path !== '');
      if (rng.chance(0.3) && dirs.length > 0) {
        const d = rng.pick(dirs);
        const mode = rng.pick(DIR_MODES);
        await both(c, (r) => fsp.chmod(p(r, d.path), mode));
        return `chmod ${mode.toString(8)} dir ${d.path}`;
      }
      if (!anyFile) return 'chmod: no file';
      breakIfLower(c, anyFile.path);
      const mode = rng.pick(FILE_MODES);
      await both(c, (r) => fsp.chmod(p(r, anyFile.path), mode));
      return `chmod ${mode.toString(8)} ${anyFile.path}`;
    }
    case 'rename-file': {
      if (!anyFile) return 'rename-file: no file';
      const over = s.all.filter(
        (e) => e.type !== 'dir' && e.ino !== anyFile.ino && e.path !== anyFile.path,
      );
      const to =
        rng.chance(0.25) && over.length > 0 ? rng.pick(over).path : fresh(c, s, FILE_NAMES);
      if (!to) return 'rename-file: no free name';
      breakIfLower(c, anyFile.path);
      await both(c, (r) => fsp.rename(p(r, anyFile.path), p(r, to)));
      return `rename ${anyFile.path} -> ${to}`;
    }
    case 'rename-dir': {
      const dirs = s.dirs.filter((d) => d.path !== '');
      if (dirs.length === 0) return 'rename-dir: no dir';
      const d = rng.pick(dirs);
      const parents = s.dirs.filter(
        (x) => x.path !== d.path && !x.path.startsWith(`${d.path}/`) && depth(x.path) < 3,
      );
      let to: string | undefined;
      for (let i = 0; i < 20 && !to; i++) {
        const rel = relOf(rng.pick(parents).path, rng.pick(DIR_NAMES));
        if (!s.all.some((e) => e.path === rel)) to = rel;
      }
      if (!to) return 'rename-dir: no free name';
      const dest = to;
      // With redirect_dir=off the overlay answers EXDEV for a dir that is in a lower layer; mv then
      // renames entry by entry, and each lower file it renames is copied up on its own.
      for (const e of walkSync(c.f.model, { under: d.path }))
        if (e.type === 'file') breakIfLower(c, e.path);
      let copied = false;
      try {
        await fsp.rename(p(c.f.tree, d.path), p(c.f.tree, dest));
      } catch (e) {
        if ((e as { code?: string }).code !== 'EXDEV') throw e;
        copied = true;
        execFileSync('mv', ['-T', p(c.f.tree, d.path), p(c.f.tree, dest)]);
      }
      await fsp.rename(p(c.f.model, d.path), p(c.f.model, dest));
      return `mv -T ${d.path} ${dest}${copied ? ' (EXDEV: mv moved it entry by entry)' : ''}`;
    }
    case 'rm': {
      const victims = s.all.filter((e) => e.type !== 'dir');
      if (victims.length === 0) return 'rm: nothing';
      const v = rng.pick(victims);
      await both(c, (r) => fsp.rm(p(r, v.path)));
      return `rm ${v.path}`;
    }
    case 'flash': {
      // Created and deleted between two commits: no layer may bring it back.
      const rel = fresh(c, s, FILE_NAMES);
      if (!rel) return 'flash: no free name';
      await both(c, async (r) => {
        await fsp.writeFile(p(r, rel), 'gone again\n');
        await fsp.rm(p(r, rel));
      });
      return `create and rm ${rel}`;
    }
    case 'rm-r-recreate': {
      const dirs = s.dirs.filter((d) => d.path !== '');
      if (dirs.length === 0) return 'rm-r: no dir';
      const d = rng.pick(dirs);
      const data = content(rng, false);
      const name = relOf(d.path, rng.pick(FILE_NAMES));
      await both(c, async (r) => {
        await fsp.rm(p(r, d.path), { recursive: true });
        await fsp.mkdir(p(r, d.path));
        await fsp.writeFile(p(r, name), data);
      });
      return `rm -r ${d.path}, mkdir, create ${name}`;
    }
    case 'symlink': {
      const rel = fresh(c, s, FILE_NAMES);
      if (!rel) return 'symlink: no free name';
      const target = rng.chance(0.3)
        ? `dangling/${rng.hex(6)}`
        : Buffer.from(rng.pick(s.all).path, 'latin1').toString('utf8');
      await both(c, (r) => fsp.symlink(target, p(r, rel)));
      return `symlink ${rel} -> ${target}`;
    }
    case 'hardlink': {
      if (!anyFile) return 'hardlink: no file';
      const rel = fresh(c, s, FILE_NAMES);
      if (!rel) return 'hardlink: no free name';
      breakIfLower(c, anyFile.path);
      await both(c, (r) => fsp.link(p(r, anyFile.path), p(r, rel)));
      return `ln ${anyFile.path} ${rel}`;
    }
    case 'xattr': {
      const targets = [...s.files, ...s.dirs.filter((d) => d.path !== '')];
      if (targets.length === 0) return 'xattr: nothing';
      const e = rng.pick(targets);
      if (e.type === 'file') breakIfLower(c, e.path);
      const name = `user.k${rng.int(0, 3)}`;
      const remove = rng.chance(0.2);
      if (remove) {
        if ((await c.x.get(p(c.f.model, e.path), name)) === null)
          return `xattr: ${e.path} has no ${name}`;
        await both(c, (r) => c.x.remove(p(r, e.path), name));
        return `removexattr ${name} ${e.path}`;
      }
      const value = rng.hex(rng.int(0, 40));
      await both(c, (r) => c.x.set(p(r, e.path), name, value));
      return `setxattr ${name}=${value} ${e.path}`;
    }
    case 'mkdir': {
      const rel = fresh(c, s, DIR_NAMES, 3);
      if (!rel) return 'mkdir: no free name';
      await both(c, (r) => fsp.mkdir(p(r, rel)));
      return `mkdir ${rel}`;
    }
  }
}
