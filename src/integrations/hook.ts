/**
 * The portage hook's logic, run as `squashtree hook portage NAME URI
 * LOCATION`: commit the tree whose dir is LOCATION. Other repositories are
 * none of our business; inside `squashtree run` the run commits afterwards.
 */
import { realpath } from 'node:fs/promises';
import { normalize } from 'node:path';
import type { TreeConfig } from '../config/schema.js';
import type { Tree } from '../lifecycle/tree.js';
import type { CommitResult } from '../lifecycle/commit.js';

export interface HookResult {
  repository: string;
  location: string;
  tree: string | null;
  action: 'ignored' | 'deferred' | 'not-mounted' | 'committed' | 'nothing';
  commit?: CommitResult;
}

async function canonical(p: string): Promise<string> {
  try {
    return await realpath(p);
  } catch {
    return normalize(p);
  }
}

export async function findTreeFor(
  location: string,
  trees: readonly TreeConfig[],
): Promise<TreeConfig | undefined> {
  const want = await canonical(location);
  for (const t of trees) if (t.dir === want || (await canonical(t.dir)) === want) return t;
  return undefined;
}

export async function portageHook(
  repository: string,
  location: string,
  trees: readonly TreeConfig[],
  open: (t: TreeConfig) => Tree,
): Promise<HookResult> {
  const cfg = await findTreeFor(location, trees);
  if (!cfg) return { repository, location, tree: null, action: 'ignored' };
  if (process.env.SQUASHTREE_RUN_TREE === cfg.name)
    return { repository, location, tree: cfg.name, action: 'deferred' };
  const tree = open(cfg);
  const st = await tree.status();
  if (!st.mounted) return { repository, location, tree: cfg.name, action: 'not-mounted' };
  const commit = await tree.commit();
  return {
    repository,
    location,
    tree: cfg.name,
    action: commit.committed ? 'committed' : 'nothing',
    commit,
  };
}
