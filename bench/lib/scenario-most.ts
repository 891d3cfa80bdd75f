/**
 * A commit of a sync that changes most of the tree, against the full pack
 * of the merged tree: each round starts a fresh copy of the base, rewrites
 * ~75% of its files (rewrite.ts, a new seed a round), and then runs the
 * timed `commit` and the full mksquashfs in alternating order. What the
 * commit says it wrote (a layer, or a new base) is kept for the report.
 */
import { join } from 'node:path';
import type { Corpus } from './corpus.js';
import { run } from './exec.js';
import { num, str } from './fields.js';
import { figure, type Figure } from './figures.js';
import { secs } from './format.js';
import { alternate, paired, type Sample } from './pairs.js';
import { rewriteMost, type RewriteStats } from './rewrite.js';
import { NO_COMPACT, type Ctx } from './scenario-stack.js';
import { BenchTree, fullPack } from './tree.js';

export interface MostResult {
  figures: Figure[];
  samples: Record<string, Sample[]>;
  rewrites: RewriteStats[];
  /** Anything the commit said about what it wrote (a layer or a base, and why); "not reported" if nothing. */
  commitKinds: string[];
}

/** Fields a commit may use to say whether it wrote a layer or a new base. */
const KIND_FIELDS = ['packMethod', 'imageKind', 'baseReason', 'packReason', 'mode'];

export async function runMost(
  corpus: Corpus,
  base: BenchTree,
  dir: string,
  ctx: Ctx,
): Promise<MostResult> {
  const spec = base.env.spec;
  let t: BenchTree | undefined;
  const out: MostResult = { figures: [], samples: {}, rewrites: [], commitKinds: [] };
  try {
    out.samples = await alternate(
      [
        {
          name: 'commit',
          run: async () => {
            await run('sync', []);
            if (!t) throw new Error('no tree');
            const c = await t.sq.commit();
            out.commitKinds.push(
              KIND_FIELDS.map((k) => (str(c.data, k) ? `${k}=${str(c.data, k) ?? ''}` : ''))
                .filter(Boolean)
                .join(' ') || 'not reported',
            );
            return {
              wallMs: c.wallMs,
              cpuMs: c.cpuMs,
              info: {
                ...c.info,
                layerBytes: num(c.data, 'layerBytes'),
                pendingFiles: num(c.data, 'pendingFiles'),
              },
            };
          },
        },
        {
          name: 'peer',
          run: async () => {
            await run('sync', []);
            if (!t) throw new Error('no tree');
            const f = await fullPack(t.mnt, join(dir, 'peer.sqfs'), spec);
            return { wallMs: f.wallMs, cpuMs: f.cpuMs, info: { bytes: f.bytes } };
          },
        },
      ],
      {
        rounds: ctx.runs,
        prepare: async (r) => {
          t = await base.copy(join(dir, `round-${r}`), NO_COMPACT);
          await t.start(1);
          out.rewrites.push(await rewriteMost(t.mnt, 7000 + r));
        },
        after: async (r, got) => {
          ctx.log(
            `  [${corpus.name} / ${spec.label}] most-change round ${r + 1}: commit ${secs(got.commit?.[r]?.wallMs ?? NaN)}, full pack ${secs(got.peer?.[r]?.wallMs ?? NaN)}`,
          );
          await t?.sq.stop();
          await t?.remove();
          t = undefined;
        },
      },
    );
  } finally {
    await t?.sq.stop().catch(() => undefined);
  }
  const p = paired(out.samples.commit ?? [], out.samples.peer ?? []);
  const w = out.rewrites[0];
  out.figures.push(
    figure('commit-most', {
      corpus: corpus.name,
      compressor: spec.label,
      build: base.env.build.label,
      value: p.ratio.median,
      shown: `${p.ratio.median.toFixed(3)} (${secs(p.a.median)} / ${secs(p.b.median)}; ${w ? `${w.rewritten} of ${w.files} files rewritten, ${w.deleted} deleted, ${w.added} added` : ''}; commit wrote: ${[...new Set(out.commitKinds)].join(', ')})`,
      paired: p,
    }),
  );
  return out;
}
