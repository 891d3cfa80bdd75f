/**
 * The public face of the lifecycle: one object per configured tree whose
 * methods take the tree's lock, observe the tree once and run one transition
 * of the state machine (transitions.ts) on that observation. Integrations
 * use only this.
 */
import type { TreeConfig } from '../config/schema.js';
import { ensureSecureDir } from '../fs/secure.js';
import { cleanupTemps } from '../store/store.js';
import { teardownUnder } from '../mount/image-stack.js';
import { commitLocked, type CommitResult } from './commit.js';
import { compactLocked, type CompactResult } from './compact.js';
import { makeContext, type Reporter, type TreeContext } from './context.js';
import { diffGeneration } from './diff-generation.js';
import { diffLocked, type DiffResult } from './diff.js';
import { discardLocked, type DiscardResult } from './discard.js';
import { acquireLock, type TreeLock } from './lock.js';
import { runLocked, type RunResult } from './run-command.js';
import { rollbackLocked, type RollbackResult } from './rollback.js';
import { startLocked, type StartResult } from './start.js';
import { treeStatus, type TreeStatus } from './status.js';
import { stopLocked, type StopOptions, type StopResult } from './stop.js';
import { verifyTree, type VerifyResult } from './verify.js';
import { withTreeEngine } from './tree-engine.js';
import { observe, type Observation } from './observe.js';

/**
 * What a killed run may have left: temp images and staging copies in the
 * store, scratch mounts under the runtime dir. Only ever run under the lock,
 * so nothing here belongs to a live invocation.
 */
async function clearLeftovers(ctx: TreeContext): Promise<void> {
  const { layout, tree } = ctx;
  await teardownUnder([layout.verifyMount, layout.stage, layout.scratch], tree.store);
  await cleanupTemps(tree.store);
}

export class Tree {
  readonly ctx: TreeContext;

  constructor(tree: TreeConfig, stateDir: string, reporter?: Reporter, lockWaitSeconds?: number) {
    this.ctx = makeContext(tree, stateDir, reporter, lockWaitSeconds);
  }

  get name(): string {
    return this.ctx.tree.name;
  }

  /**
   * Run `fn` holding the tree's lock, with the tree as observed once under
   * it (the engine is chosen from the same observation).
   */
  async locked<T>(
    fn: (ctx: TreeContext, lock: TreeLock, obs: Observation) => Promise<T>,
  ): Promise<T> {
    await ensureSecureDir(this.ctx.stateDir, { mode: 0o700, parents: true });
    await ensureSecureDir(this.ctx.layout.runtime, { mode: 0o700 });
    const lock = await acquireLock(this.ctx.layout.lock, { waitSeconds: this.ctx.lockWaitSeconds });
    try {
      const obs = await observe(this.ctx);
      return await withTreeEngine(this.ctx, obs, async (ctx) => {
        await clearLeftovers(ctx);
        return fn(ctx, lock, obs);
      });
    } finally {
      await lock.release();
    }
  }

  start(): Promise<StartResult> {
    return this.locked((c, _l, obs) => startLocked(c, obs));
  }

  stop(opts: StopOptions = {}): Promise<StopResult> {
    return this.locked((c, _l, obs) => stopLocked(c, opts, obs));
  }

  async restart(opts: StopOptions = {}): Promise<{ stop: StopResult; start: StartResult }> {
    return this.locked(async (c, _l, obs) => ({
      stop: await stopLocked(c, opts, obs),
      start: await startLocked(c),
    }));
  }

  commit(): Promise<CommitResult> {
    return this.locked((c, _l, obs) => commitLocked(c, obs));
  }

  discard(): Promise<DiscardResult> {
    return this.locked((c, _l, obs) => discardLocked(c, obs));
  }

  compact(): Promise<CompactResult> {
    return this.locked((c, _l, obs) => compactLocked(c, obs));
  }

  rollback(to?: number): Promise<RollbackResult> {
    return this.locked((c, _l, obs) => rollbackLocked(c, to, obs));
  }

  /** Pending changes; with a generation, what its top layer changed (read-only: no lock, no root). */
  diff(generation?: number): Promise<DiffResult> {
    if (generation !== undefined) return diffGeneration(this.ctx, generation);
    return this.locked((c, _l, obs) => diffLocked(c, obs));
  }

  /** Read-only: no lock, no root. */
  async verify(generation?: number): Promise<VerifyResult> {
    // verify reads only the store: a session record it cannot read does not stop it.
    const obs = await observe(this.ctx).catch(() => null);
    return withTreeEngine(this.ctx, obs, (c) => verifyTree(c, generation));
  }

  /** Run a command holding the lock; commit if it succeeds. */
  run(command: readonly string[]): Promise<RunResult> {
    return this.locked((c, lock, obs) => runLocked(c, lock, command, obs));
  }

  /** Read-only; does not wait for the lock. */
  async status(): Promise<TreeStatus> {
    const obs = await observe(this.ctx);
    return withTreeEngine(this.ctx, obs, (c) => treeStatus(c, obs));
  }
}
