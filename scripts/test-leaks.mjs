// What a test run left behind: mounts below its temp dir and loop devices
// whose backing file lies below it. The runner gives every run a temp dir
// of its own (TMPDIR), so whatever is found there is this run's, never a
// concurrent run's or the host's.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const unescape = (p) => p.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
const below = (root, p) => p === root || p.startsWith(`${root}/`);

/** Mount points at or below root (with their fstype), deepest first. */
export function mountsBelow(root) {
  const seen = new Map();
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    const point = unescape(f[4] ?? '');
    const sep = f.indexOf('-');
    if (point && below(root, point)) seen.set(point, sep >= 0 ? (f[sep + 1] ?? '') : '');
  }
  return [...seen]
    .map(([point, fstype]) => ({ point, fstype }))
    .sort((a, b) => b.point.length - a.point.length);
}

/** Loop devices whose backing file is (or was, before it was deleted) below root. */
export function loopsBelow(root) {
  let names = [];
  try {
    names = readdirSync('/sys/block').filter((n) => /^loop\d+$/.test(n));
  } catch {
    return [];
  }
  const out = [];
  for (const n of names) {
    let file;
    try {
      file = readFileSync(join('/sys/block', n, 'loop', 'backing_file'), 'utf8').trim();
    } catch {
      continue; // not attached
    }
    const path = file.replace(/ \(deleted\)$/, '');
    if (below(root, path)) out.push({ device: `/dev/${n}`, file });
  }
  return out;
}

export function findLeaks(root) {
  return { mounts: mountsBelow(root), loops: loopsBelow(root) };
}

function tryRun(cmd, args) {
  try {
    execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    return '';
  } catch (e) {
    return String(e.stderr ?? e.message).trim() || `${cmd} failed`;
  }
}

/**
 * Unmount (lazily when busy) and detach what findLeaks found; returns what
 * is still there afterwards, with the errors met on the way.
 */
export function cleanLeaks(root) {
  const errors = [];
  for (let round = 0; round < 3 && mountsBelow(root).length > 0; round++) {
    for (const { point } of mountsBelow(root)) {
      if (tryRun('umount', [point]) === '') continue;
      const err = tryRun('umount', ['-l', point]);
      if (err) errors.push(`umount -l ${point}: ${err}`);
    }
  }
  // Unmounting frees autoclear loops by itself; detach the rest.
  for (const { device } of loopsBelow(root)) {
    const err = tryRun('losetup', ['-d', device]);
    if (err) errors.push(`losetup -d ${device}: ${err}`);
  }
  return { left: findLeaks(root), errors };
}

/** The report's lines for what was found. */
export function describeLeaks({ mounts, loops }) {
  return [
    ...mounts.map((m) => `  mount ${m.point} (${m.fstype})`),
    ...loops.map((l) => `  loop  ${l.device} -> ${l.file}`),
  ];
}
