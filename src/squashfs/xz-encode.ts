/**
 * A small LZMA2/xz encoder for the writer's metadata blocks, repacked
 * fragment blocks and packed files' blocks: greedy matching (hash chains),
 * plain matches only (no repeat-distance tricks), one LZMA2 chunk per
 * 64 KiB of input in a single-block xz stream with a CRC32 check, as the
 * kernel's and squashfs-tools' xz decoders read. No Node package encodes
 * xz without native code on Node 20. The format is the one in the xz
 * file-format and LZMA specifications; every block the writer makes is
 * also read back by the independent xz-embedded decoder when the image is
 * verified.
 */

const LC = 3;
const PB = 2;
const POS_MASK = (1 << PB) - 1;
const PROPS = (PB * 5 + 0) * 9 + LC;
const MIN_MATCH = 3;
const MAX_MATCH = 273;
const HASH_BITS = 12;
const CHAIN = 16;

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(buf: Uint8Array, start = 0, end = buf.length): number {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = (CRC_TABLE[(c ^ (buf[i] ?? 0)) & 0xff] ?? 0) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

class RangeEncoder {
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

const prob = (n: number): Uint16Array => new Uint16Array(n).fill(1024);

class LengthEncoder {
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

function distSlot(dist: number): number {
  if (dist < 4) return dist;
  const n = 31 - Math.clz32(dist);
  return (n << 1) | ((dist >>> (n - 1)) & 1);
}

/** Encoder state, reused from block to block (the writer makes thousands). */
class LzmaEncoder {
  private readonly rc = new RangeEncoder();
  private readonly isMatch = prob(12 * 16);
  private readonly isRep = prob(12);
  private readonly literal = prob(0x300 << LC);
  private readonly posSlot = prob(4 * 64);
  private readonly special = prob(128);
  private readonly align = prob(16);
  private readonly len = new LengthEncoder();
  private readonly head = new Int32Array(1 << HASH_BITS);
  private prev = new Int32Array(1 << 13);

  /**
   * Raw LZMA data for src, one range-coded run per `chunk` bytes of input
   * (LZMA2 chunks: the model and the dictionary go on from one to the next,
   * the range coder starts anew), no end marker. Each run is a copy.
   */
  encode(src: Uint8Array, chunk = 65536): Uint8Array[] {
    const { rc, isMatch, isRep, literal, posSlot, special, align, len, head } = this;
    rc.reset();
    for (const p of [isMatch, isRep, literal, posSlot, special, align]) p.fill(1024);
    len.reset();
    head.fill(-1);
    if (this.prev.length < src.length) this.prev = new Int32Array(src.length);
    const prev = this.prev;
    let state = 0;
    let rep0 = 0;
    const n = src.length;
    const hashAt = (i: number): number =>
      (Math.imul(
        ((src[i] ?? 0) << 16) | ((src[i + 1] ?? 0) << 8) | (src[i + 2] ?? 0),
        2654435761,
      ) >>>
        (32 - HASH_BITS)) &
      ((1 << HASH_BITS) - 1);
    const insert = (i: number): void => {
      if (i + 2 >= n) return;
      const h = hashAt(i);
      prev[i] = head[h] ?? -1;
      head[h] = i;
    };
    const runs: Uint8Array[] = [];
    let pos = 0;
    let end = Math.min(n, chunk);
    while (pos < n) {
      if (pos === end) {
        rc.flush();
        runs.push(rc.out.slice(0, rc.length));
        rc.reset();
        end = Math.min(n, end + chunk);
      }
      const posState = pos & POS_MASK;
      // Longest match among the last CHAIN candidates.
      let bestLen = 0;
      let bestDist = 0;
      if (pos + MIN_MATCH <= n) {
        let cand = head[hashAt(pos)] ?? -1;
        // A match ends inside its chunk.
        const limit = Math.min(MAX_MATCH, end - pos);
        for (let k = 0; k < CHAIN && cand >= 0; k++) {
          let l = 0;
          while (l < limit && src[cand + l] === src[pos + l]) l++;
          if (l > bestLen) {
            bestLen = l;
            bestDist = pos - cand - 1;
            if (l === limit) break;
          }
          cand = prev[cand] ?? -1;
        }
      }
      if (bestLen >= MIN_MATCH) {
        rc.bit(isMatch, (state << 4) + posState, 1);
        rc.bit(isRep, state, 0);
        len.encode(rc, bestLen, posState);
        const slot = distSlot(bestDist);
        rc.tree(posSlot, Math.min(bestLen - 2, 3) * 64, 6, slot);
        if (slot >= 4) {
          const footer = (slot >>> 1) - 1;
          const base = (2 | (slot & 1)) << footer;
          const reduced = bestDist - base;
          if (slot < 14) {
            rc.reverse(special, base - slot - 1, footer, reduced);
          } else {
            rc.direct(reduced >>> 4, footer - 4);
            rc.reverse(align, 0, 4, reduced & 15);
          }
        }
        rep0 = bestDist;
        state = state < 7 ? 7 : 10;
        for (let i = 0; i < bestLen; i++) insert(pos + i);
        pos += bestLen;
        continue;
      }
      // A literal: plain after a literal, "matched" (against the byte at rep0) after a match.
      rc.bit(isMatch, (state << 4) + posState, 0);
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
        let matchByte = src[pos - rep0 - 1] ?? 0;
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
      state = state < 4 ? 0 : state < 10 ? state - 3 : state - 6;
      insert(pos);
      pos++;
    }
    rc.flush();
    runs.push(rc.out.slice(0, rc.length));
    return runs;
  }
}

const encoder = new LzmaEncoder();

/** LZMA2 chunks are at most 64 KiB of input here (and must pack into at most 64 KiB). */
const CHUNK = 65536;
/** The largest input: SquashFS's largest block. */
const MAX_INPUT = 1 << 20;

/**
 * An xz stream (CRC32 check, one block) holding src (1 byte to 1 MiB): one
 * LZMA2 chunk per 64 KiB of input, the first resetting the dictionary and
 * setting the properties, the others going on from it. Throws when a chunk
 * does not pack into 64 KiB (the caller stores the block as is).
 */
export function xzEncode(src: Buffer): Buffer {
  if (src.length === 0 || src.length > MAX_INPUT) {
    throw new Error('xzEncode takes 1 byte to 1 MiB');
  }
  const runs = encoder.encode(src, CHUNK);
  // Dictionary size byte: the smallest power-of-two-ish size holding src.
  let dictByte = 0;
  while ((2 | (dictByte & 1)) << ((dictByte >>> 1) + 11) < src.length) dictByte++;
  const chunks: Buffer[] = [];
  runs.forEach((lz, k) => {
    const unpacked = Math.min(CHUNK, src.length - k * CHUNK);
    if (lz.length > CHUNK) throw new Error('an LZMA2 chunk packs into more than 64 KiB');
    // 0xe0: dictionary reset, new properties; 0x80: no reset, the same model goes on.
    const head = [
      (k === 0 ? 0xe0 : 0x80) | ((unpacked - 1) >>> 16),
      ((unpacked - 1) >>> 8) & 0xff,
      (unpacked - 1) & 0xff,
      ((lz.length - 1) >>> 8) & 0xff,
      (lz.length - 1) & 0xff,
    ];
    if (k === 0) head.push(PROPS);
    chunks.push(Buffer.from(head), Buffer.from(lz.buffer, lz.byteOffset, lz.length));
  });
  const parts: Buffer[] = [];
  const streamFlags = Buffer.from([0x00, 0x01]);
  const u32 = (v: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v >>> 0, 0);
    return b;
  };
  parts.push(
    Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]),
    streamFlags,
    u32(crc32(streamFlags)),
  );
  const blockHeader = Buffer.from([2, 0x00, 0x21, 0x01, dictByte, 0, 0, 0]);
  parts.push(blockHeader, u32(crc32(blockHeader)));
  const data = Buffer.concat([...chunks, Buffer.from([0x00])]);
  parts.push(data);
  const pad = (4 - (data.length % 4)) % 4;
  parts.push(Buffer.alloc(pad), u32(crc32(src)));
  const unpadded = 12 + data.length + 4;
  const index = [0x00, ...varint(1), ...varint(unpadded), ...varint(src.length)];
  while (index.length % 4 !== 0) index.push(0);
  const indexBuf = Buffer.from(index);
  parts.push(indexBuf, u32(crc32(indexBuf)));
  const backward = Buffer.concat([u32((indexBuf.length + 4) / 4 - 1), streamFlags]);
  parts.push(u32(crc32(backward)), backward, Buffer.from([0x59, 0x5a]));
  return Buffer.concat(parts);
}

function varint(v: number): number[] {
  const out: number[] = [];
  let x = v;
  while (x >= 0x80) {
    out.push((x & 0x7f) | 0x80);
    x = Math.floor(x / 128);
  }
  out.push(x);
  return out;
}
