/**
 * Byte ranges of an input image that the new image keeps, coalesced, and
 * where each lands in the output, so that every kept block's old position
 * maps to its new one.
 */
export class ExtentMap {
  private readonly olds: number[] = [];
  private readonly news: number[] = [];
  private readonly lens: number[] = [];

  /** Sort and coalesce [start, length) ranges (overlapping or touching ones merge). */
  static coalesce(ranges: readonly (readonly [number, number])[]): [number, number][] {
    const sorted = [...ranges].filter((r) => r[1] > 0).sort((a, b) => a[0] - b[0]);
    const out: [number, number][] = [];
    for (const [s, n] of sorted) {
      const last = out[out.length - 1];
      if (last && s <= last[0] + last[1]) {
        last[1] = Math.max(last[1], s + n - last[0]);
      } else {
        out.push([s, n]);
      }
    }
    return out;
  }

  /** Record that [old, old+len) was copied to new (calls in increasing old order). */
  add(oldStart: number, newStart: number, len: number): void {
    this.olds.push(oldStart);
    this.news.push(newStart);
    this.lens.push(len);
  }

  /** Every copied range: old start, new start, length. */
  *extents(): Generator<[number, number, number]> {
    for (let i = 0; i < this.olds.length; i++) {
      yield [this.olds[i] ?? 0, this.news[i] ?? 0, this.lens[i] ?? 0];
    }
  }

  /** The new position of an old one; throws when no kept range holds it. */
  map(pos: number): number {
    let lo = 0;
    let hi = this.olds.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const o = this.olds[mid] ?? 0;
      if (o <= pos) lo = mid + 1;
      else hi = mid - 1;
    }
    const i = hi;
    const o = this.olds[i];
    const n = this.news[i];
    const l = this.lens[i];
    if (o === undefined || n === undefined || l === undefined || pos >= o + l) {
      throw new Error(`internal error: position ${pos} lies in no copied range`);
    }
    return n + (pos - o);
  }
}
