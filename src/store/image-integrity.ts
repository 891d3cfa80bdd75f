/**
 * Before images are mounted, each is checked against the manifest: present,
 * the recorded size, the recorded sha256. Hashes are cached in the runtime
 * dir by (device, inode, size, mtime, ctime), so a start after a clean stop
 * does not read 100 MB again, while a replaced or rewritten file is hashed.
 */
import { promises as fsp } from 'node:fs';
import { SquashtreeError, errnoCode } from '../errors.js';
import { sha256File } from '../fs/hash.js';
import { writeFileAtomic } from '../fs/durable.js';
import type { Manifest } from './manifest.js';
import { imagePath } from './store.js';

type Cache = Record<string, { key: string; sha256: string }>;

async function readCache(path: string): Promise<Cache> {
  try {
    return JSON.parse(await fsp.readFile(path, 'utf8')) as Cache;
  } catch {
    return {};
  }
}

export interface ImageProblem {
  file: string;
  problem: string;
}

/** Check the given images; returns their absolute paths, base first. */
export async function checkImages(
  store: string,
  m: Manifest,
  files: readonly string[],
  cachePath: string | undefined,
  opts: { force?: boolean } = {},
): Promise<string[]> {
  const cache = cachePath ? await readCache(cachePath) : {};
  const problems: ImageProblem[] = [];
  for (const f of files) {
    const rec = m.images[f];
    const p = imagePath(store, f);
    if (!rec) {
      problems.push({ file: f, problem: 'not listed in the manifest' });
      continue;
    }
    let st;
    try {
      st = await fsp.stat(p, { bigint: true });
    } catch (e) {
      problems.push({ file: f, problem: errnoCode(e) === 'ENOENT' ? 'missing' : String(e) });
      continue;
    }
    if (Number(st.size) !== rec.bytes) {
      problems.push({ file: f, problem: `size ${st.size} bytes, manifest says ${rec.bytes}` });
      continue;
    }
    const key = `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
    if (!opts.force && cache[f]?.key === key && cache[f].sha256 === rec.sha256) continue;
    const sum = await sha256File(p);
    if (sum !== rec.sha256) {
      problems.push({ file: f, problem: 'sha256 does not match the manifest' });
      continue;
    }
    cache[f] = { key, sha256: sum };
  }
  if (cachePath) await writeFileAtomic(cachePath, JSON.stringify(cache), 0o600);
  if (problems.length > 0) {
    const first = problems[0];
    const missing = problems.every((x) => x.problem === 'missing');
    throw new SquashtreeError(
      missing ? 'E_IMAGE_MISSING' : 'E_IMAGE_CORRUPT',
      `image ${imagePath(store, first?.file ?? '')} is ${first?.problem === 'missing' ? 'missing' : `damaged: ${first?.problem ?? ''}`}` +
        (problems.length > 1 ? ` (and ${problems.length - 1} more)` : ''),
      {
        path: imagePath(store, first?.file ?? ''),
        stderr: problems.map((x) => `${x.file}: ${x.problem}`).join('\n'),
        hint: 'nothing was deleted; go back to a generation whose images are intact with squashtree rollback (squashtree status lists them)',
      },
    );
  }
  return files.map((f) => imagePath(store, f));
}
