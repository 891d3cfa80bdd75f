// lz4js ships no types; this declares the one function the reader uses.
declare module 'lz4js' {
  /** Decodes one raw LZ4 block from src[sIndex, sIndex+sLength) into dst at dIndex; returns the end index in dst. */
  export function decompressBlock(
    src: Uint8Array,
    dst: Uint8Array,
    sIndex: number,
    sLength: number,
    dIndex: number,
  ): number;
}
