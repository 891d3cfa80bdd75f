/**
 * The results as data (latest.json), as Markdown (latest.md) and as plain
 * tables for the terminal. The targets table gives every figure with its
 * peer, the paired ratio and its spread, the CPU time of both sides, the
 * load average, the before (a baseline build of the same run, else the
 * issue's value) and PASS / MISS / UNRELIABLE.
 */
import type { DailyResult } from './scenario-daily.js';
import type { MostResult } from './scenario-most.js';
import type { StackResult } from './scenario-stack.js';
import type { Figure } from './figures.js';
import type { Machine } from './machine.js';
import { SPREAD_LIMIT } from './pairs.js';
import { READ_KINDS } from './reads.js';
import { mdTable, secs, size, spread, textTable } from './format.js';
import { summarize, type Summary } from './stats.js';

export interface CorpusInfo {
  name: string;
  description?: string;
  files?: number;
  bytes?: number;
  prepareMs?: number;
  cacheHit?: boolean;
  skipped?: string;
}

export interface Detail {
  corpus: string;
  compressor: string;
  build: string;
  initMs?: number;
  stack?: StackResult;
  daily?: DailyResult;
  most?: MostResult;
}

export interface BenchResult {
  format: 'squashtree-bench/2';
  machine: Machine;
  settings: Record<string, unknown> & { command: string; runs: number; scale: string };
  nodeStartup: Record<string, { version: Summary; bare: Summary }>;
  corpora: CorpusInfo[];
  figures: Figure[];
  details: Detail[];
  errors: { where: string; error: string }[];
  loadAtEnd: number;
  wallMs: number;
  leftovers: { mounts: string[]; loops: string[] };
}

const PEERS: [string, string][] = [
  [
    'full pack',
    'full mksquashfs of the merged tree, what the old recipe and squashmount do at every shutdown',
  ],
  [
    'fresh image',
    'one fresh mksquashfs image of the same tree, mounted like squashtree mounts its images',
  ],
  ['fresh (bytes)', 'the size of one fresh mksquashfs image of the same tree'],
  ['day change', "each day's new and changed files packed alone with mksquashfs (bytes)"],
];

function peerShort(f: Figure): string {
  if (f.peer.startsWith('full mksquashfs')) return 'full pack';
  if (f.peer.startsWith('one fresh mksquashfs image of the same tree (bytes)'))
    return 'fresh (bytes)';
  if (f.peer.startsWith('the single fresh')) return 'fresh image';
  if (f.peer.startsWith("each day's")) return 'day change';
  return f.peer;
}

function before(f: Figure, all: readonly Figure[]): string {
  const b = all.find(
    (x) =>
      x !== f &&
      x.build !== f.build &&
      x.id === f.id &&
      x.corpus === f.corpus &&
      x.compressor === f.compressor,
  );
  if (b && f.build === 'current')
    return `${b.shown.split(' (')[0] ?? ''} (${b.build}, ${b.verdict})`;
  return f.now ?? '-';
}

function verdict(f: Figure): string {
  return f.informative ? `${f.verdict} (informative: ${f.informative})` : f.verdict;
}

function figureRow(f: Figure, all: readonly Figure[], withBuild: boolean): string[] {
  const p = f.paired;
  const pct = p && Number.isFinite(p.spread) ? `${(p.spread * 100).toFixed(0)}%` : '-';
  const ratio = p ? spread(p.ratio, (n) => n.toFixed(3)) : f.value.toFixed(3);
  const cpu = p
    ? `${secs(p.aCpu.median)} / ${secs(p.bCpu.median)} (${Number.isFinite(p.cpuRatio.median) ? p.cpuRatio.median.toFixed(3) : '-'})`
    : '-';
  const load = p ? spread(p.load, (n) => n.toFixed(2)) : '-';
  return [
    f.issue,
    f.title,
    f.corpus,
    f.compressor,
    ...(withBuild ? [f.build] : []),
    peerShort(f),
    f.shown,
    ratio,
    pct,
    cpu,
    load,
    f.target ?? '-',
    before(f, all),
    verdict(f),
  ];
}

const FIG_HEAD = (withBuild: boolean): string[] => [
  'issue',
  'figure',
  'corpus',
  'compressor',
  ...(withBuild ? ['build'] : []),
  'peer',
  'measured (median)',
  'pair ratios [min–max]',
  'spread',
  'CPU squashtree / peer (ratio)',
  'load',
  'target',
  'before',
  'result',
];

function fleetTable(d: DailyResult): { head: string[]; rows: string[][] } {
  const first = d.days[0]?.mounted?.commitMs ?? NaN;
  return {
    head: [
      'day',
      'change',
      "day's change",
      'daily-stop: layer / uploaded',
      'follower got',
      'offline follower got',
      'mounted: layer / uploaded',
      'mounted commit (vs 1st)',
      'follower got',
      'offline follower got',
    ],
    rows: d.days.map((x) => [
      String(x.day),
      x.change,
      size(x.refBytes),
      `${size(x.daily.layerBytes)}${x.daily.compacted ? ' (stop compacted)' : ''} / ${size(x.daily.uploaded)}`,
      size(x.pulls.daily?.bytes ?? NaN),
      size(x.pulls.dailyOffline?.bytes ?? NaN),
      `${size(x.mounted?.layerBytes ?? NaN)} / ${size(x.mounted?.uploaded ?? NaN)}`,
      `${secs(x.mounted?.commitMs ?? NaN)} (${((x.mounted?.commitMs ?? NaN) / first).toFixed(2)}x)`,
      size(x.pulls.mounted?.bytes ?? NaN),
      size(x.pulls.mountedOffline?.bytes ?? NaN),
    ]),
  };
}

function readTable(s: StackResult): { head: string[]; rows: string[][] } {
  const rows: string[][] = [];
  for (const [who, r] of Object.entries(s.reads ?? {})) {
    rows.push([
      who,
      ...READ_KINDS.map((k) => {
        const xs = r[k];
        if (xs.length === 0) return '-';
        const mb = Math.max(...xs.map((x) => x.info?.loopReadBytes ?? 0)) / 1e6;
        return `${spread(summarize(xs.map((x) => x.wallMs)))} (${mb.toFixed(1)} MB fetched)`;
      }),
    ]);
  }
  return {
    head: ['tree', 'find+stat cold', 'find+stat warm', 'read-all cold', 'read-all warm'],
    rows,
  };
}

function machineRows(r: BenchResult): string[][] {
  const m = r.machine;
  return [
    ['cores', `${m.cores} (${m.cpu})`],
    ['memory', size(m.memoryBytes)],
    ['kernel (uname -r)', m.kernel],
    ['squashfs-tools', m.mksquashfs],
    ['node', m.node],
    ['squashtree', `${m.squashtree} (${m.commit})`],
    ['temp dir filesystem', m.tmpFs],
    [
      'proactive reclaim (DAMON)',
      `${m.damon}${m.damon.includes('pageout') ? ': idle page cache is paged out within seconds, so a warm read right after a cold one is partly cold on a big tree; each warm figure says how many MB its runs fetched from the loop devices (0 is truly warm)' : ''}`,
    ],
    [
      'load average (1 min) at start / end',
      `${m.loadAtStart.toFixed(2)} / ${r.loadAtEnd.toFixed(2)}`,
    ],
  ];
}

export function markdownReport(r: BenchResult): string {
  const withBuild = r.figures.some((f) => f.build !== 'current');
  const counts = (['PASS', 'MISS', 'UNRELIABLE'] as const)
    .map((v) => `${r.figures.filter((f) => f.verdict === v && !f.informative).length} ${v}`)
    .join(', ');
  const out: string[] = [
    '# squashtree benchmark',
    '',
    `Measured ${r.machine.date} by \`${r.settings.command}\` (total ${secs(r.wallMs)}): ${counts} (informative figures not counted).`,
    '',
    '## Machine',
    '',
    mdTable(['what', 'value'], machineRows(r)),
    '',
    '## How each figure is taken',
    '',
    `- **Pairs.** Every timing is ${r.settings.runs} alternating rounds: the squashtree command and its peer back to back, in the order A B in even rounds and B A in odd ones. A figure is the median of the per-round ratios; its spread is (max - min) / median of those ratios. A spread over ${SPREAD_LIMIT * 100}% (or a single round) makes the figure UNRELIABLE instead of PASS or MISS. CPU is user + system time of each side's process tree (RUSAGE_CHILDREN deltas), load the 1-minute load average at the start of each run.`,
    '- **Peers.** ' + PEERS.map(([k, v]) => `*${k}*: ${v}`).join('; ') + '.',
    '- **Commit and compact.** Day 1 is committed untimed; each round then applies the next day (or patch) to the mounted tree and runs `squashtree commit` (wall time of the whole CLI process, node start-up included), the full pack of the merged tree, and `squashtree compact` of a fresh copy of the base + day 1 store, in alternating order (the peer in the middle). The tree stops and starts between rounds, so each commit is the first of its session. `sync` runs before each timed step.',
    `- **Reads.** After day 2 the tree is base + 2 layers, the deepest stack the default policy mounts. It, the same store compacted, and round 1's full-pack image (the fresh image, mounted with squashtree's own squashfs and overlay options over a tmpfs upper) are read in alternating rounds: \`find DIR -type f -print0 | xargs -0 stat\` and \`tar -cf - -C DIR . | cat\`, cold (\`sync; echo 3 > /proc/sys/vm/drop_caches\`) and right after that warm.`,
    "- **Size and fleet.** Eight days of the default policy (compact-after as built in): a builder that stops daily (its stops compact), then one `compact`, against a fresh image of the same tree. With the fleet, it and a builder that stays mounted publish daily to a docker-registry on 127.0.0.1; a follower of each pulls daily (`pull --restart`), another is offline for days 1-5. Downloads are `pull --json` image bytes, weighed against each day's own change.",
    '',
    '## Targets',
    '',
    mdTable(
      FIG_HEAD(withBuild),
      r.figures.map((f) => figureRow(f, r.figures, withBuild)),
    ),
    '',
  ];
  for (const c of r.corpora) {
    out.push(`## Corpus ${c.name}`, '');
    if (c.skipped) {
      out.push(`skipped: ${c.skipped}`, '');
      continue;
    }
    out.push(
      c.description ?? '',
      '',
      `${(c.files ?? 0).toLocaleString('en')} files, ${size(c.bytes ?? 0)} apparent; prepared in ${secs(c.prepareMs ?? NaN)}${c.cacheHit ? ' (from the cache)' : ''}.`,
      '',
    );
    for (const d of r.details.filter((x) => x.corpus === c.name)) {
      const tag = `${d.compressor}${withBuild ? `, ${d.build}` : ''}`;
      if (d.initMs !== undefined) out.push(`\`init\` (${tag}): ${secs(d.initMs)}.`, '');
      if (d.stack?.reads) {
        const t = readTable(d.stack);
        const cb = d.stack.compactedBase;
        out.push(
          `### Reads (${tag})`,
          '',
          `Compacted base: ${size(cb?.bytes ?? NaN)} in ${secs(cb?.wallMs ?? NaN)}${cb?.method ? ` by ${cb.method}${cb.reason ? ` (${cb.reason})` : ''}` : ''}; fresh image ${size(d.stack.freshBytes ?? NaN)}. Medians [min–max] and the most any run fetched from the tree's loop devices.`,
          '',
          mdTable(t.head, t.rows),
          '',
        );
      }
      if (d.daily && d.daily.days.some((x) => x.mounted)) {
        const t = fleetTable(d.daily);
        out.push(`### Fleet, day by day (${tag})`, '', mdTable(t.head, t.rows), '');
      }
    }
  }
  if (r.errors.length > 0) {
    out.push(
      '## Errors',
      '',
      ...r.errors.map((e) => `- ${e.where}: \`${e.error.split('\n')[0] ?? ''}\``),
      '',
    );
  }
  out.push(
    `Cleanup: ${r.leftovers.mounts.length} mounts and ${r.leftovers.loops.length} loop devices left behind.`,
    '',
  );
  return out.join('\n');
}

export function terminalReport(r: BenchResult): string {
  const withBuild = r.figures.some((f) => f.build !== 'current');
  const rows = r.figures.map((f) => {
    const row = figureRow(f, r.figures, withBuild);
    return [
      row[1] ?? '',
      f.corpus,
      f.compressor,
      ...(withBuild ? [f.build] : []),
      f.shown,
      row[withBuild ? 8 : 7] ?? '',
      f.target ?? '-',
      verdict(f),
    ];
  });
  const head = [
    'figure',
    'corpus',
    'compressor',
    ...(withBuild ? ['build'] : []),
    'measured',
    'spread',
    'target',
    'result',
  ];
  const errs = r.errors.map((e) => `FAILED ${e.where}: ${e.error.split('\n')[0] ?? ''}`);
  return [
    textTable(head, rows),
    ...errs,
    '',
    `total ${secs(r.wallMs)}; load ${r.machine.loadAtStart.toFixed(2)} -> ${r.loadAtEnd.toFixed(2)}; left mounted: ${r.leftovers.mounts.length}, loop devices left: ${r.leftovers.loops.length}`,
  ].join('\n');
}
