/**
 * `init` adds a [tree.NAME] table to the config. The table is appended as
 * text so the user's comments and layout stay as they were; the result is
 * parsed and checked before it is written, and the file is replaced
 * atomically.
 */
import { promises as fsp } from 'node:fs';
import { dirname } from 'node:path';
import { stringify } from 'smol-toml';
import { writeFileAtomic } from '../fs/durable.js';
import { parseConfig } from './load.js';
import type { TreeConfig } from './schema.js';

export type TreeTable = Record<string, string | number | string[]>;

export interface EditedConfig {
  text: string;
  trees: TreeConfig[];
}

/** The config text with the new table appended, parsed and checked; writes nothing. */
export function withTree(
  path: string,
  currentText: string,
  name: string,
  table: TreeTable,
  storeRoot?: string,
): EditedConfig {
  const header =
    currentText.length === 0 ? '# squashtree configuration (see the README for every key)\n\n' : '';
  const sep =
    currentText.length === 0 || currentText.endsWith('\n\n')
      ? ''
      : currentText.endsWith('\n')
        ? '\n'
        : '\n\n';
  const text = `${header}${currentText}${sep}${stringify({ tree: { [name]: table } })}\n`;
  return { text, trees: parseConfig(text, path, storeRoot) };
}

export async function writeConfig(path: string, text: string): Promise<void> {
  await fsp.mkdir(dirname(path), { recursive: true, mode: 0o755 });
  await writeFileAtomic(path, text, 0o644);
}

/** Undo a write when the rest of init fails: restore the previous text. */
export async function restoreConfig(
  path: string,
  previousText: string,
  existed: boolean,
): Promise<void> {
  if (existed) await writeFileAtomic(path, previousText, 0o644);
  else await fsp.rm(path, { force: true });
}
