/** A sandbox with one initialised tree, ready to start. */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { sandbox, type Sandbox } from './env.js';
import { sq, sqOk, type CliResult } from './cli.js';
import { buildTree, type Spec } from './tree.js';

export interface TreeFixture {
  sb: Sandbox;
  tree: string;
  model: string;
  store: string;
  ok: (...args: string[]) => Promise<CliResult>;
  run: (...args: string[]) => Promise<CliResult>;
}

export const SMALL: Spec = {
  'a.txt': 'alpha\n',
  'cat-one': { dir: { pkg: { dir: { 'pkg-1.ebuild': 'EAPI=8\n', Manifest: 'DIST x 1\n' } } } },
  link: { symlink: 'a.txt' },
};

export async function initTree(
  t: TestContext,
  spec: Spec = SMALL,
  extra: string[] = [],
  extraToml = '',
): Promise<TreeFixture> {
  const sb = await sandbox(t);
  const tree = join(sb.dir, 'tree');
  const model = join(sb.dir, 'model');
  await buildTree(tree, spec);
  await buildTree(model, spec);
  if (extraToml) await fsp.writeFile(sb.config, extraToml);
  const ok = sqOk(sb);
  // "{SB}" in an extra argument stands for the sandbox dir.
  await ok(
    'init',
    't',
    '--dir',
    tree,
    '--store',
    sb.store('t'),
    ...extra.map((a) => a.replaceAll('{SB}', sb.dir)),
  );
  return { sb, tree, model, store: sb.store('t'), ok, run: sq(sb) };
}

/** Names in the store that a finished run must not leave behind. */
export async function leftovers(store: string): Promise<string[]> {
  return (await fsp.readdir(store)).filter((n) => n.startsWith('.'));
}

// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- the caller names the shape it expects
export function parseJson<T>(r: CliResult): T {
  return JSON.parse(r.stdout) as T;
}

export interface StatusJson {
  trees: {
    name: string;
    state: string;
    mounted: boolean;
    generation: number;
    layers: number;
    pending: { files: number; bytes: number };
  }[];
}
