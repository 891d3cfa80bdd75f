/** Parsing and checking of single config values (sizes, paths, compression levels). */

const UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** "128K" -> 131072; returns undefined for anything else ("1X", "-3", ""). */
export function parseBytes(v: number | string): number | undefined {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v > 0 ? v : undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$/i.exec(v);
  if (!m) return undefined;
  const n = Math.floor(Number(m[1]) * (UNITS[(m[2] ?? '').toLowerCase()] ?? NaN));
  // size=0 means "no limit" to tmpfs: a size that rounds down to 0 is refused.
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

/** tmpfs size= accepts bytes with k/m/g suffix or a percentage of RAM. */
export function parseTmpfsSize(v: number | string): string | undefined {
  if (typeof v === 'string' && /^\s*\d{1,3}%\s*$/.test(v)) {
    const pct = Number(v.trim().slice(0, -1));
    return pct >= 1 && pct <= 100 ? `${pct}%` : undefined;
  }
  const b = parseBytes(v);
  return b === undefined ? undefined : String(b);
}

export function isPowerOfTwo(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0 && Number.isInteger(Math.log2(n));
}

/** Level ranges mksquashfs accepts per compressor (undefined: no level option). */
export const LEVEL_RANGE: Record<string, [number, number] | undefined> = {
  gzip: [1, 9],
  zstd: [1, 22],
  lzo: [1, 9],
  xz: undefined,
  lz4: undefined,
};

/** A relative path that stays inside the tree: no '..', not absolute, not empty. */
export function isSafeRelative(p: string): boolean {
  if (p === '' || p.startsWith('/') || p.includes('\0')) return false;
  return !p.split('/').some((seg) => seg === '..');
}

/** True when `inner` equals `outer` or lies below it (both absolute, normalised). */
export function isWithin(inner: string, outer: string): boolean {
  if (outer === '/') return true;
  return inner === outer || inner.startsWith(outer.endsWith('/') ? outer : `${outer}/`);
}
