/** Small formatting helpers for human-readable output. */

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '?';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(v >= 100 ? 0 : 1)} ${units[i] ?? ''}`;
}

export function seconds(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

/** 1234567 -> "1,234,567" (toLocaleString loads ICU data: ~10 ms on the first call). */
export function thousands(n: number): string {
  const [int = '', frac] = String(n).split('.');
  const grouped = int.replace(/\B(?=(\d{3})+$)/g, ',');
  return frac === undefined ? grouped : `${grouped}.${frac}`;
}

export function count(n: number | null | undefined, what: string): string {
  if (n === null || n === undefined) return `? ${what}s`;
  return `${thousands(n)} ${what}${n === 1 ? '' : 's'}`;
}
