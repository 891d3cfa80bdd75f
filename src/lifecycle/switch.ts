/**
 * switch: make a tree show a generation that became current from outside a
 * commit (a pull): before the new generation is recorded, check that no
 * pending change would be hidden (the table's `switch` row, then the
 * pending count of a mounted tree); after it, drop the pending changes
 * (--discard) or remount (--restart). oci/pull.ts drives it under the
 * tree's lock.
 */
import { SquashtreeError } from '../errors.js';
import type { Manifest } from '../store/manifest.js';
import type { TreeContext } from './context.js';
import { discardLocked } from './discard.js';
import { factsOf, subjectOf, type Observation } from './observe.js';
import { SWITCH_PENDING, decide, refusal } from './transitions.js';
import { startLocked } from './start.js';
import { treeStatus } from './status.js';
import { stopLocked } from './stop.js';

export interface SwitchOptions {
  /** Drop pending changes rather than refuse. */
  discard?: boolean;
  /** Remount a mounted tree on the new generation. */
  restart?: boolean;
}

export interface SwitchPlan {
  /** The tree has pending changes that --discard drops. */
  discardNeeded: boolean;
}

export interface SwitchResult {
  switched: boolean;
  discarded: { files: number; bytes: number } | null;
}

/**
 * Refuse a switch that would hide pending changes: the table's row for
 * `switch` (or `switch-discard` with --discard) by state, then, on a
 * mounted tree, the pending count it finds.
 */
export async function planSwitch(
  ctx: TreeContext,
  obs: Observation,
  opts: SwitchOptions,
): Promise<SwitchPlan> {
  const discard = opts.discard === true;
  const verdict = decide(discard ? 'switch-discard' : 'switch', factsOf(obs));
  if (verdict.kind === 'refuse') throw refusal(verdict, subjectOf(ctx, obs));
  if (obs.state === 'interrupted') return { discardNeeded: true };
  if (obs.state !== 'mounted') return { discardNeeded: false };
  const files = (await treeStatus(ctx, obs)).pending.files;
  if (files === 0) return { discardNeeded: false };
  if (discard) return { discardNeeded: true };
  throw new SquashtreeError(
    'E_PENDING',
    `tree "${ctx.tree.name}" has ${files} pending change(s); pulling would hide them`,
    { hint: SWITCH_PENDING.hint(subjectOf(ctx, obs)) },
  );
}

/** After the new generation is current: make the tree show it, as the plan and options say. */
export async function applySwitch(
  ctx: TreeContext,
  obs: Observation,
  plan: SwitchPlan,
  opts: SwitchOptions,
  label: number,
): Promise<SwitchResult> {
  if (plan.discardNeeded) {
    // Remounts a mounted tree on the new current generation.
    const d = await discardLocked(ctx);
    return { switched: obs.state === 'mounted', discarded: { files: d.files, bytes: d.bytes } };
  }
  if (opts.restart && obs.state === 'mounted') {
    ctx.reporter.step(`restarting ${ctx.tree.dir} on generation ${label}`);
    await remount(ctx);
    return { switched: true, discarded: null };
  }
  return { switched: false, discarded: null };
}

/**
 * Nothing new to pull, but a mounted tree still shows an older generation
 * (a pull without --restart, or a restart that found the tree busy): with
 * --restart, switch it now, unless it has pending changes.
 */
export async function switchIfBehind(
  ctx: TreeContext,
  obs: Observation,
  m: Manifest,
  opts: SwitchOptions,
): Promise<boolean> {
  const s = obs.session;
  if (!opts.restart || obs.state !== 'mounted' || !s) return false;
  if ((s.committedGeneration ?? s.generation) === m.current) return false;
  if ((await treeStatus(ctx)).pending.files > 0) {
    ctx.reporter.warn(
      `${ctx.tree.name} has pending changes: not restarted onto generation ${m.current}`,
    );
    return false;
  }
  ctx.reporter.step(`restarting ${ctx.tree.dir} on generation ${m.current}`);
  await remount(ctx);
  return true;
}

async function remount(ctx: TreeContext): Promise<void> {
  await stopLocked(ctx, { noCompact: true });
  await startLocked(ctx);
}
