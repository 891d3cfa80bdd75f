/**
 * The LZMA encoder behind xz-encode.ts: hash-chain match finding, all of
 * LZMA's symbols (matches, the four repeat distances, short reps) and a
 * greedy parse with one step of lazy evaluation, over the range coder of
 * lzma-range.ts.
 */
import { LengthEncoder, prob, RangeEncoder } from './lzma-range.js';

const LC = 3;
const PB = 2;
const POS_MASK = (1 << PB) - 1;
export const PROPS = (PB * 5 + 0) * 9 + LC;
const MIN_MATCH = 3;
const MAX_MATCH = 273;
const HASH_BITS = 16;
const CHAIN = 24;
/** A match this long is taken without looking further. */
const NICE = 64;

function distSlot(dist: number): number {
  if (dist < 4) return dist;
  const n = 31 - Math.clz32(dist);
  return (n << 1) | ((dist >>> (n - 1)) & 1);
}

/** A match found at a position: its length (0: none) and distance (minus one, as LZMA codes it). */
interface Found {
  len: number;
  dist: number;
}

/** Encoder state, reused from block to block (the writer makes thousands). */
export class LzmaEncoder {
  private readonly rc = new RangeEncoder();
  private readonly isMatch = prob(12 * 16);
  private readonly isRep = prob(12);
  private readonly isRepG0 = prob(12);
  private readonly isRepG1 = prob(12);
  private readonly isRepG2 = prob(12);
  private readonly isRep0Long = prob(12 * 16);
  private readonly literal = prob(0x300 << LC);
  private readonly posSlot = prob(4 * 64);
  private readonly special = prob(128);
  private readonly align = prob(16);
  private readonly len = new LengthEncoder();
  private readonly repLen = new LengthEncoder();
  private readonly head = new Int32Array(1 << HASH_BITS);
  private prev = new Int32Array(1 << 13);
  private src: Uint8Array = new Uint8Array(0);
  private state = 0;
  /** The last four distances (minus one), most recent first. */
  private readonly reps = [0, 0, 0, 0];

  private hashAt(i: number): number {
    const s = this.src;
    return (
      Math.imul(((s[i] ?? 0) << 16) | ((s[i + 1] ?? 0) << 8) | (s[i + 2] ?? 0), 2654435761) >>>
      (32 - HASH_BITS)
    );
  }

  private insert(i: number): void {
    if (i + 2 >= this.src.length) return;
    const h = this.hashAt(i);
    this.prev[i] = this.head[h] ?? -1;
    this.head[h] = i;
  }

  /** The longest earlier match at pos (its hash chain's last CHAIN entries), up to limit bytes. */
  private findMain(pos: number, limit: number, out: Found): void {
    const src = this.src;
    out.len = 0;
    out.dist = 0;
    if (limit < MIN_MATCH) return;
    let cand = this.head[this.hashAt(pos)] ?? -1;
    for (let k = 0; k < CHAIN && cand >= 0; k++) {
      // The byte past the best so far must match for this one to be longer.
      if (src[cand + out.len] === src[pos + out.len]) {
        let l = 0;
        while (l < limit && src[cand + l] === src[pos + l]) l++;
        if (l > out.len) {
          out.len = l;
          out.dist = pos - cand - 1;
          if (l >= limit || l >= NICE) return;
        }
      }
      cand = this.prev[cand] ?? -1;
    }
  }

  /** The longest match at pos at one of the last four distances: its length and which one (in out.dist). */
  private findRep(pos: number, limit: number, out: Found): void {
    const src = this.src;
    out.len = 0;
    out.dist = 0;
    for (let r = 0; r < 4; r++) {
      const from = pos - (this.reps[r] ?? 0) - 1;
      if (from < 0 || src[from] !== src[pos] || src[from + 1] !== src[pos + 1]) continue;
      let l = 2;
      while (l < limit && src[from + l] === src[pos + l]) l++;
      if (l > out.len) {
        out.len = Math.min(l, limit);
        out.dist = r;
      }
    }
    if (out.len < 2) out.len = 0;
  }

  private emitLiteral(pos: number): void {
    const { rc, literal, src } = this;
    const state = this.state;
    rc.bit(this.isMatch, (state << 4) + (pos & POS_MASK), 0);
    const prevByte = pos > 0 ? (src[pos - 1] ?? 0) : 0;
    const base = 0x300 * (prevByte >>> (8 - LC));
    const byte = src[pos] ?? 0;
    if (state < 7) {
      let sym = byte | 0x100;
      do {
        rc.bit(literal, base + (sym >>> 8), (sym >>> 7) & 1);
        sym <<= 1;
      } while (sym < 0x10000);
    } else {
      // After a match, coded against the byte at rep0.
      let matchByte = src[pos - (this.reps[0] ?? 0) - 1] ?? 0;
      let offset = 0x100;
      let sym = byte + 0x100;
      do {
        matchByte <<= 1;
        const matchBit = matchByte & offset;
        rc.bit(literal, base + offset + matchBit + (sym >>> 8), (sym >>> 7) & 1);
        sym <<= 1;
        offset &= ~(matchByte ^ sym);
      } while (sym < 0x10000);
    }
    this.state = state < 4 ? 0 : state < 10 ? state - 3 : state - 6;
  }

  private emitMatch(pos: number, len: number, dist: number): void {
    const { rc } = this;
    const posState = pos & POS_MASK;
    rc.bit(this.isMatch, (this.state << 4) + posState, 1);
    rc.bit(this.isRep, this.state, 0);
    this.len.encode(rc, len, posState);
    const slot = distSlot(dist);
    rc.tree(this.posSlot, Math.min(len - 2, 3) * 64, 6, slot);
    if (slot >= 4) {
      const footer = (slot >>> 1) - 1;
      const base = (2 | (slot & 1)) << footer;
      const reduced = dist - base;
      if (slot < 14) {
        rc.reverse(this.special, base - slot - 1, footer, reduced);
      } else {
        rc.direct(reduced >>> 4, footer - 4);
        rc.reverse(this.align, 0, 4, reduced & 15);
      }
    }
    const r = this.reps;
    r[3] = r[2] ?? 0;
    r[2] = r[1] ?? 0;
    r[1] = r[0] ?? 0;
    r[0] = dist;
    this.state = this.state < 7 ? 7 : 10;
  }

  /** A match at the rep-th last distance; len 1 at rep0 is a "short rep". */
  private emitRep(pos: number, len: number, rep: number): void {
    const { rc, state } = this;
    const posState = pos & POS_MASK;
    rc.bit(this.isMatch, (state << 4) + posState, 1);
    rc.bit(this.isRep, state, 1);
    if (rep === 0) {
      rc.bit(this.isRepG0, state, 0);
      rc.bit(this.isRep0Long, (state << 4) + posState, len === 1 ? 0 : 1);
      if (len === 1) {
        this.state = state < 7 ? 9 : 11;
        return;
      }
    } else {
      rc.bit(this.isRepG0, state, 1);
      const r = this.reps;
      const dist = r[rep] ?? 0;
      if (rep === 1) rc.bit(this.isRepG1, state, 0);
      else {
        rc.bit(this.isRepG1, state, 1);
        rc.bit(this.isRepG2, state, rep === 2 ? 0 : 1);
        if (rep === 3) r[3] = r[2] ?? 0;
        r[2] = r[1] ?? 0;
      }
      if (rep >= 1) r[1] = r[0] ?? 0;
      r[0] = dist;
    }
    this.repLen.encode(rc, len, posState);
    this.state = state < 7 ? 8 : 11;
  }

  /**
   * Raw LZMA data for src, one range-coded run per `chunk` bytes of input
   * (LZMA2 chunks: the model and the dictionary go on from one to the next,
   * the range coder starts anew), no end marker. Each run is a copy.
   *
   * The parse is greedy with one step of lazy evaluation: a match at one of
   * the last four distances is taken when it is nearly as long as the
   * longest one (it costs a fraction of the bits), and a match is put off
   * by a literal when the next position has a clearly better one.
   */
  encode(src: Uint8Array, chunk = 65536): Uint8Array[] {
    const { rc } = this;
    rc.reset();
    for (const p of [
      this.isMatch,
      this.isRep,
      this.isRepG0,
      this.isRepG1,
      this.isRepG2,
      this.isRep0Long,
      this.literal,
      this.posSlot,
      this.special,
      this.align,
    ])
      p.fill(1024);
    this.len.reset();
    this.repLen.reset();
    this.head.fill(-1);
    if (this.prev.length < src.length) this.prev = new Int32Array(src.length);
    this.src = src;
    this.state = 0;
    this.reps.fill(0);
    const n = src.length;
    const runs: Uint8Array[] = [];
    const main: Found = { len: 0, dist: 0 };
    const rep: Found = { len: 0, dist: 0 };
    const next: Found = { len: 0, dist: 0 };
    const nextRep: Found = { len: 0, dist: 0 };
    // The main match at pos when the previous step looked it up already (lazy evaluation).
    let known = -1;
    let pos = 0;
    let end = Math.min(n, chunk);
    while (pos < n) {
      if (pos === end) {
        rc.flush();
        runs.push(rc.out.slice(0, rc.length));
        rc.reset();
        end = Math.min(n, end + chunk);
      }
      // A match ends inside its chunk.
      const limit = Math.min(MAX_MATCH, end - pos);
      if (known !== pos) this.findMain(pos, limit, main);
      else {
        main.len = Math.min(next.len, limit);
        main.dist = next.dist;
      }
      if (pos > 0 && limit >= 2) this.findRep(pos, limit, rep);
      else rep.len = 0;
      let take: 'literal' | 'match' | 'rep' = 'literal';
      if (rep.len >= NICE) take = 'rep';
      else if (main.len >= NICE) take = 'match';
      else if (
        rep.len >= 2 &&
        (rep.len + 1 >= main.len ||
          (rep.len + 2 >= main.len && main.dist >= 1 << 9) ||
          (rep.len + 3 >= main.len && main.dist >= 1 << 15))
      )
        take = 'rep';
      else if (main.len >= MIN_MATCH && !(main.len === MIN_MATCH && main.dist >= 1 << 14)) {
        take = 'match';
        // Lazy: a literal here, when the next position starts a clearly better match.
        if (pos + 1 < end) {
          this.insert(pos);
          const nextLimit = Math.min(MAX_MATCH, end - pos - 1);
          this.findMain(pos + 1, nextLimit, next);
          known = pos + 1;
          this.findRep(pos + 1, nextLimit, nextRep);
          if (
            (next.len >= main.len + 1 && next.dist <= main.dist * 2 + 1) ||
            next.len >= main.len + 2 ||
            (next.len === main.len && next.dist < main.dist >>> 7) ||
            nextRep.len >= main.len
          )
            take = 'literal';
        }
      }
      if (take === 'literal') {
        // A byte equal to the one at rep0 is a short rep: a few bits.
        const r0 = pos - (this.reps[0] ?? 0) - 1;
        if (pos > 0 && r0 >= 0 && src[r0] === src[pos] && main.len < MIN_MATCH)
          this.emitRep(pos, 1, 0);
        else this.emitLiteral(pos);
        if (known !== pos + 1) this.insert(pos);
        pos++;
        continue;
      }
      const len = take === 'rep' ? rep.len : main.len;
      if (take === 'rep') this.emitRep(pos, len, rep.dist);
      else this.emitMatch(pos, len, main.dist);
      for (let i = known === pos + 1 ? 1 : 0; i < len; i++) this.insert(pos + i);
      known = -1;
      pos += len;
    }
    rc.flush();
    runs.push(rc.out.slice(0, rc.length));
    this.src = new Uint8Array(0);
    return runs;
  }
}
