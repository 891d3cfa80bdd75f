/** The compressor options block (after the superblock when the flag is set): its fields by compressor. */
import type { CompressorName } from './decompress.js';

export interface CompressorOptions {
  raw: Buffer;
  /** The fields this reader knows for the image's compressor. */
  fields: Record<string, number>;
}

export function parseCompressorOptions(
  compression: CompressorName,
  raw: Buffer,
): CompressorOptions {
  const u32 = (o: number): number => (raw.length >= o + 4 ? raw.readUInt32LE(o) : 0);
  const u16 = (o: number): number => (raw.length >= o + 2 ? raw.readUInt16LE(o) : 0);
  const fields: Record<string, number> = {};
  switch (compression) {
    case 'gzip':
      fields.level = u32(0);
      fields.windowSize = u16(4);
      fields.strategies = u16(6);
      break;
    case 'xz':
      fields.dictionarySize = u32(0);
      fields.filters = u32(4);
      break;
    case 'lz4':
      fields.version = u32(0);
      fields.flags = u32(4);
      break;
    case 'zstd':
      fields.level = u32(0);
      break;
    case 'lzo':
      fields.algorithm = u32(0);
      fields.level = u32(4);
      break;
    case 'lzma':
      break;
  }
  return { raw, fields };
}
