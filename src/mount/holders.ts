/**
 * Which processes keep a mounted tree busy: an open file, a cwd, a root, an
 * executable or a mapped file below it. Read straight from /proc, so no
 * lsof or fuser is needed.
 */
import { promises as fsp } from 'node:fs';
import { isWithin } from '../config/values.js';

export interface Holder {
  pid: number;
  command: string;
  /** What ties it to the tree: cwd, root, exe, fd or mmap, and the path. */
  uses: string[];
}

async function readlinkSafe(p: string): Promise<string | undefined> {
  try {
    return await fsp.readlink(p);
  } catch {
    return undefined;
  }
}

export async function findHolders(dir: string): Promise<Holder[]> {
  const out: Holder[] = [];
  const pids = (await fsp.readdir('/proc')).filter((n) => /^\d+$/.test(n));
  for (const pid of pids) {
    if (Number(pid) === process.pid) continue;
    const uses: string[] = [];
    for (const what of ['cwd', 'root', 'exe']) {
      const t = await readlinkSafe(`/proc/${pid}/${what}`);
      if (t && isWithin(t, dir) && !(what === 'root' && t === '/')) uses.push(`${what} ${t}`);
    }
    let fds: string[] = [];
    try {
      fds = await fsp.readdir(`/proc/${pid}/fd`);
    } catch {
      // the process ended or is not ours to read
    }
    for (const fd of fds) {
      const t = await readlinkSafe(`/proc/${pid}/fd/${fd}`);
      if (t && isWithin(t.replace(/ \(deleted\)$/, ''), dir)) uses.push(`fd ${fd} ${t}`);
    }
    try {
      const maps = await fsp.readFile(`/proc/${pid}/maps`, 'utf8');
      for (const line of maps.split('\n')) {
        const p = line.slice(line.indexOf('/'));
        if (line.includes('/') && isWithin(p, dir)) {
          uses.push(`mmap ${p}`);
          break;
        }
      }
    } catch {
      // gone or not readable
    }
    if (uses.length === 0) continue;
    let command = '';
    try {
      command = (await fsp.readFile(`/proc/${pid}/cmdline`, 'utf8'))
        .split('\0')
        .filter(Boolean)
        .join(' ');
    } catch {
      command = '?';
    }
    out.push({ pid: Number(pid), command: command || '?', uses });
  }
  return out;
}
