/**
 * Timings as alternating rounds: every contender (the squashtree figure and
 * its peer, or several stacks and the one image they are read against) runs
 * back to back in each round, in the given order in even rounds and in the
 * reverse order in odd ones (A B, B A, ...). A figure is the ratio of two
 * contenders within each round: load that comes and goes between rounds
 * moves both sides of a ratio, and the spread of the ratios shows what is
 * left. A figure whose ratios spread by more than SPREAD_LIMIT of their
 * median, or that has a single round, is unreliable: it is neither a pass
 * nor a miss.
 */
import { loadavg } from 'node:os';
import { summarize, type Summary } from './stats.js';

export const SPREAD_LIMIT = 0.2;

/** One timed run of one contender. */
export interface Sample {
  wallMs: number;
  /** User + system CPU time of its process tree. */
  cpuMs: number;
  /** 1-minute load average when it started. */
  load: number;
  /** Anything else measured alongside (peak RSS, bytes read from loop devices, ...). */
  info?: Record<string, number>;
}

export type Timed = Omit<Sample, 'load'>;

export interface Contender {
  name: string;
  run(round: number): Promise<Timed>;
}

export interface RoundsOptions {
  rounds: number;
  /** Untimed set-up before a round (apply a sync, copy a store). */
  prepare?: (round: number) => Promise<void>;
  /** Untimed work after a round (stop and start again); sees the samples so far. */
  after?: (round: number, samples: Record<string, Sample[]>) => Promise<void>;
}

/** Run the contenders in alternating order; samples by contender name, in round order. */
export async function alternate(
  contenders: readonly Contender[],
  o: RoundsOptions,
): Promise<Record<string, Sample[]>> {
  const out: Record<string, Sample[]> = {};
  for (const c of contenders) out[c.name] = [];
  for (let r = 0; r < o.rounds; r++) {
    await o.prepare?.(r);
    const order = r % 2 === 0 ? contenders : [...contenders].reverse();
    for (const c of order) {
      const load = loadavg()[0] ?? NaN;
      const t = await c.run(r);
      out[c.name]?.push({ ...t, load });
    }
    await o.after?.(r, out);
  }
  return out;
}

/** A figure: contender a against its peer b, round by round. */
export interface Paired {
  n: number;
  a: Summary;
  b: Summary;
  aCpu: Summary;
  bCpu: Summary;
  /** a / b of each round, in round order. */
  ratios: number[];
  ratio: Summary;
  /** (max - min) / median of the ratios. */
  spread: number;
  /** a / b of each round's CPU time: steadier than wall time under load, 10 ms resolution. */
  cpuRatio: Summary;
  /** Load average at the start of each run of both sides. */
  load: Summary;
  reliable: boolean;
}

export function paired(a: readonly Sample[], b: readonly Sample[]): Paired {
  const n = Math.min(a.length, b.length);
  const ratios: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = a[i]?.wallMs ?? NaN;
    const y = b[i]?.wallMs ?? NaN;
    ratios.push(y > 0 ? x / y : NaN);
    const cx = a[i]?.cpuMs ?? NaN;
    const cy = b[i]?.cpuMs ?? NaN;
    if (cy > 0) cpu.push(cx / cy);
  }
  const ratio = summarize(ratios.filter(Number.isFinite));
  const spread = ratio.median > 0 ? (ratio.max - ratio.min) / ratio.median : NaN;
  return {
    n,
    a: summarize(a.map((s) => s.wallMs)),
    b: summarize(b.map((s) => s.wallMs)),
    aCpu: summarize(a.map((s) => s.cpuMs).filter(Number.isFinite)),
    bCpu: summarize(b.map((s) => s.cpuMs).filter(Number.isFinite)),
    ratios,
    ratio,
    spread,
    cpuRatio: summarize(cpu.filter(Number.isFinite)),
    load: summarize([...a, ...b].map((s) => s.load).filter(Number.isFinite)),
    reliable: ratio.n >= 2 && Number.isFinite(spread) && spread <= SPREAD_LIMIT,
  };
}
