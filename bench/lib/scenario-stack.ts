/**
 * Commit, compaction and reads on one corpus with one compressor, from a
 * base that `init` made (a stopped tree, copied here):
 *
 * 1. Day 1 is committed untimed (a store of base + 1 layer, b1, is copied
 *    aside). Then each round applies the next day to the mounted session
 *    tree and runs, in alternating order, the timed `commit`, the full
 *    mksquashfs of the merged tree (the peer), and a timed `compact` of a
 *    fresh copy of b1 (base + one day). The peer sits between the two, so
 *    each ratio's sides ran back to back. Between rounds the tree stops and
 *    starts (untimed), so every timed commit is the first of its session.
 * 2. After round 1 the tree is base + 2 layers: the deepest stack the
 *    default policy mounts. That store and round 1's peer image (a fresh
 *    image of the same tree) are kept, a copy is compacted, and the stack,
 *    the compacted base and the fresh image are read in alternating rounds.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { BUILTIN_DEFAULTS } from '../../src/config/schema.js';
import type { Corpus } from './corpus.js';
import { BenchError, run } from './exec.js';
import { figure, type Figure, type FigureId } from './figures.js';
import { num, str } from './fields.js';
import { secs } from './format.js';
import { loopsBacking, mountLike } from './image-mount.js';
import { alternate, paired, type Sample } from './pairs.js';
import { READ_KINDS, readRounds, type ReadSamples } from './reads.js';
import { BenchTree, fullPack } from './tree.js';

/** The deepest stack the default policy mounts: compact-after images at start, plus the session's layer. */
export const DEFAULT_DEPTH = BUILTIN_DEFAULTS.compactAfter;
/** Nothing compacts on its own while the benchmark builds its stacks. */
export const NO_COMPACT = 400;

export interface Ctx {
  runs: number;
  cold: boolean;
  log: (line: string) => void;
}

export interface StackOptions {
  compact: boolean;
  reads: boolean;
}

export interface StackResult {
  figures: Figure[];
  samples: Record<string, Sample[]>;
  reads?: Record<string, ReadSamples>;
  /** What the compaction of the 2-layer stack reported (method and why), for the record. */
  compactedBase?: { wallMs: number; method?: string; reason?: string; bytes: number };
  freshBytes?: number;
}

const STOPPED_CLEAN = (r: { data: Record<string, unknown> }): boolean => {
  const c = r.data.commit;
  return !(
    typeof c === 'object' &&
    c !== null &&
    (c as { committed?: unknown }).committed === true
  );
};

export async function runStack(
  corpus: Corpus,
  base: BenchTree,
  dir: string,
  ctx: Ctx,
  o: StackOptions,
): Promise<StackResult> {
  const label = `${corpus.name} / ${base.env.spec.label} / ${base.env.build.label}`;
  const t0 = performance.now();
  const say = (s: string): void => {
    ctx.log(`  ${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s [${label}] ${s}`);
  };
  const spec = base.env.spec;
  const rounds = Math.max(ctx.runs, o.reads ? DEFAULT_DEPTH - 1 : 1);
  const s = await base.copy(join(dir, 'session'), NO_COMPACT);
  const days = await corpus.days(join(dir, 'days'));
  const started: BenchTree[] = [];
  const keepPeer = join(dir, 'fresh.sqfs');
  let b1: BenchTree | undefined;
  let b2: BenchTree | undefined;
  const out: StackResult = { figures: [], samples: {} };
  try {
    await s.start(1);
    started.push(s);
    await days.apply(1, [s.mnt]);
    await s.sq.commit();
    if (!STOPPED_CLEAN(await s.sq.stop()))
      throw new BenchError('stop committed again after a commit');
    b1 = await s.copy(join(dir, 'b1'));
    await s.start(2);
    say(`day 1 committed; ${rounds} rounds of commit / full pack${o.compact ? ' / compact' : ''}`);
    let compactCopy: BenchTree | undefined;
    const peerOut = join(dir, 'peer.sqfs');
    // What packed each timed commit (the native writer, or mksquashfs): said with the figure.
    const packed = new Set<string>();
    const contenders = [
      {
        name: 'commit',
        run: async () => {
          await run('sync', []);
          const c = await s.sq.commit();
          packed.add(str(c.data, 'packMethod') ?? 'not reported');
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
          const f = await fullPack(s.mnt, peerOut, spec);
          return { wallMs: f.wallMs, cpuMs: f.cpuMs, info: { bytes: f.bytes } };
        },
      },
      ...(o.compact
        ? [
            {
              name: 'compact',
              run: async () => {
                if (!compactCopy) throw new BenchError('no copy to compact');
                await run('sync', []);
                const c = await compactCopy.sq.compact();
                return {
                  wallMs: c.wallMs,
                  cpuMs: c.cpuMs,
                  info: { ...c.info, bytesAfter: num(c.data, 'bytesAfter') },
                };
              },
            },
          ]
        : []),
    ];
    out.samples = await alternate(contenders, {
      rounds,
      prepare: async (r) => {
        await days.apply(r + 2, [s.mnt]);
        if (o.compact && b1) compactCopy = await b1.copy(join(dir, `compact-${r}`));
      },
      after: async (r, got) => {
        const t = (n: string): string => secs(got[n]?.[r]?.wallMs ?? NaN);
        say(
          `round ${r + 1}: commit ${t('commit')}, full pack ${t('peer')}${o.compact ? `, compact ${t('compact')}` : ''}`,
        );
        await compactCopy?.remove();
        compactCopy = undefined;
        if (!STOPPED_CLEAN(await s.sq.stop()))
          throw new BenchError('stop committed again after a commit');
        if (r === DEFAULT_DEPTH - 2) {
          b2 = await s.copy(join(dir, 'b2'));
          await fsp.rename(peerOut, keepPeer);
        }
        if (r < rounds - 1) await s.start(r + 3);
      },
    });
    started.pop();
    const build = base.env.build.label;
    const fig = (id: FigureId, a: Sample[], b: Sample[], what: string): Figure => {
      const p = paired(a, b);
      return figure(id, {
        corpus: corpus.name,
        compressor: spec.label,
        build,
        value: p.ratio.median,
        shown: `${p.ratio.median.toFixed(3)} (${secs(p.a.median)} / ${secs(p.b.median)}; ${what})`,
        paired: p,
      });
    };
    const commits = out.samples.commit ?? [];
    const peers = out.samples.peer ?? [];
    const changes = commits.map((c) => c.info?.pendingFiles ?? NaN);
    out.figures.push(
      fig(
        corpus.change === 'patch' ? 'commit-patch' : 'commit-day',
        commits,
        peers,
        `${changes.join(', ')} changes; packed by ${[...packed].join(', ')}`,
      ),
    );
    if (o.compact) {
      const compacts = out.samples.compact ?? [];
      out.figures.push(fig('compact-day', compacts, peers, 'base + 1 layer'));
      const rss = Math.max(...compacts.map((c) => c.info?.rssTreeKb ?? NaN));
      const node = Math.max(...compacts.map((c) => c.info?.rssNodeKb ?? NaN));
      const mb = (rss * 1024) / 1e6;
      out.figures.push(
        figure('compact-rss', {
          corpus: corpus.name,
          compressor: spec.label,
          build,
          value: mb,
          shown: `${mb.toFixed(1)} MB (node alone ${((node * 1024) / 1e6).toFixed(1)} MB; max of ${compacts.length})`,
        }),
      );
    }
    if (o.reads && b2) await readFigures(corpus, b2, keepPeer, dir, ctx, out, say);
    return out;
  } finally {
    await days.close();
    for (const t of started) await t.sq.stop().catch(() => undefined);
  }
}

async function readFigures(
  corpus: Corpus,
  b2: BenchTree,
  freshImage: string,
  dir: string,
  ctx: Ctx,
  out: StackResult,
  say: (s: string) => void,
): Promise<void> {
  const stack = b2;
  const compacted = await b2.copy(join(dir, 'compacted'));
  const c = await compacted.sq.compact();
  out.compactedBase = {
    wallMs: c.wallMs,
    bytes: num(c.data, 'bytesAfter'),
    ...(typeof c.data.method === 'string' ? { method: c.data.method } : {}),
    ...(typeof c.data.methodReason === 'string' ? { reason: c.data.methodReason } : {}),
  };
  out.freshBytes = (await fsp.stat(freshImage)).size;
  await stack.start(DEFAULT_DEPTH + 1);
  const mounted: BenchTree[] = [stack];
  let fresh: Awaited<ReturnType<typeof mountLike>> | undefined;
  try {
    await compacted.start(1);
    mounted.push(compacted);
    fresh = await mountLike(freshImage, join(dir, 'fresh'), stack.mnt, stack.store);
    say(`reads: fresh image, base + ${DEFAULT_DEPTH} layers, compacted base; ${ctx.runs} rounds`);
    const r = await readRounds(
      [
        { name: 'fresh', tree: fresh.tree, loops: fresh.loops },
        { name: 'stack', tree: stack.mnt, loops: await loopsBacking(stack.store) },
        { name: 'compacted', tree: compacted.mnt, loops: await loopsBacking(compacted.store) },
      ],
      ctx.runs,
      ctx.cold,
    );
    out.reads = r;
    const f = r.fresh;
    if (!f) return;
    const kinds: Record<(typeof READ_KINDS)[number], string> = {
      findCold: 'find-cold',
      findWarm: 'find-warm',
      readCold: 'read-cold',
      readWarm: 'read-warm',
    };
    for (const who of ['stack', 'compacted'] as const) {
      const mine = r[who];
      if (!mine) continue;
      for (const k of READ_KINDS) {
        if (mine[k].length === 0) continue;
        const p = paired(mine[k], f[k]);
        const fetched = (xs: Sample[]): string => {
          const mb = Math.max(...xs.map((x) => x.info?.loopReadBytes ?? 0)) / 1e6;
          return `${mb.toFixed(1)} MB`;
        };
        const warm = k.endsWith('Warm')
          ? `; fetched from loop devices (max): ${fetched(mine[k])} / ${fetched(f[k])}`
          : '';
        out.figures.push(
          figure(`read-${who}-${kinds[k]}` as FigureId, {
            corpus: corpus.name,
            compressor: b2.env.spec.label,
            build: b2.env.build.label,
            value: p.ratio.median,
            shown: `${p.ratio.median.toFixed(2)} (${secs(p.a.median)} / ${secs(p.b.median)}${warm})`,
            paired: p,
          }),
        );
      }
    }
  } finally {
    await fresh?.close();
    for (const t of mounted) await t.sq.stop().catch(() => undefined);
  }
}
