/**
 * Eight days of the default policy, from a base `init` made:
 *
 * - a builder that stops daily: each day sync, `commit`, `stop` (which
 *   compacts when the default policy says so), `start`; after day 8 one
 *   `compact` if more than one image is left, and the base's bytes against
 *   a fresh mksquashfs image of the same tree (the size figure);
 * - with a registry (the fleet), that builder publishes each day, and so
 *   does a second builder that stays mounted (sync, `commit`, `publish`).
 *   For each builder a follower pulls every day (`pull --restart`) and one
 *   is offline for days 1-5 (it pulls on day 0 and catches up on day 6). Each
 *   day's own change (its new and changed files, packed alone by
 *   mksquashfs) is the reference the downloads are weighed against.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import type { Corpus } from './corpus.js';
import { BenchError, run } from './exec.js';
import { deepNum, num, pulledImages, type HowPulled } from './fields.js';
import { figure, type Figure } from './figures.js';
import { size } from './format.js';
import type { Registry } from './registry.js';
import type { Ctx } from './scenario-stack.js';
import { Squashtree, defaultsToml, treeToml } from './squashtree.js';
import { BenchTree, fullPack } from './tree.js';

export const FLEET_DAYS = 8;
export const OFFLINE_UNTIL = 6;

export interface PullDay {
  bytes: number;
  transfer: number;
  how: Record<HowPulled, { count: number; bytes: number }>;
}

export interface FleetDay {
  day: number;
  change: string;
  /** The day's new and changed files, packed alone. */
  refBytes: number;
  daily: {
    commitMs: number;
    layerBytes: number;
    stopMs: number;
    compacted: boolean;
    uploaded: number;
  };
  mounted?: { commitMs: number; layerBytes: number; uploaded: number };
  pulls: Partial<Record<Follower, PullDay>>;
}

type Follower = 'daily' | 'mounted' | 'dailyOffline' | 'mountedOffline';

export interface DailyResult {
  figures: Figure[];
  days: FleetDay[];
  /** Follower trees that did not show their builder's tree at the end. */
  mismatches: string[];
}

class FollowerTree {
  readonly sq: Squashtree;
  readonly mnt: string;
  constructor(
    readonly dir: string,
    base: BenchTree,
    readonly ref: string,
  ) {
    this.mnt = join(dir, 'tree');
    this.sq = new Squashtree(
      base.env.build,
      join(dir, 'f.toml'),
      join(dir, 'state'),
      base.env.probe,
      join(dir, 'scratch'),
    );
  }
  async setup(spec: BenchTree['env']['spec']): Promise<void> {
    await fsp.mkdir(this.mnt, { recursive: true });
    await fsp.mkdir(join(this.dir, 'scratch'), { recursive: true });
    await fsp.writeFile(
      join(this.dir, 'f.toml'),
      defaultsToml(spec) + treeToml('f', this.mnt, join(this.dir, 'store')),
    );
  }
  async pull(restart: boolean): Promise<PullDay> {
    const r = await this.sq.pull('f', this.ref, restart);
    return {
      bytes: deepNum(r.data, 'bytesDownloaded'),
      transfer: deepNum(r.data, 'transferBytes'),
      how: pulledImages(r.data),
    };
  }
}

async function sameTree(a: string, b: string, checksum: boolean): Promise<boolean> {
  const { stdout } = await run('rsync', [
    '-n',
    '-a',
    ...(checksum ? ['-c'] : []),
    '-O',
    '--delete',
    '-i',
    `${a}/`,
    `${b}/`,
  ]);
  return stdout.split('\n').filter((l) => l && !l.startsWith('.d')).length === 0;
}

export async function runDaily(
  corpus: Corpus,
  base: BenchTree,
  dir: string,
  ctx: Ctx & { checksum: boolean },
  registry: Registry | undefined,
): Promise<DailyResult> {
  const spec = base.env.spec;
  const build = base.env.build.label;
  const label = `${corpus.name} / ${spec.label} / ${build}`;
  const t0 = performance.now();
  const say = (s: string): void => {
    ctx.log(`  ${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s [${label}] ${s}`);
  };
  const days = await corpus.days(join(dir, 'days'));
  if (days.count < FLEET_DAYS)
    throw new BenchError(`${corpus.name} has ${days.count} days, not ${FLEET_DAYS}`);
  const d = await base.copy(join(dir, 'builder-daily'), undefined);
  const m = registry ? await base.copy(join(dir, 'builder-mounted'), undefined) : undefined;
  const repo = (wf: string): string =>
    `${registry?.host ?? ''}/bench/${`${corpus.name}-${spec.compression}-${wf}-${build}`.toLowerCase().replace(/[^a-z0-9._-]+/g, '-')}`;
  const followers = new Map<Follower, FollowerTree>();
  if (registry && m) {
    for (const [f, ref] of [
      ['daily', repo('daily')],
      ['dailyOffline', repo('daily')],
      ['mounted', repo('mounted')],
      ['mountedOffline', repo('mounted')],
    ] as const) {
      const t = new FollowerTree(join(dir, `follower-${f}`), base, ref);
      await t.setup(spec);
      followers.set(f, t);
    }
  }
  const out: DailyResult = { figures: [], days: [], mismatches: [] };
  try {
    await d.start(1);
    if (m) await m.start(1);
    if (registry && m) {
      await d.sq.publish('bench', repo('daily'));
      await m.sq.publish('bench', repo('mounted'));
      // Offline followers are not mounted: only what they download counts.
      for (const [name, f] of followers) {
        await f.pull(false);
        if (!name.endsWith('Offline')) await f.sq.start('f');
      }
      say(`day 0 published; ${followers.size} followers pulled the base`);
    }
    for (let day = 1; day <= FLEET_DAYS; day++) {
      const info = await days.apply(day, m ? [d.mnt, m.mnt] : [d.mnt]);
      const refDir = join(dir, `day-${day}`);
      await days.changed(day, refDir);
      const ref = await fullPack(refDir, `${refDir}.sqfs`, spec);
      await fsp.rm(refDir, { recursive: true, force: true });
      await fsp.rm(`${refDir}.sqfs`, { force: true });
      const c = await d.sq.commit();
      const st = await d.sq.stop();
      await d.start();
      const fd: FleetDay = {
        day,
        change: `${info.label}: ${info.detail}`,
        refBytes: ref.bytes,
        daily: {
          commitMs: c.wallMs,
          layerBytes: num(c.data, 'layerBytes'),
          stopMs: st.wallMs,
          compacted:
            typeof st.data.compact === 'object' &&
            st.data.compact !== null &&
            (st.data.compact as { compacted?: unknown }).compacted === true,
          uploaded: NaN,
        },
        pulls: {},
      };
      if (registry && m) {
        fd.daily.uploaded = num((await d.sq.publish('bench', repo('daily'))).data, 'uploadedBytes');
        const mc = await m.sq.commit();
        const mp = await m.sq.publish('bench', repo('mounted'));
        fd.mounted = {
          commitMs: mc.wallMs,
          layerBytes: num(mc.data, 'layerBytes'),
          uploaded: num(mp.data, 'uploadedBytes'),
        };
        for (const [name, f] of followers) {
          const offline = name.endsWith('Offline');
          if (offline && day !== OFFLINE_UNTIL) continue;
          fd.pulls[name] = await f.pull(!offline);
        }
      }
      out.days.push(fd);
      say(
        `day ${day}: change ${size(ref.bytes)}, daily-stop layer ${size(fd.daily.layerBytes)}${fd.daily.compacted ? ' (stop compacted)' : ''}${fd.pulls.daily ? `, followers got ${size(fd.pulls.daily.bytes)} / ${size(fd.pulls.mounted?.bytes ?? NaN)}` : ''}`,
      );
    }
    if (registry && m) {
      for (const [name, f] of followers) {
        if (name.endsWith('Offline')) continue;
        const builder = name.startsWith('daily') ? d : m;
        if (!(await sameTree(builder.mnt, f.mnt, ctx.checksum))) out.mismatches.push(name);
        await f.sq.stop('f');
      }
      await m.sq.stop();
      fleetFigures(corpus.name, spec.label, build, out);
    }
    await d.sq.stop();
    const left = await d.images();
    if (left.images > 1) await d.sq.compact();
    const after = await d.images();
    await d.start(1);
    const fresh = await fullPack(d.mnt, join(dir, 'fresh.sqfs'), spec);
    await d.sq.stop();
    await fsp.rm(join(dir, 'fresh.sqfs'), { force: true });
    out.figures.push(
      figure('size-8days', {
        corpus: corpus.name,
        compressor: spec.label,
        build,
        value: after.bytes / fresh.bytes,
        shown: `${(after.bytes / fresh.bytes).toFixed(3)} (${size(after.bytes)} / ${size(fresh.bytes)})`,
      }),
    );
    return out;
  } finally {
    await days.close();
    for (const f of followers.values()) await f.sq.stop('f').catch(() => undefined);
    for (const t of [d, m]) await t?.sq.stop().catch(() => undefined);
  }
}

function fleetFigures(corpus: string, compressor: string, build: string, out: DailyResult): void {
  const sum = (f: (x: FleetDay) => number, from = 1, to = FLEET_DAYS): number =>
    out.days.filter((x) => x.day >= from && x.day <= to).reduce((n, x) => n + f(x), 0);
  const ref = sum((x) => x.refBytes);
  const bad =
    out.mismatches.length > 0
      ? `; follower trees differ from the builder's: ${out.mismatches.join(', ')}`
      : '';
  const one = (id: 'fleet-daily-stop' | 'fleet-mounted', who: Follower): void => {
    const got = sum((x) => x.pulls[who]?.bytes ?? NaN);
    const how = (h: HowPulled): number => sum((x) => x.pulls[who]?.how[h].count ?? 0);
    out.figures.push(
      figure(id, {
        corpus,
        compressor,
        build,
        value: bad ? NaN : got / ref,
        shown: `${(got / ref).toFixed(2)}x (${size(got)} / ${size(ref)}; images downloaded ${how('downloaded')}, rebuilt ${how('rebuilt')}, reused ${how('reused')}${bad})`,
      }),
    );
  };
  one('fleet-daily-stop', 'daily');
  one('fleet-mounted', 'mounted');
  const refOff = sum((x) => x.refBytes, 1, OFFLINE_UNTIL);
  for (const [id, who] of [
    ['fleet-offline-daily-stop', 'dailyOffline'],
    ['fleet-offline-mounted', 'mountedOffline'],
  ] as const) {
    const p = out.days.find((x) => x.day === OFFLINE_UNTIL)?.pulls[who];
    const got = p?.bytes ?? NaN;
    out.figures.push(
      figure(id, {
        corpus,
        compressor,
        build,
        value: bad ? NaN : got / refOff,
        shown: `${(got / refOff).toFixed(2)}x (${size(got)} on day ${OFFLINE_UNTIL} / ${size(refOff)} of days 1-${OFFLINE_UNTIL}; images downloaded ${p?.how.downloaded.count ?? 0}, rebuilt ${p?.how.rebuilt.count ?? 0}${bad})`,
      }),
    );
  }
}
