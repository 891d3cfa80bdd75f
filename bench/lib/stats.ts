/** Median and spread of a handful of samples. */

export interface Summary {
  median: number;
  min: number;
  max: number;
  n: number;
  samples: number[];
}

export function summarize(samples: readonly number[]): Summary {
  const s = [...samples].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return { median: NaN, min: NaN, max: NaN, n: 0, samples: [] };
  const mid = Math.floor(n / 2);
  const median = n % 2 === 1 ? (s[mid] ?? NaN) : ((s[mid - 1] ?? NaN) + (s[mid] ?? NaN)) / 2;
  return { median, min: s[0] ?? NaN, max: s[n - 1] ?? NaN, n, samples: [...samples] };
}

export function ratio(a: number, b: number): number {
  return b > 0 ? a / b : NaN;
}
