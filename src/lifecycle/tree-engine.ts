/**
 * Which engine a tree is mounted with. A mounted (or interrupted) session
 * keeps the engine it was mounted with, whatever the config says now: its
 * mounts and its upper were made by that engine and only it can take them
 * down. A tree that is not mounted gets the configured engine, or with
 * "auto" the first that works on this machine.
 */
import { SquashtreeError } from '../errors.js';
import { chooseEngine, mounterFor, withMounter, type EngineChoice } from '../mount/engine.js';
import type { TreeContext } from './context.js';
import { sessionIsLive, type Observation } from './observe.js';
import { sessionEngine } from './session.js';

export { sessionEngine } from './session.js';

/** The engine for an observed tree: a live session's own, else the configured choice. */
export async function resolveEngine(
  ctx: TreeContext,
  obs: Observation | null,
): Promise<EngineChoice> {
  const { tree } = ctx;
  if (obs && sessionIsLive(obs)) {
    const engine = sessionEngine(obs.session);
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

/** Run `fn` with the observed tree's engine as the ambient mounter (see mount/engine.ts). */
export async function withTreeEngine<T>(
  ctx: TreeContext,
  obs: Observation | null,
  fn: (ctx: TreeContext) => Promise<T>,
): Promise<T> {
  const choice = await resolveEngine(ctx, obs);
  const withEngine: TreeContext = { ...ctx, engine: choice };
  return withMounter(choice.mounter, () => fn(withEngine));
}
