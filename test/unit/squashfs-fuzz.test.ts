/**
 * Fuzz the SquashFS reader: 10,000 deterministic mutations (bit flips, byte
 * and word overwrites, spliced ranges, truncations with and without a
 * matching "bytes used") of small images made by mksquashfs with every
 * compressor the reader supports, some with metadata stored uncompressed so
 * mutations reach the parsers directly. Each mutant is opened, walked, every
 * entry stat'ed and every file read. The only acceptable outcomes are success
 * and SquashfsFormatError (decompressor errors arrive wrapped in it).
 *
 * The mutants run in two worker threads (one per core) with a heap limit; the
 * main thread watches their progress and fails the test, naming the seed and
 * iteration, when one image takes longer than the per-image limit (a hang)
 * or a worker dies (memory).
 *
 * This file is also the worker: imported off the main thread it fuzzes.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fsp, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { Random } from '../../src/corpus/random.js';
import {
  SquashfsFormatError,
  SquashfsImage,
  SquashfsPathError,
  SquashfsUnsupportedError,
} from '../../src/squashfs/index.js';

// SQUASHFS_FUZZ_SEED and SQUASHFS_FUZZ_ITERATIONS run a longer or different campaign locally.
const SEED = Number(process.env.SQUASHFS_FUZZ_SEED ?? 0x5eed_5f5);
const ITERATIONS = Number(process.env.SQUASHFS_FUZZ_ITERATIONS ?? 10_000);
const WORKERS = 2;
/** One mutant may take this long; a worker that makes no progress for it has hung. */
const PER_IMAGE_LIMIT_MS = 10_000;
const MAX_BYTES_PER_IMAGE = 64 << 20;

interface BaseImage {
  name: string;
  data: Uint8Array;
}

interface FuzzJob {
  images: BaseImage[];
  seed: number;
  first: number;
  count: number;
  progress: SharedArrayBuffer;
}

interface FuzzStats {
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

const INTERESTING_8 = [0x00, 0x01, 0x7f, 0x80, 0xff];
const INTERESTING_32 = [
  0, 1, 2, 3, 0x7f, 0x80, 0xff, 0x100, 0x1000, 0x2000, 0x7fff, 0x8000, 0xffff, 0x10000, 0x1000000,
  0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff,
];

function mutate(base: Uint8Array, r: Random): { buf: Buffer; desc: string } {
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

async function exercise(buf: Buffer, stats: FuzzStats): Promise<void> {
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

async function fuzzWorker(job: FuzzJob): Promise<FuzzStats> {
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

// ---- the test --------------------------------------------------------------

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
}

async function buildSource(root: string): Promise<void> {
  const w = (rel: string, data: string | Buffer): Promise<void> =>
    fsp.writeFile(join(root, rel), data);
  await fsp.mkdir(join(root, 'd1/d2/d3'), { recursive: true });
  await fsp.mkdir(join(root, 'many'));
  await w('d1/d2/d3/deep', 'deep\n');
  await w('d1/file', 'x'.repeat(100));
  await w('empty', '');
  await w('text', 'some text that compresses well\n'.repeat(400)); // ~12 KiB: 3 blocks + tail
  const rnd = Buffer.alloc(6000);
  for (let i = 0; i < rnd.length; i++) rnd[i] = (i * 2654435761) >>> 24;
  await w('random', rnd); // stored uncompressed
  const fh = await fsp.open(join(root, 'sparse'), 'w');
  await fh.write(Buffer.from('end'), 0, 3, 20_000);
  await fh.close();
  for (let i = 0; i < 40; i++) await w(`many/f${i}`, `${i}`.repeat(i * 7));
  await fsp.link(join(root, 'd1/file'), join(root, 'hardlink'));
  await fsp.symlink('d1/d2', join(root, 'link'));
  await fsp.symlink('l'.repeat(300), join(root, 'longlink'));
  await fsp.writeFile(Buffer.from(`${root}/bad\xffname`, 'latin1'), 'b'); // not UTF-8
  run('python3', [
    '-c',
    `import os, sys
r = sys.argv[1]
os.mkfifo(os.path.join(r, 'fifo'))
os.setxattr(os.path.join(r, 'text'), 'user.a', b'value a')
os.setxattr(os.path.join(r, 'random'), 'user.a', b'value a')
os.setxattr(os.path.join(r, 'random'), 'user.b', b'b' * 300)
os.setxattr(os.path.join(r, 'd1'), 'user.dir', b'dir')
if os.geteuid() == 0:
    os.mknod(os.path.join(r, 'chr'), 0o20644, os.makedev(1, 3))
    os.setxattr(os.path.join(r, 'longlink'), 'trusted.t', b't', follow_symlinks=False)
`,
    root,
  ]);
}

const VARIANTS: { name: string; args: string[] }[] = [
  { name: 'gzip', args: [] },
  { name: 'gzip-raw', args: ['-noI', '-noD', '-noF', '-noX'] },
  { name: 'xz', args: ['-comp', 'xz'] },
  { name: 'lz4-raw-inodes', args: ['-comp', 'lz4', '-noI', '-noX'] },
  { name: 'zstd', args: ['-comp', 'zstd'] },
  { name: 'lzo', args: ['-comp', 'lzo'] },
  { name: 'gzip-raw-nofrag', args: ['-noI', '-noX', '-no-fragments', '-no-exports'] },
];

/** The progress cell a worker updates: -1 until it starts its first mutant. */
function notStarted(): SharedArrayBuffer {
  const sab = new SharedArrayBuffer(4);
  Atomics.store(new Int32Array(sab), 0, -1);
  return sab;
}

function runWorker(job: FuzzJob): Promise<FuzzStats> {
  const url = new URL(import.meta.url).href;
  // The worker loads this file through tsx, like the test runner does.
  const worker = new Worker(
    `import('tsx/esm/api').then((api) => { api.register(); return import(${JSON.stringify(url)}); })`,
    {
      eval: true,
      workerData: job,
      resourceLimits: { maxOldGenerationSizeMb: 512, maxYoungGenerationSizeMb: 64 },
    },
  );
  const progress = new Int32Array(job.progress);
  return new Promise((resolve, reject) => {
    let last = -1;
    let since = Date.now();
    const timer = setInterval(() => {
      const now = Atomics.load(progress, 0);
      // Before its first mutant the worker is loading (through tsx): allow more time.
      const limit = now === -1 ? 6 * PER_IMAGE_LIMIT_MS : PER_IMAGE_LIMIT_MS;
      if (now !== last) {
        last = now;
        since = Date.now();
      } else if (Date.now() - since > limit) {
        clearInterval(timer);
        void worker.terminate();
        reject(
          new Error(
            `iteration ${now} (seed ${job.seed + now}) ran longer than ${PER_IMAGE_LIMIT_MS} ms`,
          ),
        );
      }
    }, 250);
    worker.once('message', (stats: FuzzStats) => {
      clearInterval(timer);
      void worker.terminate();
      resolve(stats);
    });
    worker.once('error', (e) => {
      clearInterval(timer);
      reject(
        new Error(
          `fuzz worker died at iteration ${Atomics.load(progress, 0)}: ${e instanceof Error ? e.message : String(e)}`,
        ),
      );
    });
    worker.once('exit', (code) => {
      clearInterval(timer);
      reject(new Error(`fuzz worker exited (${code}) at iteration ${Atomics.load(progress, 0)}`));
    });
  });
}

if (isMainThread) {
  describe('squashfs reader fuzz', () => {
    let dir = '';
    const images: BaseImage[] = [];

    before(async () => {
      dir = await fsp.mkdtemp(join(tmpdir(), 'squashfs-fuzz-'));
      const src = join(dir, 'src');
      await fsp.mkdir(src);
      await buildSource(src);
      for (const v of VARIANTS) {
        const out = join(dir, `${v.name}.sqfs`);
        run('mksquashfs', [
          src,
          out,
          '-noappend',
          '-quiet',
          '-no-progress',
          '-b',
          '4096',
          ...v.args,
        ]);
        images.push({ name: v.name, data: new Uint8Array(await fsp.readFile(out)) });
      }
    });
    after(async () => {
      if (dir) await fsp.rm(dir, { recursive: true, force: true });
    });

    it('the base images read cleanly', async () => {
      for (const base of images) {
        const stats = { entries: 0, bytes: 0 } as FuzzStats;
        await exercise(Buffer.from(base.data), stats);
        assert.ok(stats.entries >= 50, `${base.name}: ${stats.entries} entries`);
      }
    });

    it(`survives ${ITERATIONS} mutated images with success or SquashfsFormatError only`, async (t) => {
      const t0 = performance.now();
      const per = Math.ceil(ITERATIONS / WORKERS);
      const results = await Promise.all(
        Array.from({ length: WORKERS }, (_, k) =>
          runWorker({
            images,
            seed: SEED,
            first: k * per,
            count: Math.min(per, ITERATIONS - k * per),
            progress: notStarted(),
          }),
        ),
      );
      const total = (f: (s: FuzzStats) => number): number => results.reduce((a, s) => a + f(s), 0);
      const structures: Record<string, number> = {};
      for (const s of results) {
        for (const [k, v] of Object.entries(s.structures)) structures[k] = (structures[k] ?? 0) + v;
      }
      const failures = results.flatMap((s) => s.failures);
      const slow = results.flatMap((s) => s.slow);
      t.diagnostic(
        `${total((s) => s.iterations)} mutants in ${((performance.now() - t0) / 1000).toFixed(1)} s: ` +
          `${total((s) => s.ok)} read fully, ${total((s) => s.formatErrors)} SquashfsFormatError ` +
          `(${total((s) => s.unsupported)} unsupported compressor); ` +
          `slowest ${Math.max(...results.map((s) => s.maxMs)).toFixed(0)} ms, ` +
          `peak rss ${Math.max(...results.map((s) => s.maxRssMb)).toFixed(0)} MiB; ` +
          `${total((s) => s.entries)} entries, ${total((s) => s.bytes)} bytes read`,
      );
      t.diagnostic(`errors by structure: ${JSON.stringify(structures)}`);
      assert.deepEqual(failures, []);
      assert.deepEqual(slow, []);
      assert.equal(
        total((s) => s.iterations),
        ITERATIONS,
      );
      assert.ok(total((s) => s.ok) > ITERATIONS / 20, 'some mutants still read fully');
      assert.ok(total((s) => s.formatErrors) > ITERATIONS / 4, 'most mutants are caught');
    });
  });
}
