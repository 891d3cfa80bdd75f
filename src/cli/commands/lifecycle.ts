/** start, stop, restart, commit, compact, rollback, discard, diff, verify: thin wrappers over Tree. */
import { createInterface } from 'node:readline/promises';
import { SquashtreeError } from '../../errors.js';
import type { CommitResult } from '../../lifecycle/commit.js';
import type { CompactResult } from '../../lifecycle/compact.js';
import type { DiffResult } from '../../lifecycle/diff.js';
import type { DiscardResult } from '../../lifecycle/discard.js';
import type { RollbackResult } from '../../lifecycle/rollback.js';
import type { StartResult } from '../../lifecycle/start.js';
import type { StopResult } from '../../lifecycle/stop.js';
import type { VerifyResult } from '../../lifecycle/verify.js';
import { displayPath, fromJsonPath, jsonPath } from '../../fs/paths.js';
import { bytes, count, seconds } from '../format.js';
import { perTree, renderPerTree, type PerTreeData } from '../per-tree.js';
import { publishAfterCommit, renderAutoPublish, type AutoPublish } from '../publish-after.js';
import { defineCommand } from '../spec.js';

const TREES = '[trees...]';

export function renderStart(r: StartResult): string {
  if (r.alreadyMounted)
    return `${r.tree}: already mounted on ${r.dir} (generation ${r.generation}); nothing changed`;
  return `${r.tree}: mounted generation ${r.generation} (${count(r.layers, 'image')}) on ${r.dir}${r.resumed ? ', with the pending changes of the interrupted session' : ''}`;
}

export function renderCommit(r: CommitResult): string {
  if (!r.committed)
    return `${r.tree}: ${r.reason ?? 'nothing committed'} (generation ${r.generation})`;
  return `${r.tree}: committed generation ${r.generation}: ${count(r.pendingFiles, 'change')} (${bytes(r.pendingBytes)}) in a ${bytes(r.layerBytes)} ${r.imageKind === 'base' ? 'new base' : 'layer'}, ${count(r.layers, 'image')}, ${seconds(r.durationMs)}`;
}

export function renderCompact(r: CompactResult): string {
  if (!r.compacted) return `${r.tree}: not compacted: ${r.reason ?? ''}`;
  const how =
    r.method === 'writer'
      ? 'blocks copied'
      : r.method === 'mksquashfs'
        ? `recompressed by mksquashfs${r.methodReason ? ` (${r.methodReason})` : ''}`
        : '';
  return `${r.tree}: compacted ${r.layersBefore} images (${bytes(r.bytesBefore)}) into generation ${r.generation}: ${r.layersAfter} image(s), ${bytes(r.bytesAfter)}, ${seconds(r.durationMs)}${how ? `, ${how}` : ''}`;
}

export function renderStop(r: StopResult): string {
  if (!r.wasMounted)
    return r.leftovers
      ? `${r.tree}: not mounted; took down what an earlier mount left (${r.leftovers.length} mount(s))`
      : `${r.tree}: not mounted`;
  const parts = [
    `${r.tree}: stopped${r.lazy ? ' (lazily detached)' : ''}${r.resumed ? ' (its overlay had been unmounted: mounted again with its pending changes first)' : ''}`,
  ];
  const bare = (line: string): string => line.replace(`${r.tree}: `, '');
  if (r.commit) parts.push(`  ${bare(renderCommit(r.commit))}`);
  if (r.onStop !== 'commit')
    parts.push(
      `  on-stop = ${r.onStop}: pending changes ${r.onStop === 'keep' ? 'kept in the upper' : 'dropped'}`,
    );
  if (r.compact) parts.push(`  ${bare(renderCompact(r.compact))}`);
  return parts.join('\n');
}

export const startCommand = defineCommand<PerTreeData<StartResult>>({
  name: 'start',
  summary: 'mount trees: images read-only, a writable upper, the overlay on the tree dir',
  args: TREES,
  root: true,
  run: (ctx, names) => perTree(ctx, names, (t) => t.start()),
  render: (d) => renderPerTree(d, renderStart),
});

export const stopCommand = defineCommand<PerTreeData<Published<StopResult>>>({
  name: 'stop',
  summary: 'apply on-stop (commit by default), then unmount overlay, images and upper',
  args: TREES,
  root: true,
  options: [
    { flags: '--lazy', description: 'if the tree is busy, commit and then detach it lazily' },
    {
      flags: '--on-stop <action>',
      description: 'override on-stop for this stop: commit, discard or keep',
    },
    { flags: '--no-compact', description: 'skip the automatic compaction' },
  ],
  run: (ctx, names, o) => {
    const onStop = o.onStop as string | undefined;
    if (onStop !== undefined && !['commit', 'discard', 'keep'].includes(onStop)) {
      throw new SquashtreeError(
        'E_USAGE',
        `--on-stop takes commit, discard or keep, not ${onStop}`,
      );
    }
    return perTree(ctx, names, async (t) => {
      const r = await t.stop({
        lazy: Boolean(o.lazy),
        noCompact: o.compact === false,
        ...(onStop ? { onStop: onStop as 'commit' } : {}),
      });
      const publish = await publishAfterCommit(t, r.commit?.committed === true);
      return publish ? { ...r, publish } : r;
    }).then(publishedOk);
  },
  render: (d) =>
    renderPerTree(d, (r) =>
      [renderStop(r), renderAutoPublish(r.tree, r.publish)].filter(Boolean).join('\n'),
    ),
});

export const restartCommand = defineCommand<
  PerTreeData<Published<{ stop: StopResult; start: StartResult }>>
>({
  name: 'restart',
  summary: 'stop (with on-stop) and start again',
  args: TREES,
  root: true,
  options: [
    { flags: '--lazy', description: 'if the tree is busy, commit and then detach it lazily' },
  ],
  run: async (ctx, names, o) =>
    publishedOk(
      await perTree(ctx, names, async (t) => {
        const r = await t.restart({ lazy: Boolean(o.lazy) });
        const publish = await publishAfterCommit(t, r.stop.commit?.committed === true);
        return publish ? { ...r, publish } : r;
      }),
    ),
  render: (d) =>
    renderPerTree(d, (r) =>
      [renderStop(r.stop), renderStart(r.start), renderAutoPublish(r.stop.tree, r.publish)]
        .filter(Boolean)
        .join('\n'),
    ),
});

/** A result and, with publish-to, what publishing it after the commit did. */
type Published<R> = R & { publish?: AutoPublish };

/** The command fails (exit 1) when a publish after a commit failed; the commit stands. */
function publishedOk<R>(out: { data: PerTreeData<Published<R>>; ok: boolean }) {
  return {
    data: out.data,
    ok: out.ok && out.data.trees.every((t) => t.result?.publish?.ok !== false),
  };
}

export const commitCommand = defineCommand<PerTreeData<Published<CommitResult>>>({
  name: 'commit',
  summary:
    'persist pending changes as a new layer now and stay mounted (and publish, with publish-to)',
  args: TREES,
  root: true,
  run: async (ctx, names) =>
    publishedOk(
      await perTree(ctx, names, async (t) => {
        const r = await t.commit();
        const publish = await publishAfterCommit(t, r.committed);
        return publish ? { ...r, publish } : r;
      }),
    ),
  render: (d) =>
    renderPerTree(d, (r) =>
      [renderCommit(r), renderAutoPublish(r.tree, r.publish)].filter(Boolean).join('\n'),
    ),
});

export const compactCommand = defineCommand<PerTreeData<CompactResult>>({
  name: 'compact',
  summary: 'pack the image stack into one new base image',
  args: TREES,
  root: true,
  run: (ctx, names) => perTree(ctx, names, (t) => t.compact()),
  render: (d) => renderPerTree(d, renderCompact),
});

export const rollbackCommand = defineCommand<PerTreeData<RollbackResult>>({
  name: 'rollback',
  summary: 'make an earlier generation current (the tree must be stopped)',
  args: TREES,
  root: true,
  options: [
    {
      flags: '--to <generation>',
      description: 'the generation to return to (default: the one before the current)',
    },
  ],
  run: (ctx, names, o) => {
    const to = generationOption(o.to, '--to');
    return perTree(ctx, names, (t) => t.rollback(to));
  },
  render: (d) =>
    renderPerTree(d, (r) =>
      r.to === r.from
        ? `${r.tree}: generation ${r.to} is already current; nothing changed`
        : `${r.tree}: generation ${r.to} is current again (was ${r.from}); start the tree to use it`,
    ),
});

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
  } finally {
    rl.close();
  }
}

export const discardCommand = defineCommand<PerTreeData<DiscardResult>>({
  name: 'discard',
  summary: 'drop pending (uncommitted) changes',
  args: TREES,
  root: true,
  options: [{ flags: '-y, --yes', description: 'do not ask' }],
  run: async (ctx, names, o) => {
    if (!o.yes) {
      if (!process.stdin.isTTY) {
        throw new SquashtreeError(
          'E_CONFIRM',
          'discard drops uncommitted changes and needs confirmation',
          {
            hint: 'run it on a terminal, or pass --yes',
          },
        );
      }
      const what = names.length ? names.join(', ') : 'all trees';
      if (!(await confirm(`Drop the uncommitted changes of ${what}?`))) {
        throw new SquashtreeError('E_CONFIRM', 'not confirmed; nothing was discarded');
      }
    }
    return perTree(ctx, names, (t) => t.discard());
  },
  render: (d) =>
    renderPerTree(d, (r) =>
      r.discarded
        ? `${r.tree}: discarded ${count(r.files, 'change')} (${bytes(r.bytes)})`
        : `${r.tree}: ${r.reason ?? 'nothing discarded'}`,
    ),
});

export const diffCommand = defineCommand<PerTreeData<DiffResult>>({
  name: 'diff',
  summary:
    'list pending changes, one A (added), M (modified) or D (deleted) line per path; with --generation, what that generation changed',
  args: TREES,
  options: [
    {
      flags: '--generation <n>',
      description:
        "compare generation N's top layer with the images below it, or a one-image generation with its parent (read from the images: no root needed)",
    },
  ],
  root: (o) => o.generation === undefined,
  run: (ctx, names, o) => {
    const g = generationOption(o.generation, '--generation');
    // Paths inside are bytes (one char each); --json gets them as text, see jsonPath.
    return perTree(ctx, names, async (t) => {
      const r = await t.diff(g);
      return {
        ...r,
        changes: r.changes.map((c) => ({ kind: c.kind, ...jsonPath(c.path), type: c.type })),
      };
    });
  },
  render: (d) =>
    renderPerTree(d, (r) => {
      const lines = r.changes.map(
        (c) => `${c.kind} ${displayPath(fromJsonPath(c))}${c.type === 'dir' ? '/' : ''}`,
      );
      return d.trees.length > 1 ? [`# ${r.tree}`, ...lines].join('\n') : lines.join('\n');
    }),
});

export const verifyCommand = defineCommand<PerTreeData<VerifyResult>>({
  name: 'verify',
  summary: 'check every image of a generation: sha256, metadata and a full read of every file',
  args: TREES,

  options: [
    { flags: '--generation <n>', description: 'verify this generation instead of the current one' },
  ],
  run: async (ctx, names, o) => {
    const g = generationOption(o.generation, '--generation');
    const out = await perTree(ctx, names, (t) => t.verify(g));
    return { data: out.data, ok: out.ok && out.data.trees.every((t) => t.result?.ok !== false) };
  },
  render: (d) =>
    renderPerTree(d, (r) =>
      [
        `${r.tree}: generation ${r.generation}: ${r.ok ? 'all images intact' : 'PROBLEMS FOUND'}`,
        ...r.images.map(
          (i) =>
            `  ${i.ok ? 'ok ' : 'BAD'} ${i.file} (${count(i.filesRead, 'file')} read)${i.problems.map((p) => `\n      ${p}`).join('')}`,
        ),
        ...(r.ok
          ? []
          : [
              '  hint: roll back to a generation whose images are intact (squashtree rollback --to N)',
            ]),
      ].join('\n'),
    ),
});

function generationOption(value: unknown, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) {
    throw new SquashtreeError(
      'E_USAGE',
      `${flag} takes a generation number, not ${typeof value === 'string' ? value : JSON.stringify(value)}`,
    );
  }
  return n;
}
