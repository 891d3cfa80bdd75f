// zstd-codec ships no types; this declares what squashtree uses.
declare module 'zstd-codec' {
  export interface ZstdSimple {
    /** One zstd frame holding data, at this level. */
    compress(data: Uint8Array, level: number): Uint8Array | null;
  }
  export interface ZstdBinding {
    Simple: new () => ZstdSimple;
  }
  export const ZstdCodec: {
    /** Instantiates the WebAssembly module, then calls back with the codec. */
    run(callback: (zstd: ZstdBinding) => void): void;
  };
}
