/**
 * LZO1X decompression: the stream format every -Xalgorithm of mksquashfs
 * -comp lzo writes (lzo1x_1, lzo1x_1_11/12/15 and lzo1x_999 differ in how
 * they search for matches, not in what they emit). Written from the format
 * as the kernel's lzo1x_decompress_safe reads it (Documentation/staging/
 * lzo.rst), with the kernel's acceptance rules, so an image the kernel
 * refuses is refused here too.
 *
 * The stream is a sequence of instructions. Each copies a run of literals
 * from the input, or a match from the output already written, after which
 * 0-3 literals follow; how many (the "state") changes what the next
 * instruction with an opcode below 16 means. A match at distance 16384 with
 * length 3 ends the stream, and nothing may follow it.
 *
 * Hostile input: every read of the input and every write and look-back of
 * the output is checked before it happens; every instruction consumes input
 * and every copy fills output up to `limit`, so time is linear in input plus
 * output. Errors are LzoError with the input position.
 */

/** A block that is not a valid LZO1X stream (or unpacks past its limit). */
export class LzoError extends Error {
  /** Position in the compressed block where the problem was found. */
  readonly at: number;

  constructor(message: string, at: number) {
    super(`lzo: ${message} (at input byte ${at})`);
    this.name = 'LzoError';
    this.at = at;
  }
}

/** "4 or more literals were copied last": the state after a literal run. */
const AFTER_RUN = 4;

/** Decompress one LZO1X block; the result is at most `limit` bytes. */
export function lzo1xDecompress(src: Uint8Array, limit: number): Buffer {
  return new Lzo1xDecoder(src, limit).run();
}

class Lzo1xDecoder {
  private ip = 0;
  private op = 0;
  private readonly out: Buffer;
  private readonly n: number;

  constructor(
    private readonly src: Uint8Array,
    private readonly limit: number,
  ) {
    // Zeroed, and only written bytes are ever read back or returned.
    this.out = Buffer.alloc(limit);
    this.n = src.length;
  }

  run(): Buffer {
    const { src, n } = this;
    if (n === 0) throw new LzoError('empty block', 0);
    let state = 0;
    const first = src[0] ?? 0;
    // The kernel reads 17 followed by a version byte as its zram-only
    // LZO-RLE bitstream; liblzo never writes it, and SquashFS never holds it.
    if (first === 17 && n >= 5) {
      throw new LzoError(`LZO-RLE bitstream (version ${src[1] ?? 0}), not LZO1X`, 0);
    }
    // A first byte above 17 is a literal run with nothing to look back at.
    if (first > 17) {
      this.ip = 1;
      const count = first - 17;
      this.literals(count);
      state = count < 4 ? count : AFTER_RUN;
    }
    for (;;) {
      const at = this.ip;
      const t = this.byte();
      let dist: number;
      let len: number;
      let next: number;
      if (t < 16) {
        if (state === 0) {
          // 0000LLLL after no literals: a run of 4 or more literals.
          this.literals((t === 0 ? this.longLength(15) : t) + 3);
          state = AFTER_RUN;
          continue;
        }
        // 0000DDSS + H: 2 bytes within 1 KiB after 1-3 literals, 3 bytes at 2-3 KiB after a run.
        const h = this.byte();
        next = t & 3;
        dist = (h << 2) + (t >> 2) + (state === AFTER_RUN ? 2049 : 1);
        len = state === AFTER_RUN ? 3 : 2;
      } else if (t >= 64) {
        // 1LLDDDSS / 01LDDDSS + H: 3-8 bytes within 2 KiB.
        const h = this.byte();
        next = t & 3;
        dist = (h << 3) + ((t >> 2) & 7) + 1;
        len = (t >> 5) + 1;
      } else if (t >= 32) {
        // 001LLLLL + LE16 (DDDDDDDD DDDDDDSS): within 16 KiB.
        len = ((t & 31) === 0 ? this.longLength(31) : t & 31) + 2;
        const d = this.le16();
        next = d & 3;
        dist = (d >> 2) + 1;
      } else {
        // 0001HLLL + LE16: 16-48 KiB back; distance 16384 exactly ends the stream.
        len = ((t & 7) === 0 ? this.longLength(7) : t & 7) + 2;
        const d = this.le16();
        next = d & 3;
        const far = ((t & 8) << 11) + (d >> 2);
        if (far === 0) return this.end(at, len);
        dist = far + 16384;
      }
      this.match(at, dist, len);
      this.literals(next);
      state = next;
    }
  }

  private end(at: number, len: number): Buffer {
    if (len !== 3) throw new LzoError(`end marker with length ${len} (not 3)`, at);
    if (this.ip !== this.n) {
      throw new LzoError(`${this.n - this.ip} bytes follow the end of the stream`, this.ip);
    }
    return this.out.subarray(0, this.op);
  }

  private byte(): number {
    if (this.ip >= this.n) throw new LzoError('the block ends inside an instruction', this.ip);
    return this.src[this.ip++] ?? 0;
  }

  private le16(): number {
    const lo = this.byte();
    return lo | (this.byte() << 8);
  }

  /** A length too long for its opcode's bits: 255 per zero byte, plus the first non-zero one. */
  private longLength(base: number): number {
    const { src, n } = this;
    const from = this.ip;
    while (this.ip < n && src[this.ip] === 0) this.ip++;
    return base + 255 * (this.ip - from) + this.byte();
  }

  private literals(count: number): void {
    if (count === 0) return;
    const { ip, op } = this;
    if (count > this.n - ip) {
      throw new LzoError(`${count} literals, but ${this.n - ip} bytes are left`, ip);
    }
    if (count > this.limit - op) throw this.overrun(ip, count);
    this.out.set(this.src.subarray(ip, ip + count), op);
    this.ip = ip + count;
    this.op = op + count;
  }

  private match(at: number, dist: number, len: number): void {
    const { out, op } = this;
    if (dist > op) {
      throw new LzoError(`a match ${dist} bytes back, but only ${op} are written`, at);
    }
    if (len > this.limit - op) throw this.overrun(at, len);
    const from = op - dist;
    if (dist >= len) {
      out.copyWithin(op, from, from + len);
    } else {
      // Overlapping: the output repeats with period dist. Copy from `from` in
      // chunks that grow by whole periods, so no chunk reads what it writes.
      let done = 0;
      while (done < len) {
        const chunk = Math.min(len - done, dist + done);
        out.copyWithin(op + done, from, from + chunk);
        done += chunk;
      }
    }
    this.op = op + len;
  }

  private overrun(at: number, count: number): LzoError {
    return new LzoError(
      `${count} more bytes would pass the block's limit of ${this.limit} (${this.op} written)`,
      at,
    );
  }
}
