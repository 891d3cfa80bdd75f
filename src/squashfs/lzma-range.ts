/**
 * LZMA's range coder (bits coded against adaptive 11-bit probabilities,
 * direct bits, bit trees) and its length model, as the LZMA specification
 * defines them; lzma-encode.ts drives them.
 */

export class RangeEncoder {
  private low = 0;
  private range = 0xffffffff;
  private cache = 0;
  private cacheSize = 1;
  out = new Uint8Array(1 << 16);
  length = 0;

  reset(): void {
    this.low = 0;
    this.range = 0xffffffff;
    this.cache = 0;
    this.cacheSize = 1;
    this.length = 0;
  }

  private push(b: number): void {
    if (this.length === this.out.length) {
      const grown = new Uint8Array(this.out.length * 2);
      grown.set(this.out);
      this.out = grown;
    }
    this.out[this.length++] = b;
  }

  private shiftLow(): void {
    if (this.low < 0xff000000 || this.low >= 0x100000000) {
      const carry = this.low >= 0x100000000 ? 1 : 0;
      let temp = this.cache;
      do {
        this.push((temp + carry) & 0xff);
        temp = 0xff;
      } while (--this.cacheSize !== 0);
      this.cache = (this.low >>> 24) & 0xff;
    }
    this.cacheSize++;
    this.low = (this.low & 0x00ffffff) * 256;
  }

  bit(probs: Uint16Array, i: number, bit: number): void {
    const p = probs[i] ?? 1024;
    const bound = (this.range >>> 11) * p;
    if (bit === 0) {
      this.range = bound;
      probs[i] = p + ((2048 - p) >>> 5);
    } else {
      this.low += bound;
      this.range -= bound;
      probs[i] = p - (p >>> 5);
    }
    while (this.range < 0x01000000) {
      this.range = (this.range * 256) >>> 0;
      this.shiftLow();
    }
  }

  direct(value: number, bits: number): void {
    for (let i = bits - 1; i >= 0; i--) {
      this.range >>>= 1;
      if ((value >>> i) & 1) this.low += this.range;
      while (this.range < 0x01000000) {
        this.range = (this.range * 256) >>> 0;
        this.shiftLow();
      }
    }
  }

  tree(probs: Uint16Array, base: number, bits: number, value: number): void {
    let m = 1;
    for (let i = bits - 1; i >= 0; i--) {
      const b = (value >>> i) & 1;
      this.bit(probs, base + m, b);
      m = (m << 1) | b;
    }
  }

  reverse(probs: Uint16Array, base: number, bits: number, value: number): void {
    let m = 1;
    let v = value;
    for (let i = 0; i < bits; i++) {
      const b = v & 1;
      v >>>= 1;
      this.bit(probs, base + m, b);
      m = (m << 1) | b;
    }
  }

  flush(): void {
    for (let i = 0; i < 5; i++) this.shiftLow();
  }
}

export const prob = (n: number): Uint16Array => new Uint16Array(n).fill(1024);

export class LengthEncoder {
  readonly choice = prob(2);
  readonly low = prob(16 * 8);
  readonly mid = prob(16 * 8);
  readonly high = prob(256);

  reset(): void {
    for (const p of [this.choice, this.low, this.mid, this.high]) p.fill(1024);
  }

  encode(rc: RangeEncoder, len: number, posState: number): void {
    const l = len - 2;
    if (l < 8) {
      rc.bit(this.choice, 0, 0);
      rc.tree(this.low, posState * 8, 3, l);
    } else if (l < 16) {
      rc.bit(this.choice, 0, 1);
      rc.bit(this.choice, 1, 0);
      rc.tree(this.mid, posState * 8, 3, l - 8);
    } else {
      rc.bit(this.choice, 0, 1);
      rc.bit(this.choice, 1, 1);
      rc.tree(this.high, 0, 8, l - 16);
    }
  }
}
