/**
 * run NAME -- COMMAND: run a command (emerge --sync, eix-sync, git pull)
 * while holding the tree's lock, so no periodic commit races it, and commit
 * when it succeeds. The child inherits the lock's descriptor as fd 3
 * (SQUASHTREE_LOCK_FD), so a squashtree it starts for the same tree does
 * not wait for a lock its parent holds.
 */
import { run } from '../exec/run.js';
import { commitLocked, type CommitResult } from './commit.js';
import type { TreeContext } from './context.js';
import type { TreeLock } from './lock.js';
import { admitObserved, observe, type Observation } from './observe.js';
import { startLocked } from './start.js';

export interface RunResult {
  tree: string;
  command: string[];
  exitCode: number;
  started: boolean;
  commit?: CommitResult;
}

export async function runLocked(
  ctx: TreeContext,
  lock: TreeLock,
  command: readonly string[],
  observed?: Observation,
): Promise<RunResult> {
  const [cmd, ...args] = command;
  if (!cmd) throw new Error('run needs a command');
  const obs = observed ?? (await observe(ctx));
  admitObserved(ctx, 'run', obs);
  // The command must write into the tree, not into the plain directory under it.
  const started = obs.state !== 'mounted';
  if (started) await startLocked(ctx, obs);
  const r = await run(cmd, args, {
    inheritStdio: true,
    extraFds: [lock.fd],
    okCodes: Array.from({ length: 256 }, (_, i) => i),
    env: {
      ...process.env,
      SQUASHTREE_LOCK_FD: `3:${lock.path}`,
      SQUASHTREE_RUN_TREE: ctx.tree.name,
    },
  });
  const result: RunResult = {
    tree: ctx.tree.name,
    command: [...command],
    exitCode: r.code,
    started,
  };
  if (r.code === 0) result.commit = await commitLocked(ctx);
  return result;
}
