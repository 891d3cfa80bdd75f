/**
 * publish-to: after a command that committed (commit, stop, restart, run,
 * the portage hook), publish the tree to its configured repository, signed
 * with its sign-key. The commit stands whatever happens here: a failed
 * publish is reported (and makes the command exit 1), and the next commit
 * or `squashtree publish NAME` pushes everything since the last published
 * generation.
 */
import { publishTree, type PublishResult } from '../oci/publish.js';
import type { Tree } from '../lifecycle/tree.js';
import { bytes } from './format.js';
import { errorRecord } from './per-tree.js';

export interface AutoPublish {
  to: string;
  ok: boolean;
  result?: PublishResult;
  error?: Record<string, unknown>;
}

export async function publishAfterCommit(
  tree: Tree,
  committed: boolean,
): Promise<AutoPublish | undefined> {
  const cfg = tree.ctx.tree;
  if (!committed || cfg.publishTo === undefined) return undefined;
  try {
    const result = await publishTree(tree, cfg.publishTo, {
      plainHttp: cfg.plainHttp,
      ...(cfg.signKey !== undefined ? { signKey: cfg.signKey } : {}),
    });
    return { to: cfg.publishTo, ok: true, result };
  } catch (e) {
    return { to: cfg.publishTo, ok: false, error: errorRecord(e) };
  }
}

export function renderAutoPublish(name: string, p: AutoPublish | undefined): string {
  if (!p) return '';
  if (p.ok && p.result) {
    const r = p.result;
    return `${name}: published generation ${r.generation} to ${p.to} (${bytes(r.uploadedBytes)} uploaded)`;
  }
  const e = p.error ?? {};
  const hint = typeof e.hint === 'string' ? `\n  hint: ${e.hint}` : '';
  return `${name}: error E_OCI_PUBLISH: the commit stands, but publishing to ${p.to} failed: ${String(e.code)}: ${String(e.message)}${hint}\n  the next commit, or squashtree publish ${name}, publishes it`;
}
