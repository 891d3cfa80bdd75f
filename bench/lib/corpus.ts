/**
 * What every corpus offers the scenarios: a base tree on disk (a cache
 * entry, only ever read) and a source of changes ("days": a one-day sync,
 * or a patch) applied to mounted trees. A day is applied identically to
 * every tree it is given, so builders and a mirror stay in step, and it can
 * name its own new and changed files, for packing the day's change alone.
 */
import { promises as fsp } from 'node:fs';
import { join, relative } from 'node:path';
import { run } from './exec.js';

export interface DayInfo {
  label: string;
  /** What the source says it did (rsync's counts, applySync's, the patch's). */
  detail: string;
}

export interface Days {
  /** How many days the source has. */
  count: number;
  /** Apply day `day` (1-based) to each tree, the same way. */
  apply(day: number, trees: readonly string[]): Promise<DayInfo>;
  /** Copy the new and changed files of day `day` (already applied) into `into`. */
  changed(day: number, into: string): Promise<void>;
  /** Undo what the source mounted for itself. */
  close(): Promise<void>;
}

export interface Corpus {
  name: string;
  description: string;
  /** Read-only: init reads it, nothing writes it. */
  baseDir: string;
  files: number;
  bytes: number;
  prepareMs: number;
  /** Came from the cache as it was. */
  cacheHit: boolean;
  /** What one change is called in the report: "one-day sync", "patch". */
  change: string;
  /** A fresh sequence of changes; `work` is a scratch dir of the caller's. */
  days(work: string): Promise<Days>;
}

export interface SkippedCorpus {
  name: string;
  skipped: string;
}

/** Counts of regular files and their apparent bytes. */
export async function countTree(dir: string): Promise<{ files: number; bytes: number }> {
  const { stdout } = await run('find', [dir, '-type', 'f', '-printf', '%s\n']);
  let files = 0;
  let bytes = 0;
  for (const l of stdout.split('\n')) {
    if (!l) continue;
    files++;
    bytes += Number(l);
  }
  return { files, bytes };
}

/** Regular files below dir by relative path, with ctime and size: to see what a step wrote. */
export async function fileStamps(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string): Promise<void> => {
    let entries;
    try {
      entries = await fsp.readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) {
        const s = await fsp.lstat(p, { bigint: true });
        out.set(relative(dir, p), `${s.ctimeNs}:${s.size}:${s.ino}`);
      }
    }
  };
  await walk(dir);
  return out;
}

/** Copy the listed files (relative to src) into dst, with their dirs. */
export async function copyListed(src: string, list: readonly string[], dst: string): Promise<void> {
  await fsp.mkdir(dst, { recursive: true });
  if (list.length === 0) return;
  const listFile = `${dst}.list`;
  await fsp.writeFile(listFile, `${list.join('\n')}\n`);
  try {
    await run('rsync', ['-a', `--files-from=${listFile}`, `${src}/`, `${dst}/`]);
  } finally {
    await fsp.rm(listFile, { force: true });
  }
}
