/**
 * A small xz encoder for the writer's metadata blocks, repacked fragment
 * blocks and packed files' blocks: the LZMA data of lzma-encode.ts in one
 * LZMA2 chunk per 64 KiB of input, in a single-block xz stream with a CRC32
 * check, as the kernel's and squashfs-tools' xz decoders read. No Node
 * package encodes xz without native code on Node 20. The format is the one
 * in the xz file-format and LZMA specifications; every block the writer
 * makes is also read back by the independent xz-embedded decoder when the
 * image is verified.
 *
 * Measured against xz(1) -6 (what mksquashfs uses), on GURU's files in
 * 128 KiB blocks: 1.10 of its bytes (the plain greedy parse before: 1.13;
 * xz's own fast modes, presets 1-3: 1.10); on a Gentoo tree's metadata in
 * 8 KiB blocks: 1.07 (before: 1.20). What is left is xz's optimal parse.
 */
import { LzmaEncoder, PROPS } from './lzma-encode.js';

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
