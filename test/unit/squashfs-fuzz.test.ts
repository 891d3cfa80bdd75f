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
 * The worker is test/helpers/squashfs-fuzz-worker.ts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMainThread, Worker } from 'node:worker_threads';
import {
  PER_IMAGE_LIMIT_MS,
  type BaseImage,
  type FuzzJob,
  type FuzzStats,
  exercise,
} from '../helpers/squashfs-fuzz-worker.js';

// SQUASHFS_FUZZ_SEED and SQUASHFS_FUZZ_ITERATIONS run a longer or different campaign locally.
const SEED = Number(process.env.SQUASHFS_FUZZ_SEED ?? 0x5eed_5f5);
const ITERATIONS = Number(process.env.SQUASHFS_FUZZ_ITERATIONS ?? 10_000);
const WORKERS = 2;

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
  const url = new URL('../helpers/squashfs-fuzz-worker.ts', import.meta.url).href;
  // The worker loads its file through tsx, like the test runner does.
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
