/**
 * Linux 6.1 sources from Debian's linux-source-6.1 package (apt-get
 * download, kept in CACHE/debs), unpacked once into the cache. The patch is
 * real: what the 6.1.190 -> 6.1.192 stable update changed under fs/smb (a
 * few dozen files). Days alternate the patch forwards and backwards, so
 * every layer is one real patch. At small scale the tree is a subset of the
 * top-level dirs (the patch is inside it).
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { cached, keyOf } from './cache.js';
import { countTree, type Corpus, type Days, type SkippedCorpus } from './corpus.js';
import { exists, run, shell, shellQuote } from './exec.js';

export const LINUX_BASE = '6.1.190-1';
export const LINUX_NEXT = '6.1.192-3';
const PACKAGE = 'linux-source-6.1';
const TOP = 'linux-source-6.1';
const PATCH_DIR = 'fs/smb';
const SMALL_DIRS = ['fs', 'net', 'kernel', 'mm'];

interface Meta {
  files: number;
  bytes: number;
  changed: string[];
  added: string[];
  deleted: string[];
}

async function deb(cacheDir: string, version: string): Promise<string> {
  const dir = join(cacheDir, 'debs');
  const file = join(dir, `${PACKAGE}_${version}_all.deb`);
  if (await exists(file)) return file;
  await fsp.mkdir(dir, { recursive: true });
  await run('apt-get', ['download', `${PACKAGE}=${version}`], { cwd: dir });
  if (!(await exists(file))) throw new Error(`apt-get download left no ${file}`);
  return file;
}

/** Unpack the package's source tarball (only `members` below its top dir, when given) into dir. */
async function unpack(debFile: string, dir: string, members: readonly string[]): Promise<void> {
  await fsp.mkdir(dir, { recursive: true });
  const want = members.map((m) => shellQuote(`${TOP}/${m}`)).join(' ');
  await shell(
    `dpkg-deb --fsys-tarfile ${shellQuote(debFile)} | tar -xO ./usr/src/${TOP}.tar.xz | tar -xJ -C ${shellQuote(dir)} ${want}`,
  );
}

export async function linuxCorpus(
  cacheDir: string,
  scale: 'small' | 'gentoo',
): Promise<Corpus | SkippedCorpus> {
  const t0 = performance.now();
  let base: string;
  let next: string;
  try {
    base = await deb(cacheDir, LINUX_BASE);
    next = await deb(cacheDir, LINUX_NEXT);
  } catch (e) {
    return {
      name: 'linux',
      skipped: `cannot get ${PACKAGE} ${LINUX_BASE} and ${LINUX_NEXT} (${e instanceof Error ? e.message.split('\n')[0] : String(e)}); put both .deb files in ${join(cacheDir, 'debs')}`,
    };
  }
  const subset = scale === 'small' ? SMALL_DIRS : [];
  const name = `linux-${LINUX_BASE}-${scale}-${keyOf([LINUX_NEXT, PATCH_DIR, ...subset])}`;
  const entry = await cached<Meta>(cacheDir, name, async (dir) => {
    await unpack(base, join(dir, 'x'), subset);
    await fsp.rename(join(dir, 'x', TOP), join(dir, 'tree'));
    await unpack(next, join(dir, 'y'), [PATCH_DIR]);
    const tree = join(dir, 'tree');
    const nextTree = join(dir, 'y', TOP);
    const { stdout } = await run('rsync', [
      '-rlnc',
      '--delete',
      '--out-format=%i %n',
      `${nextTree}/${PATCH_DIR}/`,
      `${tree}/${PATCH_DIR}/`,
    ]);
    const changed: string[] = [];
    const added: string[] = [];
    const deleted: string[] = [];
    for (const line of stdout.split('\n')) {
      const m = /^(\S+)\s+(.+)$/.exec(line);
      if (!m || m[2]?.endsWith('/')) continue;
      const p = `${PATCH_DIR}/${m[2] ?? ''}`;
      if (m[1] === '*deleting') deleted.push(p);
      else if (m[1]?.startsWith('>f+++')) added.push(p);
      else if (m[1]?.startsWith('>f')) changed.push(p);
    }
    const copy = async (from: string, list: string[], to: string): Promise<void> => {
      for (const p of list) {
        await fsp.mkdir(join(to, p, '..'), { recursive: true });
        await run('cp', ['-a', join(from, p), join(to, p)]);
      }
    };
    await copy(nextTree, [...changed, ...added], join(dir, 'forward'));
    await copy(tree, [...changed, ...deleted], join(dir, 'reverse'));
    await fsp.rm(join(dir, 'x'), { recursive: true, force: true });
    await fsp.rm(join(dir, 'y'), { recursive: true, force: true });
    return { ...(await countTree(tree)), changed, added, deleted };
  });
  const m = entry.meta;
  const put = (day: number): string => join(entry.dir, day % 2 === 1 ? 'forward' : 'reverse');
  const drop = (day: number): string[] => (day % 2 === 1 ? m.deleted : m.added);
  return {
    name: scale === 'small' ? 'linux-small' : 'linux',
    description: `Linux ${LINUX_BASE} sources (Debian ${PACKAGE}${scale === 'small' ? `, only ${SMALL_DIRS.join(', ')}` : ''}); the patch: what ${LINUX_BASE} -> ${LINUX_NEXT} changed under ${PATCH_DIR} (${m.changed.length} changed, ${m.added.length} added, ${m.deleted.length} deleted files), applied forwards on odd days and backwards on even ones`,
    baseDir: join(entry.dir, 'tree'),
    files: m.files,
    bytes: m.bytes,
    prepareMs: performance.now() - t0,
    cacheHit: entry.hit,
    change: 'patch',
    days: (): Promise<Days> =>
      Promise.resolve({
        count: Number.POSITIVE_INFINITY,
        async apply(day, trees) {
          for (const t of trees) {
            await run('cp', ['-a', `${put(day)}/.`, `${t}/`]);
            for (const p of drop(day)) await fsp.rm(join(t, p), { force: true });
          }
          const n = m.changed.length + (day % 2 === 1 ? m.added.length : m.deleted.length);
          return {
            label: `${day % 2 === 1 ? 'patch' : 'patch reversed'} (${PATCH_DIR})`,
            detail: `${n} files written, ${drop(day).length} removed`,
          };
        },
        async changed(day, into) {
          await fsp.mkdir(into, { recursive: true });
          await run('cp', ['-a', `${put(day)}/.`, `${into}/`]);
        },
        close: () => Promise.resolve(),
      }),
  };
}
