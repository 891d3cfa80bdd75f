/** Numbers for people: seconds, sizes, a median with its spread. */
import type { Summary } from './stats.js';

export function secs(ms: number): string {
  if (!Number.isFinite(ms)) return '-';
  if (ms < 1000) return `${(ms / 1000).toFixed(3)} s`;
  if (ms < 100_000) return `${(ms / 1000).toFixed(2)} s`;
  return `${(ms / 1000).toFixed(0)} s`;
}

export function size(b: number): string {
  if (!Number.isFinite(b)) return '-';
  if (b < 1024) return `${b} B`;
  if (b < 1024 ** 2) return `${(b / 1024).toFixed(1)} KiB`;
  if (b < 1024 ** 3) return `${(b / 1024 ** 2).toFixed(1)} MiB`;
  return `${(b / 1024 ** 3).toFixed(2)} GiB`;
}

export function spread(s: Summary, fmt: (n: number) => string = secs): string {
  if (s.n === 0) return '-';
  if (s.n === 1) return fmt(s.median);
  return `${fmt(s.median)} [${fmt(s.min)}–${fmt(s.max)}]`;
}
