/**
 * Reading squashtree's --json defensively: the benchmark drives builds from
 * before and after a change, and a field one of them lacks is NaN or
 * undefined here, never a crash in the middle of a run.
 */

export function obj(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : {};
}

export function num(v: unknown, key: string): number {
  const x = obj(v)[key];
  return typeof x === 'number' ? x : NaN;
}

export function bool(v: unknown, key: string): boolean {
  return obj(v)[key] === true;
}

export function str(v: unknown, key: string): string | undefined {
  const x = obj(v)[key];
  return typeof x === 'string' ? x : undefined;
}

/** The first number under `key` anywhere in v (depth first), as the acceptance scripts read it. */
export function deepNum(v: unknown, key: string): number {
  if (Array.isArray(v)) {
    for (const x of v) {
      const r = deepNum(x, key);
      if (!Number.isNaN(r)) return r;
    }
    return NaN;
  }
  if (typeof v !== 'object' || v === null) return NaN;
  const o = v as Record<string, unknown>;
  if (typeof o[key] === 'number') return o[key];
  for (const x of Object.values(o)) {
    const r = deepNum(x, key);
    if (!Number.isNaN(r)) return r;
  }
  return NaN;
}

export type HowPulled = 'rebuilt' | 'downloaded' | 'reused';
const HOWS: readonly HowPulled[] = ['rebuilt', 'downloaded', 'reused'];

/**
 * Per image, how a pull got it: from arrays named rebuilt / downloaded /
 * reused (of names or of objects with bytes), or from a list of image
 * objects with a field whose value is one of those words.
 */
export function pulledImages(data: unknown): Record<HowPulled, { count: number; bytes: number }> {
  const out = {
    rebuilt: { count: 0, bytes: 0 },
    downloaded: { count: 0, bytes: 0 },
    reused: { count: 0, bytes: 0 },
  };
  const o = obj(data);
  const seen = new Set<unknown>();
  const bytesOf = (x: unknown): number => {
    const b = num(x, 'bytes');
    return Number.isFinite(b) ? b : 0;
  };
  for (const how of HOWS) {
    const list = o[how];
    if (!Array.isArray(list)) continue;
    for (const x of list) {
      seen.add(x);
      out[how].count++;
      out[how].bytes += bytesOf(x);
    }
  }
  for (const v of Object.values(o)) {
    if (!Array.isArray(v)) continue;
    for (const x of v) {
      if (seen.has(x)) continue;
      const how = Object.values(obj(x)).find((f): f is HowPulled => HOWS.includes(f as HowPulled));
      if (how) {
        out[how].count++;
        out[how].bytes += bytesOf(x);
      }
    }
  }
  return out;
}
