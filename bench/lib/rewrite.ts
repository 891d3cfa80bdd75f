/**
 * A sync that changes most of a tree (GURU over six months changes ~10k of
 * its 13k files): about 75% of the regular files get new content (a line
 * changed and one added, so they compress as before), 2% are deleted and
 * 3% new ones appear beside them. Deterministic for a seed.
 */
import { promises as fsp } from 'node:fs';
import { join, relative } from 'node:path';
import { Random } from '../../src/corpus/random.js';

export const REWRITE_SHARE = 0.75;
const DELETE_SHARE = 0.02;
const ADD_SHARE = 0.03;
const MTIME = new Date('2027-02-01T00:00:00Z');

async function regularFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    const entries = await fsp.readdir(d, { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) out.push(relative(root, p));
    }
  };
  await walk(root);
  return out;
}

function edit(r: Random, text: string): string {
  const lines = text.split('\n');
  const at = r.int(0, Math.max(0, lines.length - 1));
  lines[at] = `${lines[at] ?? ''} # ${r.hex(8)}`;
  lines.splice(r.int(0, lines.length), 0, `# synced ${r.hex(16)}`);
  return lines.join('\n');
}

export interface RewriteStats {
  files: number;
  rewritten: number;
  deleted: number;
  added: number;
}

export async function rewriteMost(tree: string, seed: number): Promise<RewriteStats> {
  const r = new Random(seed);
  const files = await regularFiles(tree);
  const s: RewriteStats = { files: files.length, rewritten: 0, deleted: 0, added: 0 };
  for (const f of files) {
    const p = join(tree, f);
    const x = r.next();
    if (x < DELETE_SHARE) {
      await fsp.rm(p);
      s.deleted++;
      continue;
    }
    if (x >= DELETE_SHARE + REWRITE_SHARE) continue;
    const text = edit(r, await fsp.readFile(p, 'utf8'));
    await fsp.writeFile(p, text);
    await fsp.utimes(p, MTIME, MTIME);
    s.rewritten++;
    if (r.chance(ADD_SHARE / REWRITE_SHARE)) {
      const q = `${p}.new-${r.hex(6)}`;
      await fsp.writeFile(q, edit(r, text));
      await fsp.utimes(q, MTIME, MTIME);
      s.added++;
    }
  }
  return s;
}
