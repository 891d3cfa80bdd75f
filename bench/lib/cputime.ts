/**
 * CPU time of the benchmark's finished children: cutime + cstime of this
 * process (what getrusage(RUSAGE_CHILDREN) reports), which counts every
 * child once it is reaped, and with it every process that child waited for.
 * Node has no binding for RUSAGE_CHILDREN; /proc/self/stat has the same
 * counters in clock ticks. The benchmark runs one measured command at a
 * time, so the delta across a command is that command's process tree.
 */
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

function clockTicks(): number {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number(r.stdout.trim());
  return Number.isFinite(n) && n > 0 ? n : 100;
}

const TICKS = clockTicks();

/** Fields after "(comm)" in /proc/self/stat; cutime and cstime are the 16th and 17th fields. */
export function parseChildTicks(stat: string): number {
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state), so field N is rest[N - 3].
  return Number(rest[13]) + Number(rest[14]);
}

export function childCpuMs(): number {
  try {
    return (parseChildTicks(readFileSync('/proc/self/stat', 'utf8')) * 1000) / TICKS;
  } catch {
    return NaN;
  }
}
