/**
 * A generator of portage-like repositories: categories of packages with
 * ebuilds, Manifests full of (incompressible) hashes, metadata.xml, patches
 * under files/, metadata/md5-cache with one entry per ebuild, and profiles.
 * Deterministic for a seed, so the demo, the tests and the benchmark can
 * build the same tree and the same "sync" anywhere.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { Random } from './random.js';

/** PORTAGE_RSYNC_OPTS from portage's make.globals, minus the network ones: how a sync lands in a tree. */
export const PORTAGE_RSYNC: readonly string[] = [
  '--recursive',
  '--links',
  '--safe-links',
  '--perms',
  '--times',
  '--omit-dir-times',
  '--force',
  '--whole-file',
  '--delete',
  '--exclude=/distfiles',
  '--exclude=/local',
  '--exclude=/packages',
  '--exclude=/.git',
];

export interface RepoShape {
  categories: number;
  packagesPerCategory: number;
  seed: number;
}

const WORDS = [
  'lib',
  'net',
  'x11',
  'media',
  'dev',
  'sys',
  'app',
  'games',
  'sci',
  'www',
  'mail',
  'kde',
  'gnome',
  'perl',
  'python',
];
const KINDS = [
  'misc',
  'util',
  'libs',
  'tools',
  'plugins',
  'servers',
  'clients',
  'fonts',
  'admin',
  'text',
];
const LICENSES = ['GPL-2', 'GPL-3+', 'MIT', 'BSD', 'Apache-2.0', 'LGPL-2.1+', 'MPL-2.0'];
const KEYWORDS = ['amd64', '~arm64', '~riscv', 'x86', '~ppc64'];
const USE = [
  'doc',
  'test',
  'ssl',
  'ipv6',
  'X',
  'wayland',
  'static-libs',
  'debug',
  'examples',
  'nls',
];

export function categoryName(r: Random, i: number): string {
  return `${r.pick(WORDS)}-${r.pick(KINDS)}${i}`;
}

function ebuild(r: Random, pkg: string, ver: string): string {
  const use = USE.filter(() => r.chance(0.3));
  const lines = [
    '# Copyright 1999-2026 Gentoo Authors',
    '# Distributed under the terms of the GNU General Public License v2',
    '',
    `EAPI=${r.pick(['7', '8', '8'])}`,
    '',
    `inherit ${r.pick(['autotools', 'cmake', 'meson', 'python-r1', 'cargo', 'go-module'])}`,
    '',
    `DESCRIPTION="${pkg} is a ${r.pick(KINDS)} package for ${r.pick(WORDS)} users"`,
    `HOMEPAGE="https://example.org/${pkg}"`,
    `SRC_URI="https://example.org/releases/${pkg}-${ver}.tar.gz"`,
    '',
    `LICENSE="${r.pick(LICENSES)}"`,
    'SLOT="0"',
    `KEYWORDS="${KEYWORDS.filter(() => r.chance(0.6)).join(' ')}"`,
    `IUSE="${use.join(' ')}"`,
    '',
    'RDEPEND="',
    ...Array.from(
      { length: r.int(1, 8) },
      () =>
        `\t>=${r.pick(WORDS)}-${r.pick(KINDS)}/${r.pick(WORDS)}${r.int(1, 99)}-${r.int(0, 9)}.${r.int(0, 20)}`,
    ),
    '"',
    'DEPEND="${RDEPEND}"',
    '',
    'src_configure() {',
    `\tlocal mycmakeargs=( -DENABLE_${r.pick(USE).toUpperCase()}=$(usex ${r.pick(USE)}) )`,
    '\tcmake_src_configure',
    '}',
    '',
  ];
  for (let i = r.int(0, 30); i > 0; i--)
    lines.push(`\t# ${r.pick(WORDS)} ${r.pick(KINDS)} ${r.hex(8)} handling for ${pkg}`);
  return `${lines.join('\n')}\n`;
}

function manifest(r: Random, pkg: string, versions: string[]): string {
  return versions
    .map(
      (v) =>
        `DIST ${pkg}-${v}.tar.gz ${r.int(10_000, 90_000_000)} BLAKE2B ${r.hex(128)} SHA512 ${r.hex(128)}\n`,
    )
    .join('');
}

function metadataXml(r: Random, pkg: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE pkgmetadata SYSTEM "https://www.gentoo.org/dtd/metadata.dtd">
<pkgmetadata>
\t<maintainer type="person">
\t\t<email>${pkg}-dev${r.int(1, 999)}@example.org</email>
\t</maintainer>
\t<upstream>
\t\t<remote-id type="github">example/${pkg}</remote-id>
\t</upstream>
</pkgmetadata>
`;
}

function md5cache(r: Random, cat: string, pkg: string, ver: string): string {
  return `DEFINED_PHASES=configure install prepare
DEPEND=>=${r.pick(WORDS)}-${r.pick(KINDS)}/${r.pick(WORDS)}-1
DESCRIPTION=${pkg} for ${cat}
EAPI=8
HOMEPAGE=https://example.org/${pkg}
KEYWORDS=${KEYWORDS.filter(() => r.chance(0.6)).join(' ')}
LICENSE=${r.pick(LICENSES)}
SLOT=0
SRC_URI=https://example.org/releases/${pkg}-${ver}.tar.gz
_eclasses_=cmake\t${r.hex(32)}\ttoolchain-funcs\t${r.hex(32)}
_md5_=${r.hex(32)}
`;
}

export interface RepoStats {
  files: number;
  bytes: number;
  packages: string[];
}

/** Mirrors keep upstream mtimes; fixed ones make two generated copies identical. */
export const BASE_MTIME = new Date('2026-08-01T00:00:00Z');
export const SYNC_MTIME = new Date('2026-08-02T00:00:00Z');

async function write(
  path: string,
  text: string,
  stats: RepoStats,
  mtime = BASE_MTIME,
): Promise<void> {
  await fsp.writeFile(path, text);
  await fsp.utimes(path, mtime, mtime);
  stats.files++;
  stats.bytes += Buffer.byteLength(text);
}

/** Write a package dir (ebuilds, Manifest, metadata.xml, maybe files/) and its md5-cache entries. */
async function writePackage(
  root: string,
  r: Random,
  cat: string,
  pkg: string,
  stats: RepoStats,
  mtime = BASE_MTIME,
): Promise<void> {
  const dir = join(root, cat, pkg);
  await fsp.mkdir(dir, { recursive: true });
  await fsp.mkdir(join(root, 'metadata', 'md5-cache', cat), { recursive: true });
  // Text is drawn from the generator in a fixed order, then written concurrently.
  const files: [string, string][] = [];
  const versions = Array.from(
    { length: r.int(1, 3) },
    () => `${r.int(0, 9)}.${r.int(0, 30)}.${r.int(0, 9)}`,
  ).filter((v, i, a) => a.indexOf(v) === i);
  for (const v of versions) {
    files.push([join(dir, `${pkg}-${v}.ebuild`), ebuild(r, pkg, v)]);
    files.push([join(root, 'metadata', 'md5-cache', cat, `${pkg}-${v}`), md5cache(r, cat, pkg, v)]);
  }
  files.push([join(dir, 'Manifest'), manifest(r, pkg, versions)]);
  files.push([join(dir, 'metadata.xml'), metadataXml(r, pkg)]);
  if (r.chance(0.25)) {
    await fsp.mkdir(join(dir, 'files'), { recursive: true });
    files.push([
      join(dir, 'files', `${pkg}-fix-build.patch`),
      `--- a/Makefile\n+++ b/Makefile\n@@ -1,3 +1,3 @@\n-CFLAGS=-O2\n+CFLAGS+=${r.hex(6)}\n`,
    ]);
  }
  await Promise.all(files.map(([p, text]) => write(p, text, stats, mtime)));
  stats.packages.push(`${cat}/${pkg}`);
}

export async function generateRepo(root: string, shape: RepoShape): Promise<RepoStats> {
  const r = new Random(shape.seed);
  const stats: RepoStats = { files: 0, bytes: 0, packages: [] };
  await fsp.mkdir(join(root, 'profiles'), { recursive: true });
  await fsp.mkdir(join(root, 'metadata'), { recursive: true });
  const cats: string[] = [];
  for (let c = 0; c < shape.categories; c++) {
    const cat = categoryName(r, c);
    cats.push(cat);
    for (let p = 0; p < shape.packagesPerCategory; p++) {
      await writePackage(root, r, cat, `${r.pick(WORDS)}${r.pick(KINDS)}${p}`, stats);
    }
  }
  await write(join(root, 'profiles', 'categories'), `${cats.join('\n')}\n`, stats);
  await write(join(root, 'profiles', 'repo_name'), 'demo\n', stats);
  await write(join(root, 'metadata', 'layout.conf'), 'masters = \nthin-manifests = true\n', stats);
  await write(join(root, 'metadata', 'timestamp.chk'), 'Sat, 01 Aug 2026 00:00:00 +0000\n', stats);
  return stats;
}

export interface SyncStats {
  added: number;
  changed: number;
  deleted: number;
  replacedDirs: number;
}

/**
 * Apply a day's worth of "sync" to a repository made by generateRepo with
 * the same shape: version bumps (new ebuild + Manifest change), edits,
 * removed packages, and one package dir removed and recreated (a directory
 * replaced). Applying it to two copies gives two equal trees.
 */
export async function applySync(
  root: string,
  base: RepoStats,
  seed: number,
  packages: number,
): Promise<SyncStats> {
  const r = new Random(seed);
  const stats: SyncStats = { added: 0, changed: 0, deleted: 0, replacedDirs: 0 };
  const sink: RepoStats = { files: 0, bytes: 0, packages: [] };
  const chosen = new Set<string>();
  while (chosen.size < Math.min(packages, base.packages.length)) chosen.add(r.pick(base.packages));
  let i = 0;
  for (const cp of chosen) {
    const [cat = '', pkg = ''] = cp.split('/');
    const dir = join(root, cat, pkg);
    const action = i++ % 10;
    if (action === 0) {
      await fsp.rm(dir, { recursive: true, force: true });
      stats.deleted++;
    } else if (action === 1) {
      // The whole dir goes and comes back with other content: an opaque dir in the upper.
      await fsp.rm(dir, { recursive: true, force: true });
      await writePackage(root, r, cat, pkg, sink, SYNC_MTIME);
      stats.replacedDirs++;
    } else {
      const v = `${r.int(10, 19)}.${r.int(0, 9)}`;
      await fsp.writeFile(join(dir, `${pkg}-${v}.ebuild`), ebuild(r, pkg, v));
      await fsp.appendFile(join(dir, 'Manifest'), manifest(r, pkg, [v]));
      for (const f of [`${pkg}-${v}.ebuild`, 'Manifest'])
        await fsp.utimes(join(dir, f), SYNC_MTIME, SYNC_MTIME);
      stats.added++;
      stats.changed++;
    }
  }
  await fsp.writeFile(join(root, 'metadata', 'timestamp.chk'), 'Sun, 02 Aug 2026 00:00:00 +0000\n');
  await fsp.utimes(join(root, 'metadata', 'timestamp.chk'), SYNC_MTIME, SYNC_MTIME);
  stats.changed++;
  return stats;
}
