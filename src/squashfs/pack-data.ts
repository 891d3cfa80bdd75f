/**
 * The data the writer compresses, after the blocks it copies: the blocks
 * of the packed directory's files (in walk order, each file's blocks
 * together), then the new fragment blocks (fragment-plan.ts) that hold
 * the packed files' tails and the repacked tails of the images. Jobs run
 * on the pool's threads (pack-pool.ts), a bounded number at a time, and
 * are written in the order they were made: the bytes never depend on which
 * thread finished first.
 */
import { SquashfsFormatError } from './errors.js';
import type { FragmentPlacement } from './fragment-plan.js';
import type { ImageOutput } from './output.js';
import type { PackJob, PackResult, Piece } from './pack-jobs.js';
import type { PackPool } from './pack-pool.js';
import type { Plan } from './plan.js';

/** Where the packed directory's files are: per skeleton inode number, the path and size. */
export interface FreshFiles {
  file(skeletonNumber: number): { path: Buffer; size: number };
}

/** A packed file's blocks: where they start, their size words, sparse bytes and crc32 of each. */
export interface PackedFile {
  start: number;
  words: Buffer;
  sparse: number;
  crcs: Uint32Array;
}

export interface PackedData {
  /** Where the data region ends. */
  end: number;
  /** Per fresh file with blocks (by plan entry). */
  files: Map<number, PackedFile>;
  /** Per plan entry with a tail in a new block: crc32 of the tail. */
  tailCrc: Map<number, number>;
  /** Bytes read from the directory. */
  readBytes: number;
}

/** Blocks per job: big files are spread over the threads, and memory stays bounded. */
const BLOCKS_PER_JOB = 8;

interface Queued {
  result: Promise<PackResult>;
  done: (r: PackResult, at: number) => void;
}

export async function writePackedData(
  plan: Plan,
  placement: FragmentPlacement,
  fresh: FreshFiles | null,
  pool: PackPool,
  out: ImageOutput,
  at: number,
  fragEntries: Buffer[],
  signal?: AbortSignal,
): Promise<PackedData> {
  const bs = plan.tables[0]?.image.superblock.blockSize ?? 131072;
  const data: PackedData = { end: at, files: new Map(), tailCrc: new Map(), readBytes: 0 };
  const window = Math.max(4, 4 * pool.threads);
  const queue: Queued[] = [];
  let pos = at;
  // The head of the queue is written (in order) before more is queued past the window.
  const drain = async (limit: number): Promise<void> => {
    while (queue.length > limit) {
      const q = queue.shift();
      if (!q) break;
      const r = await q.result;
      if (r.data.length > 0)
        await out.write(Buffer.from(r.data.buffer, r.data.byteOffset, r.data.length), pos);
      q.done(r, pos);
      pos += r.data.length;
    }
  };
  const push = async (job: PackJob, done: Queued['done']): Promise<void> => {
    signal?.throwIfAborted();
    const result = pool.run(job);
    // Seen by drain in order; a rejection before then must not go unhandled.
    result.catch(() => undefined);
    queue.push({ result, done });
    await drain(window);
  };

  try {
    if (fresh) {
      for (let k = 0; k < plan.freshFiles.length; k++) {
        const e = plan.freshFiles[k] ?? 0;
        const { path, size } = fresh.file(plan.freshNumbers[k] ?? 0);
        if (size < bs) continue;
        const count = Math.ceil(size / bs);
        const file: PackedFile = {
          start: 0,
          words: Buffer.alloc(4 * count),
          sparse: 0,
          crcs: new Uint32Array(count),
        };
        data.files.set(e, file);
        data.readBytes += size;
        for (let first = 0; first < count; first += BLOCKS_PER_JOB) {
          const n = Math.min(BLOCKS_PER_JOB, count - first);
          const job: PackJob = { kind: 'blocks', path, size, first, count: n };
          await push(job, (r, start) => {
            if (first === 0) file.start = start;
            for (let i = 0; i < n; i++) {
              const w = r.words[i] ?? 0;
              file.words.writeUInt32LE(w, 4 * (first + i));
              file.crcs[first + i] = r.crcs[i] ?? 0;
              if (w === 0) file.sparse += Math.min(bs, size - (first + i) * bs);
            }
          });
        }
      }
    }
    await fragments(plan, placement, fresh, data, fragEntries, push);
    await drain(0);
  } finally {
    // A failure leaves jobs running: their results are not waited for.
    queue.length = 0;
  }
  data.end = pos;
  return data;
}

/** The new fragment blocks as jobs: packed files' tails read by the thread, image tails given. */
async function fragments(
  plan: Plan,
  placement: FragmentPlacement,
  fresh: FreshFiles | null,
  data: PackedData,
  fragEntries: Buffer[],
  push: (job: PackJob, done: Queued['done']) => Promise<void>,
): Promise<void> {
  const tables = plan.tables;
  // Decoded source blocks, kept until their last repacked tail is taken.
  const uses = new Map<string, number>();
  for (const b of placement.blocks) {
    for (const e of b.tails) {
      if (plan.isFresh(e)) continue;
      const k = `${plan.layer[e] ?? 0}:${plan.frag[e] ?? -1}`;
      uses.set(k, (uses.get(k) ?? 0) + 1);
    }
  }
  const decoded = new Map<string, Buffer>();
  for (const b of placement.blocks) {
    const pieces: Piece[] = [];
    for (const e of b.tails) {
      const len = plan.tailLength[e] ?? 0;
      const fi = plan.freshIndex[e] ?? -1;
      if (fi >= 0 && fresh) {
        const { path, size } = fresh.file(plan.freshNumbers[fi] ?? 0);
        pieces.push({ path, offset: size - len, length: len, size });
        data.readBytes += len;
        continue;
      }
      const layer = plan.layer[e] ?? 0;
      const frag = plan.frag[e] ?? -1;
      const offset = plan.fragOffset[e] ?? 0;
      const k = `${layer}:${frag}`;
      const t = tables[layer];
      if (!t) continue;
      let block = decoded.get(k);
      if (!block) {
        block = await t.image.fragmentData(frag);
        decoded.set(k, block);
      }
      if (offset + len > block.length) {
        throw new SquashfsFormatError(
          'fragment block',
          `a tail of ${len} bytes at ${offset} lies outside fragment ${frag} of image ${layer}`,
          -1,
        );
      }
      // A copy of its own: a view would send the whole decoded block to the thread.
      pieces.push({ bytes: new Uint8Array(block.subarray(offset, offset + len)) });
      const left = (uses.get(k) ?? 1) - 1;
      uses.set(k, left);
      if (left === 0) decoded.delete(k);
    }
    const tails = b.tails;
    await push({ kind: 'fragment', pieces }, (r, start) => {
      const entry = fragEntries[b.newIndex];
      if (!entry) throw new Error('internal error: a new fragment block has no table entry');
      entry.writeBigUInt64LE(BigInt(start), 0);
      entry.writeUInt32LE(r.words[0] ?? 0, 8);
      tails.forEach((e, i) => {
        if (plan.isFresh(e)) data.tailCrc.set(e, r.crcs[i] ?? 0);
      });
    });
  }
}
