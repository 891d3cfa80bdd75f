/**
 * The worker of squashfs-fuzz.test.ts: mutates a base image and reads each
 * mutant through the native reader. Loaded off the main thread it fuzzes the
 * job in workerData and posts its stats.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { Random } from '../../src/corpus/random.js';
import {
  SquashfsFormatError,
  SquashfsImage,
  SquashfsPathError,
  SquashfsUnsupportedError,
} from '../../src/squashfs/index.js';

/** One mutant may take this long; a worker that makes no progress for it has hung. */
export const PER_IMAGE_LIMIT_MS = 10_000;
export const MAX_BYTES_PER_IMAGE = 64 << 20;

export interface BaseImage {
  name: string;
  data: Uint8Array;
}

export interface FuzzJob {
  images: BaseImage[];
  seed: number;
  first: number;
  count: number;
  progress: SharedArrayBuffer;
}

export interface FuzzStats {
  iterations: number;
  ok: number;
  formatErrors: number;
  unsupported: number;
  structures: Record<string, number>;
  failures: string[];
  slow: string[];
  maxMs: number;
  maxRssMb: number;
  entries: number;
  bytes: number;
}

// ---- the mutator -------------------------------------------------------------

export const INTERESTING_8 = [0x00, 0x01, 0x7f, 0x80, 0xff];
export const INTERESTING_32 = [
  0, 1, 2, 3, 0x7f, 0x80, 0xff, 0x100, 0x1000, 0x2000, 0x7fff, 0x8000, 0xffff, 0x10000, 0x1000000,
  0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff,
];

export function mutate(base: Uint8Array, r: Random): { buf: Buffer; desc: string } {
  let buf = Buffer.from(base);
  const inodeStart = Number(buf.readBigUInt64LE(64));
  const descs: string[] = [];
  const offset = (): number => {
    const p = r.next();
    if (p < 0.15) return r.int(0, 95);
    if (p < 0.35) return r.int(96, Math.max(96, inodeStart - 1));
    return r.int(inodeStart, buf.length - 1);
  };
  const rounds = r.chance(0.25) ? 2 : 1;
  for (let k = 0; k < rounds; k++) {
    // Weights: bit flips 30%, bytes 25%, words 20%, splices 10%, truncations 15%.
    const p = r.next();
    const kind = p < 0.3 ? 0 : p < 0.55 ? 1 : p < 0.75 ? 2 : p < 0.85 ? 3 : p < 0.92 ? 4 : 5;
    if (kind === 0) {
      const n = r.int(1, 8);
      for (let i = 0; i < n; i++) {
        const at = offset();
        const bit = r.int(0, 7);
        buf[at] = (buf[at] ?? 0) ^ (1 << bit);
        descs.push(`flip ${at}.${bit}`);
      }
    } else if (kind === 1) {
      const n = r.int(1, 4);
      for (let i = 0; i < n; i++) {
        const at = offset();
        const v = r.chance(0.5) ? r.pick(INTERESTING_8) : r.int(0, 255);
        buf[at] = v;
        descs.push(`byte ${at}=${v}`);
      }
    } else if (kind === 2) {
      const at = Math.min(offset(), buf.length - 4);
      const v = r.pick(INTERESTING_32);
      if (r.chance(0.5)) buf.writeUInt32LE(v >>> 0, at);
      else buf.writeUInt16LE(v & 0xffff, at);
      descs.push(`word ${at}=${v}`);
    } else if (kind === 3) {
      const len = r.int(1, 64);
      const from = r.int(0, buf.length - len);
      const to = Math.min(offset(), buf.length - len);
      buf.copy(buf, to, from, from + len);
      descs.push(`splice ${from}+${len}->${to}`);
    } else if (kind === 4) {
      const at = r.chance(0.8) ? r.int(inodeStart, buf.length - 1) : r.int(0, buf.length - 1);
      buf = buf.subarray(0, at);
      descs.push(`truncate ${at}`);
    } else {
      const at = r.int(Math.min(inodeStart, buf.length - 1), buf.length - 1);
      buf = Buffer.from(buf.subarray(0, at));
      if (buf.length >= 48) buf.writeBigUInt64LE(BigInt(at), 40);
      descs.push(`truncate ${at} with bytes_used`);
    }
    if (buf.length < 8) break;
  }
  return { buf, desc: descs.join(', ') };
}

// ---- the worker ------------------------------------------------------------

export async function exercise(buf: Buffer, stats: FuzzStats): Promise<void> {
  const img = await SquashfsImage.fromBuffer(buf, { maxDirEntries: 10_000 });
  let bytes = 0;
  try {
    await img.compressorOptions();
    for await (const e of img.walk()) {
      stats.entries++;
      const st = await img.stat(e.inode);
      assert.equal(typeof st.mode, 'number');
      if (e.inode.kind === 'file') {
        for await (const c of img.readFile(e.inode)) {
          bytes += c.length;
          if (bytes > MAX_BYTES_PER_IMAGE) return;
        }
      }
    }
    for (const p of ['d1/d2/d3/deep', 'missing', 'link', 'd1/file/x']) {
      try {
        await img.lookup(p);
      } catch (e) {
        if (!(e instanceof SquashfsPathError)) throw e;
      }
    }
    const n = Math.min(img.superblock.inodeCount, 40);
    for (let i = 1; i <= n; i++) await img.inodeByNumber(i);
  } finally {
    stats.bytes += bytes;
    await img.close();
  }
}

export async function fuzzWorker(job: FuzzJob): Promise<FuzzStats> {
  const progress = new Int32Array(job.progress);
  const stats: FuzzStats = {
    iterations: 0,
    ok: 0,
    formatErrors: 0,
    unsupported: 0,
    structures: {},
    failures: [],
    slow: [],
    maxMs: 0,
    maxRssMb: 0,
    entries: 0,
    bytes: 0,
  };
  for (let i = job.first; i < job.first + job.count; i++) {
    Atomics.store(progress, 0, i);
    const base = job.images[i % job.images.length];
    if (!base) continue;
    const { buf, desc } = mutate(base.data, new Random(job.seed + i));
    // SQUASHFS_FUZZ_DUMP=DIR keeps every mutant (for reproducing a failure outside the suite).
    const dump = process.env.SQUASHFS_FUZZ_DUMP;
    if (dump) writeFileSync(join(dump, `mutant-${i}.sqfs`), buf);
    const t0 = performance.now();
    try {
      await exercise(buf, stats);
      stats.ok++;
    } catch (e) {
      if (e instanceof SquashfsUnsupportedError) stats.unsupported++;
      if (e instanceof SquashfsFormatError) {
        stats.formatErrors++;
        stats.structures[e.structure] = (stats.structures[e.structure] ?? 0) + 1;
      } else if (stats.failures.length < 20) {
        stats.failures.push(
          `iteration ${i} (${base.name}: ${desc}): ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`,
        );
      }
    }
    const ms = performance.now() - t0;
    stats.maxMs = Math.max(stats.maxMs, ms);
    if (ms > PER_IMAGE_LIMIT_MS / 4 && stats.slow.length < 20) {
      stats.slow.push(`iteration ${i} (${base.name}: ${desc}): ${ms.toFixed(0)} ms`);
    }
    stats.iterations++;
    if (i % 250 === 0) {
      stats.maxRssMb = Math.max(stats.maxRssMb, process.memoryUsage().rss / 2 ** 20);
    }
  }
  return stats;
}

if (!isMainThread && parentPort) {
  const port = parentPort;
  fuzzWorker(workerData as FuzzJob).then(
    (stats) => {
      port.postMessage(stats);
    },
    (e: unknown) => {
      throw e;
    },
  );
}
