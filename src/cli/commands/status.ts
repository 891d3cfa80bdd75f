/** status: per tree, what is mounted, what is stored, what is pending. */
import type { TreeStatus } from '../../lifecycle/status.js';
import { bytes, count, seconds } from '../format.js';
import { defineCommand } from '../spec.js';

export interface StatusData {
  trees: TreeStatus[];
}

function engineLine(e: TreeStatus['engine']): string {
  const not = Object.entries(e.rejected).map(([n, why]) => `${n}: ${why}`);
  const unusable = e.rejected[e.name];
  return `${e.name}${unusable ? ' - CANNOT WORK HERE' : ''} (${e.reason}${e.setting !== 'auto' ? `: engine = "${e.setting}"` : ''})${not.length ? `; not used: ${not.join('; ')}` : ''}`;
}

/** Newest first, the current one named, and what the others are for. */
function generationsLine(s: TreeStatus): string {
  const gens = [...s.generations].sort((a, b) => b.generation - a.generation);
  const list = gens.map((g) => `${g.generation}${g.current ? ' (current)' : ''}`).join(', ');
  const others = gens.length > 1 ? '; squashtree rollback --to N makes another current' : '';
  return `generations: ${list}${others}`;
}

/** What the store's bytes are for, and what keep trades. */
function storeLines(s: TreeStatus): string[] {
  const u = s.storeUse;
  const gens = u.rollbackGenerations;
  const parts = [`${bytes(u.currentBytes)} for the current generation`];
  if (u.rollbackBytes > 0 || gens.length > 0)
    parts.push(
      `${bytes(u.rollbackBytes)} kept for rollback to generation${gens.length === 1 ? '' : 's'} ${gens.join(', ')}`,
    );
  if (u.unnamedBytes > 0)
    parts.push(
      `${bytes(u.unnamedBytes)} in images no generation names (the next commit deletes them)`,
    );
  return [
    `  store: ${bytes(s.storeBytes)}: ${parts.join(', ')}`,
    `    keep = ${s.keep} keeps ${s.keep === 1 ? 'the newest generation' : `the ${s.keep} newest generations`} besides the current for rollback; after a compaction each may hold an old base as big as the tree, so the store can reach ${s.keep + 1} times the image; keep = 0 keeps the current only`,
  ];
}

function renderOne(s: TreeStatus): string {
  const lines = [`${s.name}: ${s.state}${s.mounted ? ` on ${s.dir}` : ` (dir ${s.dir})`}`];
  if (s.generation === null) {
    lines.push(`  no images yet: squashtree init ${s.name} --dir ${s.dir}`);
    return lines.join('\n');
  }
  lines.push(
    `  generation ${s.generation}${s.mountedGeneration !== null && s.mountedGeneration !== s.generation ? ` (mounted: ${s.mountedGeneration})` : ''}, ${count(s.layers, 'image')}, ${bytes(s.imageBytes)} (store: ${bytes(s.storeBytes)}, ${s.compression})`,
  );
  lines.push(`  engine: ${engineLine(s.engine)}`);
  if (s.files !== null)
    lines.push(`  holds ${count(s.files, 'file')}, ${bytes(s.bytes)} uncompressed`);
  if (s.mounted || s.state === 'interrupted')
    lines.push(`  pending: ${count(s.pending.files, 'change')}, ${bytes(s.pending.bytes)}`);
  if (s.upper) {
    lines.push(
      `  upper (${s.upper.kind}): ${bytes(s.upper.usedBytes)} of ${bytes(s.upper.limitBytes)}, ${s.upper.usedInodes}/${s.upper.limitInodes} inodes${s.upper.full ? ' - FULL: writes fail with ENOSPC; commit, then stop and start to empty it, or raise tmpfs-size' : ''}`,
    );
  }
  if (s.lastCommit)
    lines.push(
      `  last commit: ${s.lastCommit.at} (generation ${s.lastCommit.generation}, ${seconds(s.lastCommit.durationMs)})`,
    );
  lines.push(`  ${generationsLine(s)}`);
  lines.push(...storeLines(s));
  return lines.join('\n');
}

export const statusCommand = defineCommand<StatusData>({
  name: 'status',
  summary:
    'show each tree: mounted or not, generation, layers, sizes, pending changes, upper usage',
  args: '[trees...]',
  run: async (ctx, names) => {
    const trees = await ctx.trees(names, { allowNone: true });
    const out: TreeStatus[] = [];
    for (const t of trees) out.push(await t.status());
    return { data: { trees: out }, ok: true };
  },
  render: (d) =>
    d.trees.length
      ? d.trees.map(renderOne).join('\n')
      : 'no trees configured (add one with squashtree init NAME --dir DIR)',
});
