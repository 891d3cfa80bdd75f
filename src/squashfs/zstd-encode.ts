/**
 * zstd encoding for the writer (metadata blocks and repacked fragment
 * blocks) through zstd-codec, the reference library compiled to
 * WebAssembly (measured here: 53 MiB/s at level 3 on 8 KiB blocks, twice
 * @bokuweb/zstd-wasm's speed, the same ratio within 0.5%). Loading the
 * module is asynchronous, so the writer loads it once before it needs it.
 */
import zstdCodec from 'zstd-codec';
import type { ZstdSimple } from 'zstd-codec';

/** The package whose version decides the bytes (see recipe.ts). */
export const ZSTD_ENCODER = 'zstd-codec@0.1.5';

let loading: Promise<ZstdSimple> | null = null;
let loaded: ZstdSimple | null = null;

/** Load the encoder (once). */
export function loadZstdEncoder(): Promise<ZstdSimple> {
  loading ??= new Promise<ZstdSimple>((resolve) => {
    zstdCodec.ZstdCodec.run((zstd) => {
      loaded = new zstd.Simple();
      resolve(loaded);
    });
  });
  return loading;
}

/** One zstd frame of src at `level`, or null when the encoder is not loaded or the frame is not smaller. */
export function zstdEncode(src: Buffer, level: number): Buffer | null {
  if (!loaded) return null;
  const out = loaded.compress(src, level);
  if (!out || out.length >= src.length) return null;
  return Buffer.from(out.buffer, out.byteOffset, out.length);
}

export function zstdEncoderLoaded(): boolean {
  return loaded !== null;
}
