/** The machine a result was measured on, for the report. */
import { cpus, loadavg, release, totalmem, tmpdir } from 'node:os';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { run } from './exec.js';
import { ROOT } from './squashtree.js';

export interface Machine {
  cores: number;
  cpu: string;
  memoryBytes: number;
  kernel: string;
  mksquashfs: string;
  node: string;
  squashtree: string;
  commit: string;
  tmpFs: string;
  date: string;
  /** 1-minute load average when the run started (other work on the machine skews timings). */
  loadAtStart: number;
  /** Proactive reclaim (DAMON) that pages out idle page cache: "warm" reads may not be. */
  damon: string;
}

async function readTrim(path: string): Promise<string | undefined> {
  try {
    return (await fsp.readFile(path, 'utf8')).trim();
  } catch {
    return undefined;
  }
}

/** DAMON kdamonds that are on, with their schemes' actions (pageout evicts idle page cache). */
async function damonState(): Promise<string> {
  const root = '/sys/kernel/mm/damon/admin/kdamonds';
  let ids: string[];
  try {
    ids = (await fsp.readdir(root)).filter((n) => /^\d+$/.test(n));
  } catch {
    return 'not present';
  }
  const on: string[] = [];
  for (const id of ids) {
    if ((await readTrim(join(root, id, 'state'))) !== 'on') continue;
    const actions: string[] = [];
    const contexts = join(root, id, 'contexts');
    for (const c of await fsp.readdir(contexts).catch(() => [] as string[])) {
      const schemes = join(contexts, c, 'schemes');
      for (const sc of await fsp.readdir(schemes).catch(() => [] as string[])) {
        const action = await readTrim(join(schemes, sc, 'action'));
        const age = await readTrim(join(schemes, sc, 'access_pattern', 'age', 'min'));
        if (action)
          actions.push(`${action}${age ? ` (idle >= ${age} aggregation intervals)` : ''}`);
      }
    }
    on.push(`kdamond ${id}: ${actions.join(', ') || 'monitoring'}`);
  }
  return on.length > 0 ? `on: ${on.join('; ')}` : 'off';
}

async function firstLine(cmd: string, args: string[]): Promise<string> {
  try {
    const r = await run(cmd, args, { okCodes: [0, 1] });
    return (r.stdout || r.stderr).split('\n')[0]?.trim() ?? '';
  } catch {
    return 'unknown';
  }
}

export async function describeMachine(): Promise<Machine> {
  const pkg = JSON.parse(await fsp.readFile(join(ROOT, 'package.json'), 'utf8')) as {
    version: string;
  };
  const head = await firstLine('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']);
  const dirty = await firstLine('git', ['-C', ROOT, 'status', '--porcelain', '--', 'src']);
  return {
    cores: cpus().length,
    cpu: cpus()[0]?.model ?? 'unknown',
    memoryBytes: totalmem(),
    kernel: release(),
    mksquashfs: await firstLine('mksquashfs', ['-version']),
    node: process.version,
    squashtree: pkg.version,
    commit: `${head}${dirty ? ' (src modified)' : ''}`,
    tmpFs: (await firstLine('findmnt', ['-n', '-o', 'FSTYPE,SOURCE', '-T', tmpdir()])).replace(
      /\s+/g,
      ' ',
    ),
    date: new Date().toISOString(),
    loadAtStart: loadavg()[0] ?? NaN,
    damon: await damonState(),
  };
}
