/**
 * Which engine a tree is mounted with. A mounted (or interrupted) session
 * keeps the engine it was mounted with, whatever the config says now: its
 * mounts and its upper were made by that engine and only it can take them
 * down. A tree that is not mounted gets the configured engine, or with
 * "auto" the first that works on this machine.
 */
import { promises as fsp } from 'node:fs';
import { SquashtreeError } from '../errors.js';
import {
  chooseEngine,
  mounterFor,
  withMounter,
  type EngineChoice,
  type EngineName,
} from '../mount/engine.js';
import { readMounts, topMountAt } from '../mount/mountinfo.js';
import type { TreeContext } from './context.js';
import { readSession, type Session } from './session.js';

export function sessionEngine(s: Session | null): EngineName {
  return s?.engine ?? 'kernel';
}

async function hasEntries(dir: string): Promise<boolean> {
  try {
    return (await fsp.readdir(dir)).length > 0;
  } catch {
    return false;
  }
}

export async function resolveEngine(ctx: TreeContext): Promise<EngineChoice> {
  const { layout, tree } = ctx;
  const session = await readSession(layout.sessionFile).catch(() => null);
  if (session) {
    const live =
      topMountAt(await readMounts(), tree.dir) !== undefined ||
      (await hasEntries(layout.upperData));
    if (live) {
      const engine = sessionEngine(session);
      // Why the others were not used: what the configured choice would have passed over.
      const rejected = Object.fromEntries(
        Object.entries((await chooseEngine(tree.engine)).rejected).filter(([e]) => e !== engine),
      );
      return {
        engine,
        mounter: await mounterFor(engine),
        reason: 'the engine the tree was mounted with',
        rejected,
      };
    }
  }
  return chooseEngine(tree.engine);
}

/** Refuse an engine this machine cannot run, naming why. */
export function requireUsable(ctx: TreeContext, choice: EngineChoice): void {
  const why = choice.rejected[choice.engine];
  if (why === undefined) return;
  const others = Object.entries(choice.rejected)
    .filter(([e]) => e !== choice.engine)
    .map(([e, w]) => `${e}: ${w}`);
  throw new SquashtreeError(
    'E_ENGINE',
    `tree "${ctx.tree.name}" cannot be mounted with the ${choice.engine} engine here: ${why}`,
    {
      hint:
        ctx.tree.engine === 'auto'
          ? `no engine works on this machine (${others.join('; ')}); see squashtree doctor`
          : `set engine = "auto" (or another engine) in [tree.${ctx.tree.name}], or see squashtree doctor`,
    },
  );
}

/** Run `fn` with the tree's engine as the ambient mounter (see mount/engine.ts). */
export async function withTreeEngine<T>(
  ctx: TreeContext,
  fn: (ctx: TreeContext) => Promise<T>,
): Promise<T> {
  const choice = await resolveEngine(ctx);
  const withEngine: TreeContext = { ...ctx, engine: choice };
  return withMounter(choice.mounter, () => fn(withEngine));
}

export function readonlyError(ctx: TreeContext): SquashtreeError {
  return new SquashtreeError(
    'E_READONLY',
    `tree "${ctx.tree.name}" is mounted read-only (engine readonly): there is no upper to commit`,
    {
      path: ctx.tree.dir,
      hint:
        ctx.tree.engine === 'readonly'
          ? `engine = "readonly" is set for it in the config; to change it, stop it, set engine = "auto" and start it again`
          : 'no writable overlay works on this machine (see squashtree doctor: kernel overlay as root, or squashfuse and fuse-overlayfs)',
    },
  );
}

/** A FUSE upper is brought into the layer form against its mounted tree: it must be mounted. */
export function needsMountError(ctx: TreeContext): SquashtreeError {
  return new SquashtreeError(
    'E_ENGINE',
    `tree "${ctx.tree.name}" has an interrupted fuse session: its changes can be committed only while it is mounted`,
    {
      path: ctx.tree.dir,
      hint: `run squashtree start ${ctx.tree.name} (it resumes the pending changes), then commit`,
    },
  );
}
