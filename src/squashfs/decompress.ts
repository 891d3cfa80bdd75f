/**
 * Decompressors for SquashFS blocks, one per compressor id. Every one takes
 * an output limit and never produces (or allocates much) more than that, so
 * a hostile block cannot exhaust memory; failures are plain Errors that the
 * caller wraps into a SquashfsFormatError naming the block.
 *
 *   gzip: node:zlib inflate (SquashFS "gzip" is a zlib stream)
 *   xz:   xz-decompress (xz-embedded compiled to WebAssembly, shipped inline)
 *   lz4:  lz4js (pure JavaScript raw-block decoder)
 *   zstd: zstddec (the reference decoder compiled to WebAssembly, shipped inline)
 *   lzo:  lzo.ts (our own LZO1X decoder, in TypeScript)
 *   lzma: legacy LZMA1, which Linux cannot read either; SquashfsUnsupportedError
 */
import { inflateSync } from 'node:zlib';
import lz4 from 'lz4js';
import xzModule from 'xz-decompress';
import { ZSTDDecoder } from 'zstddec';
import { SquashfsUnsupportedError } from './errors.js';
import { lzo1xDecompress } from './lzo.js';

export type CompressorName = 'gzip' | 'lzo' | 'lzma' | 'xz' | 'lz4' | 'zstd';

/**
 * Compressor ids as Linux (squashfs_fs.h) and squashfs-tools number them:
 * 2 is LZMA and 3 is LZO (squashfs-tools-ng's format.adoc lists the two the
 * other way round; images made by mksquashfs -comp lzo carry id 3).
 */
export const COMPRESSORS: Readonly<Record<number, CompressorName>> = {
  1: 'gzip',
  2: 'lzma',
  3: 'lzo',
  4: 'xz',
  5: 'lz4',
  6: 'zstd',
};

export interface Decompressor {
  readonly name: CompressorName;
  /** Decompress src; the result is at most limit bytes (more is an error). */
  decompress(src: Buffer, limit: number): Promise<Buffer>;
}

class GzipDecompressor implements Decompressor {
  readonly name = 'gzip';

  decompress(src: Buffer, limit: number): Promise<Buffer> {
    try {
      return Promise.resolve(inflateSync(src, { maxOutputLength: Math.max(limit, 1) }));
    } catch (e) {
      return Promise.reject(toError(e));
    }
  }
}

class Lz4Decompressor implements Decompressor {
  readonly name = 'lz4';

  decompress(src: Buffer, limit: number): Promise<Buffer> {
    // Zeroed: a match that reaches before the start of the output reads zeros,
    // never stale memory. lz4js stops writing at dst's end (typed arrays drop
    // writes past it) and every loop is bounded by the input length.
    const dst = Buffer.alloc(limit);
    let end: number;
    try {
      end = lz4.decompressBlock(src, dst, 0, src.length, 0);
    } catch (e) {
      return Promise.reject(toError(e));
    }
    if (!Number.isSafeInteger(end) || end < 0) {
      return Promise.reject(new Error('lz4: corrupt block'));
    }
    if (end > limit) return Promise.reject(new Error(`lz4: output exceeds ${limit} bytes`));
    return Promise.resolve(dst.subarray(0, end));
  }
}

/**
 * zstddec is the reference zstd decoder compiled to WebAssembly (shipped
 * inline). ZSTD_decompress writes at most `limit` bytes straight into the
 * output buffer (no window allocation, linear time on any input); zstddec
 * hides its error codes, which show as an empty result, and no SquashFS block
 * unpacks to nothing, so an empty result is a corrupt block.
 */
class ZstdDecompressor implements Decompressor {
  readonly name = 'zstd';
  private static decoder: Promise<ZSTDDecoder> | undefined;

  private static get(): Promise<ZSTDDecoder> {
    ZstdDecompressor.decoder ??= (async () => {
      const d = new ZSTDDecoder();
      await d.init();
      return d;
    })();
    return ZstdDecompressor.decoder;
  }

  async decompress(src: Buffer, limit: number): Promise<Buffer> {
    const decoder = await ZstdDecompressor.get();
    if (src.length === 0 || limit === 0) throw new Error('zstd: empty block');
    const out = decoder.decode(src, limit);
    if (out.length === 0) throw new Error('zstd: corrupt block');
    return Buffer.from(out.buffer, out.byteOffset, out.length);
  }
}

/**
 * xz-decompress exposes only a web stream. Its WebAssembly decoder
 * (xz-embedded, dictionary capped at 64 MiB) serializes streams with a
 * global lock that a stream releases when it ends, fails or is cancelled,
 * so every stream is read to its end or cancelled after its first read.
 */
class XzDecompressor implements Decompressor {
  readonly name = 'xz';

  async decompress(src: Buffer, limit: number): Promise<Buffer> {
    const input = new ReadableStream<Uint8Array>({
      start(controller) {
        if (src.length > 0) controller.enqueue(new Uint8Array(src));
        controller.close();
      },
    });
    const reader = new xzModule.XzReadableStream(input).getReader();
    const chunks: Uint8Array[] = [];
    let total = 0;
    let open = true;
    let started = false;
    try {
      for (;;) {
        let r: Awaited<ReturnType<typeof reader.read>>;
        try {
          r = await reader.read();
        } catch (e) {
          open = false; // the stream errored and released its lock
          throw toError(e);
        } finally {
          started = true;
        }
        if (r.done) {
          open = false;
          break;
        }
        total += r.value.length;
        if (total > limit) throw new Error(`xz: output exceeds ${limit} bytes`);
        chunks.push(r.value);
      }
    } finally {
      if (open && started) await reader.cancel().catch(() => undefined);
    }
    if (total === 0) return Buffer.alloc(0);
    return Buffer.concat(chunks, total);
  }
}

class LzoDecompressor implements Decompressor {
  readonly name = 'lzo';

  decompress(src: Buffer, limit: number): Promise<Buffer> {
    try {
      return Promise.resolve(lzo1xDecompress(src, limit));
    } catch (e) {
      return Promise.reject(toError(e));
    }
  }
}

class UnsupportedDecompressor implements Decompressor {
  constructor(
    readonly name: CompressorName,
    private readonly hint: string,
  ) {}

  decompress(): Promise<Buffer> {
    return Promise.reject(
      new SquashfsUnsupportedError('compressed block', `${this.name} compression`, -1, this.hint),
    );
  }
}

export function makeDecompressor(name: CompressorName): Decompressor {
  switch (name) {
    case 'gzip':
      return new GzipDecompressor();
    case 'xz':
      return new XzDecompressor();
    case 'lz4':
      return new Lz4Decompressor();
    case 'zstd':
      return new ZstdDecompressor();
    case 'lzo':
      return new LzoDecompressor();
    case 'lzma':
      return new UnsupportedDecompressor(
        'lzma',
        'legacy LZMA1 images are not readable by Linux either; repack with xz',
      );
  }
}

function toError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}
