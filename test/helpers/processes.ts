/** Test processes in groups of their own: stop a group, its children too, and know when it is gone. */
import { readdirSync, readFileSync } from 'node:fs';

const sleep = (ms: number): Promise<void> =>
  new Promise((r) => {
    setTimeout(r, ms);
  });

/** Processes (zombies left out) of process group pgid, read from /proc. */
export function groupMembers(pgid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses.
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(pgrp) === pgid && state !== 'Z') out.push(Number(name));
  }
  return out;
}

/** SIGKILL each process group and wait until none of its processes is left. */
export async function stopGroups(pgids: readonly number[]): Promise<void> {
  const groups = pgids.filter((g) => g > 0);
  for (const g of groups) {
    try {
      process.kill(-g, 'SIGKILL');
    } catch {
      // the group is gone already
    }
  }
  // SIGKILL cannot be caught: polling only decides how soon this returns.
  while (groups.some((g) => groupMembers(g).length > 0)) await sleep(20);
}
