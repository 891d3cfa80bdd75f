/**
 * Portage: the repo.postsync.d hook, the repos.conf settings that decide how
 * much of a repository a sync copies into the upper, and make.conf's
 * DISTDIR/PKGDIR. Portage reads its config below PORTAGE_CONFIGROOT, and so
 * do we.
 */
import { promises as fsp } from 'node:fs';
import { join, normalize } from 'node:path';
import { SquashtreeError, errnoCode } from '../errors.js';
import { isWithin } from '../config/values.js';
import type { TreeConfig } from '../config/schema.js';
import {
  commandLine,
  header,
  MARKER,
  seal,
  sealState,
  type GeneratedFile,
  type Invocation,
} from './files.js';
import { isExcluded } from '../config/exclude.js';

export const HOOK_PATH = '/etc/portage/repo.postsync.d/squashtree';
export const REPOS_CONF = '/etc/portage/repos.conf';
export const MAKE_CONF = '/etc/portage/make.conf';
export const FIX_FILE = `${REPOS_CONF}/zz-squashtree.conf`;
const BLOCK_BEGIN = `# BEGIN squashtree (${MARKER} portage)`;
const BLOCK_END = '# END squashtree';

export function hookFiles(inv: Invocation): GeneratedFile[] {
  const content = `#!/bin/sh
${header('portage')}# Portage runs this after each repository's sync as: NAME SYNC-URI LOCATION.
# It commits the squashtree tree whose dir is LOCATION and ignores other repositories;
# it fails the sync only when that commit fails, and then says why.
exec ${commandLine(inv)} hook portage "$@"
`;
  return [{ path: HOOK_PATH, content, mode: 0o755 }];
}

/** The files of a config that may be one file or a directory of files (portage reads both). */
async function configFiles(path: string): Promise<string[]> {
  try {
    const st = await fsp.stat(path);
    if (!st.isDirectory()) return [path];
    const names = (await fsp.readdir(path))
      .filter((n) => !n.startsWith('.') && !n.endsWith('~'))
      .sort();
    return names.map((n) => join(path, n));
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return [];
    throw e;
  }
}

export type IniSections = Map<string, Map<string, string>>;

/** Portage's repos.conf is INI: [section], key = value, # and ; comments. Later files win. */
export function parseIni(text: string, into: IniSections = new Map()): IniSections {
  let section: Map<string, string> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const h = /^\[([^\]]+)\]$/.exec(line);
    if (h) {
      const name = (h[1] ?? '').trim();
      section = into.get(name) ?? new Map<string, string>();
      into.set(name, section);
      continue;
    }
    const kv = /^([^=:]+?)\s*[=:]\s*(.*)$/.exec(line);
    if (kv && section) section.set((kv[1] ?? '').trim().toLowerCase(), (kv[2] ?? '').trim());
  }
  return into;
}

export interface PortageRepo {
  name: string;
  location: string | undefined;
  syncType: string | undefined;
  allowHardlinks: boolean;
}

const truthy = (v: string | undefined, dflt: boolean): boolean =>
  v === undefined ? dflt : !/^(no|false|0|off)$/i.test(v.trim());

export async function readRepos(configRoot: string): Promise<PortageRepo[]> {
  const sections: IniSections = new Map();
  // Portage's own defaults first (present on Gentoo), then the user's files.
  for (const f of [
    join(configRoot, 'usr/share/portage/config/repos.conf'),
    ...(await configFiles(join(configRoot, REPOS_CONF))),
  ]) {
    try {
      parseIni(await fsp.readFile(f, 'utf8'), sections);
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT') throw e;
    }
  }
  const dflt = sections.get('DEFAULT') ?? new Map<string, string>();
  const repos: PortageRepo[] = [];
  for (const [name, s] of sections) {
    if (name === 'DEFAULT') continue;
    const get = (k: string): string | undefined => s.get(k) ?? dflt.get(k);
    const location = get('location');
    repos.push({
      name,
      location: location ? normalize(location).replace(/(.)\/+$/, '$1') : undefined,
      syncType: get('sync-type'),
      allowHardlinks: truthy(get('sync-allow-hardlinks'), true),
    });
  }
  return repos;
}

/** make.conf variables (VAR="value", with ${VAR} expansion), over portage's defaults. */
export async function readMakeConf(configRoot: string): Promise<Map<string, string>> {
  const vars = new Map<string, string>([
    ['DISTDIR', '/var/cache/distfiles'],
    ['PKGDIR', '/var/cache/binpkgs'],
  ]);
  for (const f of await configFiles(join(configRoot, MAKE_CONF))) {
    let text: string;
    try {
      text = await fsp.readFile(f, 'utf8');
    } catch {
      continue;
    }
    for (const raw of text.split('\n')) {
      const m = /^\s*(?:export\s+)?([A-Za-z_]\w*)=(?:"([^"]*)"|'([^']*)'|(\S*))/.exec(raw);
      if (!m) continue;
      const value = (m[2] ?? m[3] ?? m[4] ?? '').replace(
        /\$\{(\w+)\}|\$(\w+)/g,
        (_, a?: string, b?: string) => vars.get(a ?? b ?? '') ?? '',
      );
      vars.set(m[1] ?? '', value);
    }
  }
  return vars;
}

export function repoForTree(
  repos: readonly PortageRepo[],
  tree: TreeConfig,
): PortageRepo | undefined {
  return repos.find((r) => r.location === tree.dir);
}

export interface HardlinkFix {
  /** Where the setting goes (absolute, with the root prefix). */
  file: string;
  /** Text to write (a whole file, or a block appended to the user's file). */
  text: string;
  append: boolean;
  repos: string[];
}

/** The repos.conf change that turns sync-allow-hardlinks off for the trees' repositories. */
export async function hardlinkFix(
  root: string,
  trees: readonly TreeConfig[],
): Promise<HardlinkFix | undefined> {
  const repos = await readRepos(root);
  const names = trees
    .map((t) => repoForTree(repos, t))
    .filter((r): r is PortageRepo => r?.allowHardlinks === true)
    .map((r) => r.name);
  if (names.length === 0) return undefined;
  const body = names
    .map(
      (n) =>
        `[${n}]\n# A sync's hard-link quarantine copies every file into the overlay's upper.\nsync-allow-hardlinks = no\n`,
    )
    .join('\n');
  const dir = join(root, REPOS_CONF);
  let isFile = false;
  try {
    isFile = !(await fsp.stat(dir)).isDirectory();
  } catch (e) {
    if (errnoCode(e) !== 'ENOENT') throw e;
  }
  if (isFile)
    return {
      file: dir,
      text: `\n${BLOCK_BEGIN}\n${body}${BLOCK_END}\n`,
      append: true,
      repos: names,
    };
  return {
    file: join(root, FIX_FILE),
    text: `${header('portage')}\n${body}`,
    append: false,
    repos: names,
  };
}

export async function applyHardlinkFix(fix: HardlinkFix): Promise<void> {
  await fsp.mkdir(join(fix.file, '..'), { recursive: true, mode: 0o755 });
  if (fix.append) await fsp.appendFile(fix.file, fix.text);
  else await fsp.writeFile(fix.file, seal(fix.text), { mode: 0o644 });
}

/** Undo what install wrote into repos.conf: our file, or our block in the user's file. */
/** Refuse, before anything is removed, to remove a fix file the admin edited. */
export async function checkHardlinkFixRemovable(root: string, force: boolean): Promise<void> {
  const file = join(root, FIX_FILE);
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') return;
    throw e;
  }
  if (!force && text.includes(MARKER) && sealState(text) === 'edited') {
    throw new SquashtreeError(
      'E_FILE_EDITED',
      `${file} was edited after squashtree install wrote it; not going to remove it`,
      { path: file, hint: 'keep your change elsewhere, then pass --force to remove it' },
    );
  }
}

/** Undo what install wrote into repos.conf: our file, or our block in the user's file. */
export async function removeHardlinkFix(root: string): Promise<string[]> {
  const removed: string[] = [];
  const file = join(root, FIX_FILE);
  try {
    if ((await fsp.readFile(file, 'utf8')).includes(MARKER)) {
      await fsp.rm(file);
      removed.push(file);
    }
  } catch (e) {
    if (errnoCode(e) !== 'ENOENT' && errnoCode(e) !== 'ENOTDIR') throw e;
  }
  const conf = join(root, REPOS_CONF);
  try {
    const st = await fsp.stat(conf);
    if (!st.isDirectory()) {
      const text = await fsp.readFile(conf, 'utf8');
      const start = text.indexOf(`\n${BLOCK_BEGIN}`);
      const end = text.indexOf(BLOCK_END, start);
      if (start >= 0 && end > start) {
        await fsp.writeFile(conf, text.slice(0, start) + text.slice(end + BLOCK_END.length + 1));
        removed.push(`${conf} (squashtree block)`);
      }
    }
  } catch (e) {
    if (errnoCode(e) !== 'ENOENT') throw e;
  }
  return removed;
}

export interface PortageAdvice {
  tree: string;
  problem: string;
  fix: string;
}

/** What in portage's settings defeats a tree: the hard-link trap, downloads inside the tree. */
export async function portageAdvice(
  configRoot: string,
  trees: readonly TreeConfig[],
): Promise<PortageAdvice[]> {
  const out: PortageAdvice[] = [];
  const repos = await readRepos(configRoot);
  const make = await readMakeConf(configRoot);
  for (const t of trees) {
    const repo = repoForTree(repos, t);
    if (repo?.allowHardlinks) {
      out.push({
        tree: t.name,
        problem: `repository ${repo.name} syncs with sync-allow-hardlinks = yes: every sync copies the whole repository into the upper`,
        fix: `squashtree install portage (writes sync-allow-hardlinks = no for [${repo.name}]), or set it in ${REPOS_CONF} yourself`,
      });
    }
    for (const v of ['DISTDIR', 'PKGDIR']) {
      const p = make.get(v);
      if (!p) continue;
      const rel = normalize(p).slice(t.dir.length + 1);
      if (isWithin(normalize(p), t.dir) && !isExcluded(rel, t.exclude)) {
        out.push({
          tree: t.name,
          problem: `${v}=${p} lies inside the tree: downloads would fill the upper and end up in images`,
          fix: `move it out (${v}="/var/cache/${v === 'DISTDIR' ? 'distfiles' : 'binpkgs'}" in make.conf), or add "${rel}" to the tree's exclude`,
        });
      }
    }
  }
  return out;
}
