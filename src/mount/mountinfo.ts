/** What is mounted where, from /proc/self/mountinfo (the kernel's own record). */
import { promises as fsp } from 'node:fs';

export interface MountEntry {
  id: number;
  parent: number;
  source: string;
  mountPoint: string;
  fstype: string;
  options: string;
  superOptions: string;
}

/** mountinfo escapes space, tab, newline and backslash as \ooo octal. */
export function unescapeMountField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const [left, right] = line.split(' - ');
    if (left === undefined || right === undefined) continue;
    const l = left.split(' ');
    const r = right.split(' ');
    out.push({
      id: Number(l[0]),
      parent: Number(l[1]),
      mountPoint: unescapeMountField(l[4] ?? ''),
      options: l[5] ?? '',
      fstype: r[0] ?? '',
      source: unescapeMountField(r[1] ?? ''),
      superOptions: r[2] ?? '',
    });
  }
  return out;
}

export async function readMounts(): Promise<MountEntry[]> {
  return parseMountinfo(await fsp.readFile('/proc/self/mountinfo', 'utf8'));
}

/** The mount that is visible at `path` (the last one mounted there), if any. */
export function topMountAt(mounts: readonly MountEntry[], path: string): MountEntry | undefined {
  let top: MountEntry | undefined;
  for (const m of mounts) if (m.mountPoint === path) top = m;
  return top;
}

/** Mounts at or below `path`, deepest first (the order to unmount them in). */
export function mountsUnder(mounts: readonly MountEntry[], path: string): MountEntry[] {
  const prefix = path.endsWith('/') ? path : `${path}/`;
  return mounts
    .filter((m) => m.mountPoint === path || m.mountPoint.startsWith(prefix))
    .reverse()
    .sort((a, b) => b.mountPoint.length - a.mountPoint.length);
}

/** Value of one option (such as upperdir) in an overlay's super options. */
export function superOption(m: MountEntry, key: string): string | undefined {
  for (const part of m.superOptions.split(',')) {
    const eq = part.indexOf('=');
    // The kernel escapes ",= \t\n\\" in option values (seq_show_option) as it does in paths.
    if (eq > 0 && part.slice(0, eq) === key) return unescapeMountField(part.slice(eq + 1));
  }
  return undefined;
}
