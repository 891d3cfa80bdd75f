/**
 * Worker threads that run the packer's jobs (pack-jobs.ts), or the same
 * jobs inline when there are too few to pay for starting threads. Results
 * come back as promises the caller awaits in its own order, so the bytes
 * written never depend on which thread finished first.
 *
 * The worker script is found beside this module: pack-worker.js (built
 * with tsc), pack-worker.ts (running from source through tsx, whose loader
 * a worker does not inherit, so it is registered in a small bootstrap), or
 * the bundle's own copy (scripts/bundle.mjs defines its name).
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { dataCompressor, prepareEncoders } from './compress.js';
import { SquashfsWriteError } from './errors.js';
import {
  runJob,
  type BlockEncoder,
  type EncoderSpec,
  type PackJob,
  type PackResult,
} from './pack-jobs.js';

declare const __SQUASHTREE_PACK_WORKER__: string | undefined;

interface Pending {
  resolve: (r: PackResult) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  busy: number;
}

type WorkerReply =
  | { ready: true }
  | { fatal: string }
  | { id: number; result: PackResult }
  | { id: number; error: { input: string | null; message: string } };

function workerScript(): { url: URL; tsx: boolean } | null {
  const bundled =
    typeof __SQUASHTREE_PACK_WORKER__ === 'string' ? __SQUASHTREE_PACK_WORKER__ : null;
  const names = bundled ? [bundled] : ['./pack-worker.js', './pack-worker.ts'];
  for (const n of names) {
    const url = new URL(n, import.meta.url);
    if (existsSync(fileURLToPath(url))) return { url, tsx: n.endsWith('.ts') };
  }
  return null;
}

function inputError(message: string): SquashfsWriteError {
  return new SquashfsWriteError('input-changed', message);
}

export class PackPool {
  private readonly slots: Slot[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private failed: Error | null = null;

  private constructor(
    private readonly spec: EncoderSpec,
    private readonly inline: BlockEncoder | null,
  ) {}

  /** Threads that compress (0: inline, on the calling thread). */
  get threads(): number {
    return this.slots.length;
  }

  /**
   * A pool of `threads` workers (0, or no worker script found: the jobs run
   * inline). Throws SquashfsWriteError 'unsupported' when there is no
   * encoder for the compressor.
   */
  static async open(spec: EncoderSpec, threads: number): Promise<PackPool> {
    await prepareEncoders(spec.name);
    const encode = dataCompressor(spec.name, spec.options);
    if (!encode) {
      throw new SquashfsWriteError(
        'unsupported',
        `no encoder for ${spec.name} data in this package: pack with mksquashfs`,
      );
    }
    const script = threads > 0 ? workerScript() : null;
    const pool = new PackPool(spec, script ? null : encode);
    if (script) {
      try {
        await Promise.all(Array.from({ length: threads }, () => pool.start(script)));
      } catch (e) {
        await pool.close();
        throw e;
      }
    }
    return pool;
  }

  /**
   * Threads worth starting: one per core, none for less than `floor` bytes.
   * A packed directory's files are read by the threads themselves, so they
   * pay from a few MiB (4, the default floor); a merge's repacked tails are
   * cut out of blocks the calling thread decodes, which is as slow as
   * compressing them there (measured on the 203k-file tree + one day:
   * 1.08-1.15 s inline, 1.20-1.28 s on 2 threads for 52 repacked blocks).
   */
  static threadsFor(bytes: number, requested?: number, floor = 4 << 20): number {
    if (requested !== undefined) return Math.max(0, Math.floor(requested));
    return bytes < floor ? 0 : Math.max(1, Math.min(availableParallelism(), 8));
  }

  private start(script: { url: URL; tsx: boolean }): Promise<void> {
    const worker = script.tsx
      ? new Worker(
          `import('tsx/esm/api').then((api) => { api.register(); return import(${JSON.stringify(script.url.href)}); });`,
          { eval: true, workerData: this.spec },
        )
      : new Worker(script.url, { workerData: this.spec });
    const slot: Slot = { worker, busy: 0 };
    this.slots.push(slot);
    return new Promise<void>((resolve, reject) => {
      worker.on('message', (m: WorkerReply) => {
        if ('ready' in m) {
          resolve();
        } else if ('fatal' in m) {
          const e = new SquashfsWriteError('unsupported', `a packer thread failed: ${m.fatal}`);
          this.fail(e);
          reject(e);
        } else {
          slot.busy--;
          const p = this.pending.get(m.id);
          this.pending.delete(m.id);
          if (!p) return;
          if ('result' in m) p.resolve(m.result);
          else p.reject(m.error.input ? inputError(m.error.input) : new Error(m.error.message));
        }
      });
      worker.on('error', (e) => {
        this.fail(e);
        reject(e);
      });
    });
  }

  private fail(e: Error): void {
    this.failed ??= e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  /** Run one job: on the least busy thread, or inline. */
  run(job: PackJob): Promise<PackResult> {
    if (this.failed) return Promise.reject(this.failed);
    if (this.inline) {
      try {
        return Promise.resolve(runJob(job, this.spec, this.inline));
      } catch (e) {
        const err = e as Error;
        return Promise.reject(err.name === 'PackInputError' ? inputError(err.message) : err);
      }
    }
    let slot = this.slots[0];
    for (const s of this.slots) if (slot && s.busy < slot.busy) slot = s;
    if (!slot) return Promise.reject(new Error('the packer has no threads'));
    const id = this.nextId++;
    slot.busy++;
    const target = slot;
    return new Promise<PackResult>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      target.worker.postMessage({ id, job });
    });
  }

  async close(): Promise<void> {
    const slots = this.slots.splice(0);
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }
}
