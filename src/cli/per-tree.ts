/**
 * Most commands act on a list of trees (none named: all configured). Each
 * tree is handled in turn; one tree's failure is reported and the others
 * still run, and the command then exits 1.
 */
import { SquashtreeError, errorMessage } from '../errors.js';
import type { Tree } from '../lifecycle/tree.js';
import type { CliContext } from './context.js';
import type { CommandOutput } from './spec.js';

export interface TreeOutcome<R> {
  tree: string;
  ok: boolean;
  result?: R;
  error?: Record<string, unknown>;
}

export interface PerTreeData<R> {
  trees: TreeOutcome<R>[];
}

export function errorRecord(e: unknown): Record<string, unknown> {
  if (e instanceof SquashtreeError) return e.toJSON();
  return { code: 'E_INTERNAL', message: errorMessage(e) };
}

export async function perTree<R>(
  ctx: CliContext,
  names: readonly string[],
  fn: (tree: Tree) => Promise<R>,
): Promise<CommandOutput<PerTreeData<R>>> {
  const trees = await ctx.trees(names);
  const out: TreeOutcome<R>[] = [];
  for (const t of trees) {
    try {
      out.push({ tree: t.name, ok: true, result: await fn(t) });
    } catch (e) {
      if (trees.length === 1) throw e;
      out.push({ tree: t.name, ok: false, error: errorRecord(e) });
    }
  }
  return { data: { trees: out }, ok: out.every((o) => o.ok) };
}

export function renderPerTree<R>(data: PerTreeData<R>, line: (r: R) => string): string {
  if (data.trees.length === 0)
    return 'no trees configured (add one with squashtree init NAME --dir DIR)';
  return data.trees
    .map((o) => {
      if (o.ok && o.result !== undefined) return line(o.result);
      const err = o.error ?? {};
      const hint = typeof err.hint === 'string' ? `\n  hint: ${err.hint}` : '';
      return `${o.tree}: error ${String(err.code)}: ${String(err.message)}${hint}`;
    })
    .join('\n');
}
