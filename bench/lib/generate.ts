/**
 * A Gentoo-shaped wrapper around src/corpus/portage.ts. The generator alone
 * writes about 6 files per package (ebuilds, md5-cache entries, Manifest,
 * metadata.xml, sometimes one patch), so 19k packages give ~120k files; the
 * real repository has ~200k for as many packages, most of the difference in
 * packages' files/ dirs (patches, init scripts), eclass/ and metadata/glsa.
 * This adds those, deterministically, on top of generateRepo's tree, so the
 * file count, directory fan-out and sizes are close to the real thing.
 * applySync works on the result unchanged (it only uses the package list).
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import {
  BASE_MTIME,
  generateRepo,
  type RepoShape,
  type RepoStats,
} from '../../src/corpus/portage.js';
import { Random } from '../../src/corpus/random.js';

export interface GeneratedStats {
  repo: RepoStats;
  /** All files, the generator's and the extras. */
  files: number;
  bytes: number;
  extraFiles: number;
}

/** Real repository, for the record: ~170 categories, ~19k packages, ~200k files. */
export const SHAPES: Record<'small' | 'gentoo', RepoShape> = {
  small: { categories: 16, packagesPerCategory: 40, seed: 2026 },
  gentoo: { categories: 170, packagesPerCategory: 112, seed: 2026 },
};

/** Share of packages with extra files/ entries, and how many they get (1..FILES_MAX). */
const FILES_CHANCE = 0.45;
const FILES_MAX = 18;
const ECLASSES_PER_PACKAGE = 0.036; // ~700 at 19k packages
const GLSAS_PER_PACKAGE = 0.13; // ~2,500 at 19k packages

const WORDS = ['build', 'musl', 'gcc14', 'clang', 'lto', 'cross', 'tests', 'docs', 'cve', 'py3'];

function patch(r: Random, pkg: string, lines: number): string {
  const out = [
    `From ${r.hex(40)} Mon Sep 17 00:00:00 2001`,
    `Subject: [PATCH] ${pkg}: fix ${r.pick(WORDS)}`,
    '',
    `--- a/src/${pkg}.c`,
    `+++ b/src/${pkg}.c`,
  ];
  for (let i = 0; i < lines; i++) {
    const sign = r.pick([' ', ' ', ' ', '+', '-']);
    out.push(
      `${sign}\t${r.pick(['if', 'return', 'static int', 'free', '#include'])} ${r.pick(WORDS)}_${r.hex(r.int(4, 12))}(${r.int(0, 99)});`,
    );
  }
  return `${out.join('\n')}\n`;
}

function initd(r: Random, pkg: string): string {
  return `#!/sbin/openrc-run\n# Copyright 1999-2026 Gentoo Authors\n\ncommand="/usr/bin/${pkg}"\ncommand_args="\${${pkg.toUpperCase()}_OPTS} --port ${r.int(1024, 65535)}"\npidfile="/run/${pkg}.pid"\n\ndepend() {\n\tneed net\n}\n`;
}

function eclass(r: Random, name: string): string {
  const out = [
    '# Copyright 1999-2026 Gentoo Authors',
    `# @ECLASS: ${name}.eclass`,
    '# @MAINTAINER:',
    `# ${name}@example.org`,
    '',
  ];
  for (let i = r.int(150, 700); i > 0; i--) {
    out.push(
      r.chance(0.2)
        ? `# @FUNCTION: ${name}_${r.hex(6)}`
        : `\t${r.pick(['local', 'die', 'einfo', 'use', 'has'])} ${r.pick(WORDS)} "\${${r.pick(['ED', 'S', 'T', 'WORKDIR'])}}/${r.hex(8)}"`,
    );
  }
  return `${out.join('\n')}\n`;
}

function glsa(r: Random, id: string, packages: readonly string[]): string {
  const cp = r.pick(packages);
  return `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE glsa SYSTEM "http://www.gentoo.org/dtd/glsa.dtd">
<glsa id="${id}">
  <title>${cp}: Multiple vulnerabilities</title>
  <synopsis>Multiple vulnerabilities have been found in ${cp}, the worst of which could result in ${r.pick(['arbitrary code execution', 'denial of service', 'information disclosure'])}.</synopsis>
  <product type="ebuild">${cp.split('/')[1] ?? cp}</product>
  <announced>2026-0${r.int(1, 7)}-${r.int(10, 28)}</announced>
  <revised count="${r.int(1, 3)}">2026-07-${r.int(10, 28)}</revised>
  <bug>${r.int(800000, 999999)}</bug>
  <affected>
    <package name="${cp}" auto="yes" arch="*">
      <unaffected range="ge">${r.int(1, 9)}.${r.int(0, 30)}.${r.int(0, 9)}</unaffected>
      <vulnerable range="lt">${r.int(1, 9)}.${r.int(0, 30)}.${r.int(0, 9)}</vulnerable>
    </package>
  </affected>
  <background><p>${cp} is ${r.hex(64)}.</p></background>
  <description><p>Multiple vulnerabilities have been discovered in ${cp}. Please review the CVE identifiers referenced below for details.</p></description>
  <references>
${Array.from({ length: r.int(1, 12) }, () => `    <uri link="https://nvd.nist.gov/vuln/detail/CVE-2026-${r.int(1000, 99999)}">CVE-2026-${r.int(1000, 99999)}</uri>`).join('\n')}
  </references>
</glsa>
`;
}

/** Write files with at most `limit` in flight. */
async function writeAll(files: [string, string][], limit = 64): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < files.length) {
      const [p, text] = files[next++] ?? ['', ''];
      await fsp.writeFile(p, text);
      await fsp.utimes(p, BASE_MTIME, BASE_MTIME);
    }
  };
  await Promise.all(Array.from({ length: limit }, worker));
}

export async function generateGentooLike(root: string, shape: RepoShape): Promise<GeneratedStats> {
  const repo = await generateRepo(root, shape);
  const r = new Random(shape.seed ^ 0x5eed);
  const files: [string, string][] = [];
  const dirs = new Set<string>();
  for (const cp of repo.packages) {
    if (!r.chance(FILES_CHANCE)) continue;
    const pkg = cp.split('/')[1] ?? cp;
    const dir = join(root, cp, 'files');
    dirs.add(dir);
    const n = r.int(1, FILES_MAX);
    for (let k = 0; k < n; k++) {
      const kind = r.int(0, 9);
      if (kind === 0) files.push([join(dir, `${pkg}.initd${k ? `-r${k}` : ''}`), initd(r, pkg)]);
      else
        files.push([
          join(dir, `${pkg}-${r.int(0, 9)}.${r.int(0, 30)}-${r.pick(WORDS)}-${k}.patch`),
          patch(r, pkg, r.int(4, 120)),
        ]);
    }
  }
  const eclassDir = join(root, 'eclass');
  dirs.add(eclassDir);
  const nEclass = Math.max(10, Math.round(repo.packages.length * ECLASSES_PER_PACKAGE));
  for (let i = 0; i < nEclass; i++) {
    const name = `${r.pick(WORDS)}-${r.pick(['utils', 'r1', 'single-r1', 'build', 'multilib'])}${i}`;
    files.push([join(eclassDir, `${name}.eclass`), eclass(r, name)]);
  }
  const glsaDir = join(root, 'metadata', 'glsa');
  dirs.add(glsaDir);
  const nGlsa = Math.max(10, Math.round(repo.packages.length * GLSAS_PER_PACKAGE));
  for (let i = 0; i < nGlsa; i++) {
    const id = `20${String(4 + Math.floor(i / 1200)).padStart(2, '0')}${String((i % 12) + 1).padStart(2, '0')}-${String(Math.floor(i / 12) % 100).padStart(2, '0')}`;
    files.push([join(glsaDir, `glsa-${id}.xml`), glsa(r, id, repo.packages)]);
  }
  for (const d of dirs) await fsp.mkdir(d, { recursive: true });
  // A name drawn twice is written twice; count what is on disk.
  const unique = new Map(files);
  await writeAll([...unique]);
  let extraBytes = 0;
  for (const text of unique.values()) extraBytes += Buffer.byteLength(text);
  return {
    repo,
    files: repo.files + unique.size,
    bytes: repo.bytes + extraBytes,
    extraFiles: unique.size,
  };
}
