/**
 * The packer's units of work, as pure functions of their inputs so that
 * the same bytes come out on a worker thread or inline: read a run of a
 * file's blocks (or the pieces of one fragment block), compress each
 * block, and say how it is stored. A file is opened without following
 * symlinks and must still have the size the scan saw, and end there: one
 * that shrank or grew since is an error naming it, never a silently short
 * or stale block.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import * as zlib from 'node:zlib';
import type { CompressorName } from './decompress.js';
import { crc32 as jsCrc32 } from './xz-encode.js';

/** What a worker needs to make the encoder (see dataCompressor). */
export interface EncoderSpec {
  name: CompressorName;
  options: Record<string, number>;
  blockSize: number;
}

/** A part of a fragment block: a file's bytes [offset, offset + length), or bytes given. */
export type Piece =
  { path: Uint8Array; offset: number; length: number; size: number } | { bytes: Uint8Array };

export type PackJob =
  | { kind: 'blocks'; path: Uint8Array; size: number; first: number; count: number }
  | { kind: 'fragment'; pieces: Piece[] };

export interface PackResult {
  /** The stored bodies of the blocks, back to back. */
  data: Uint8Array;
  /** Per block: its size word as SquashFS stores it (bit 24: stored uncompressed; 0: sparse). */
  words: Uint32Array;
  /** crc32 of each block's (blocks) or each piece's (fragment) uncompressed bytes. */
  crcs: Uint32Array;
}

/** A file that is not as the scan saw it (the caller packs a private copy; this means it changed). */
export class PackInputError extends Error {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(`${path}: ${message}`);
    this.name = 'PackInputError';
  }
}

type Crc = (data: Uint8Array) => number;
// zlib.crc32 came with Node 20.15; the package's own table-driven one before that.
const nativeCrc = (zlib as { crc32?: (d: Uint8Array) => number }).crc32;
export const crc32: Crc = nativeCrc ? (d) => nativeCrc(d) : (d) => jsCrc32(d);

const shown = (path: Uint8Array): string => Buffer.from(path).toString('latin1');

/** Reads from one opened file, checking it against the size the scan recorded. */
function openChecked(path: Uint8Array, size: number): number {
  let fd: number;
  try {
    fd = openSync(Buffer.from(path), constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (e) {
    throw new PackInputError(shown(path), `cannot be read (${(e as Error).message})`);
  }
  const st = fstatSync(fd);
  if (!st.isFile() || st.size !== size) {
    closeSync(fd);
    throw new PackInputError(
      shown(path),
      st.isFile()
        ? `changed size while it was packed (${size} bytes when scanned, ${st.size} now)`
        : 'is no longer a regular file',
    );
  }
  return fd;
}

/** Exactly len bytes at pos into buf; at the file's end, also that nothing follows. */
function readExactly(
  fd: number,
  path: Uint8Array,
  buf: Buffer,
  at: number,
  len: number,
  pos: number,
  size: number,
): void {
  let done = 0;
  while (done < len) {
    const n = readSync(fd, buf, at + done, len - done, pos + done);
    if (n === 0) {
      throw new PackInputError(
        shown(path),
        `shrank while it was packed (ends at ${pos + done} of ${size} bytes)`,
      );
    }
    done += n;
  }
  if (pos + len === size && readSync(fd, Buffer.alloc(1), 0, 1, size) !== 0) {
    throw new PackInputError(shown(path), `grew while it was packed (past ${size} bytes)`);
  }
}

function allZero(b: Buffer): boolean {
  // Compare 8 bytes at a time through a BigUint64 view where aligned.
  const n = b.length;
  let i = 0;
  if (b.byteOffset % 8 === 0) {
    const w = new BigUint64Array(b.buffer, b.byteOffset, n >>> 3);
    for (; i < w.length; i++) if (w[i] !== 0n) return false;
    i *= 8;
  }
  for (; i < n; i++) if (b[i] !== 0) return false;
  return true;
}

/** The parts in one buffer of its own (never a slice of Node's shared pool: it is transferred). */
function own(parts: readonly Buffer[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export type BlockEncoder = (block: Buffer) => Buffer | null;

export function runJob(job: PackJob, spec: EncoderSpec, encode: BlockEncoder): PackResult {
  return job.kind === 'blocks' ? blocksJob(job, spec, encode) : fragmentJob(job, encode);
}

/** A stored block: compressed when that is smaller, else as is (bit 24 of its word). */
function store(raw: Buffer, encode: BlockEncoder, parts: Buffer[]): number {
  const packed = encode(raw);
  if (packed) {
    parts.push(packed);
    return packed.length;
  }
  parts.push(Buffer.from(raw));
  return raw.length | (1 << 24);
}

function blocksJob(
  job: Extract<PackJob, { kind: 'blocks' }>,
  spec: EncoderSpec,
  encode: BlockEncoder,
): PackResult {
  const bs = spec.blockSize;
  const words = new Uint32Array(job.count);
  const crcs = new Uint32Array(job.count);
  const parts: Buffer[] = [];
  const buf = Buffer.allocUnsafe(bs);
  const fd = openChecked(job.path, job.size);
  try {
    for (let i = 0; i < job.count; i++) {
      const pos = (job.first + i) * bs;
      const len = Math.min(bs, job.size - pos);
      readExactly(fd, job.path, buf, 0, len, pos, job.size);
      const raw = buf.subarray(0, len);
      crcs[i] = crc32(raw);
      // All-zero blocks are stored as holes (size word 0), as mksquashfs stores them.
      words[i] = allZero(raw) ? 0 : store(raw, encode, parts);
    }
  } finally {
    closeSync(fd);
  }
  return { data: own(parts), words, crcs };
}

function fragmentJob(
  job: Extract<PackJob, { kind: 'fragment' }>,
  encode: BlockEncoder,
): PackResult {
  const total = job.pieces.reduce((n, p) => n + ('bytes' in p ? p.bytes.length : p.length), 0);
  const raw = Buffer.allocUnsafe(total);
  const crcs = new Uint32Array(job.pieces.length);
  let at = 0;
  job.pieces.forEach((p, i) => {
    if ('bytes' in p) {
      raw.set(p.bytes, at);
      crcs[i] = crc32(p.bytes);
      at += p.bytes.length;
      return;
    }
    const fd = openChecked(p.path, p.size);
    try {
      readExactly(fd, p.path, raw, at, p.length, p.offset, p.size);
    } finally {
      closeSync(fd);
    }
    crcs[i] = crc32(raw.subarray(at, at + p.length));
    at += p.length;
  });
  const parts: Buffer[] = [];
  const word = store(raw, encode, parts);
  return { data: own(parts), words: Uint32Array.of(word), crcs };
}
