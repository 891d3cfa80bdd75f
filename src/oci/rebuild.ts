/**
 * Rebuilding an image from its recipe: the same merge the builder ran
 * (writeMergedImage with the recorded settings, its own check of the result
 * against the inputs on), then the result's sha256 against the digest the
 * (signed) manifest gives. Only bytes equal to the published image are
 * ever used; anything else is a RebuildFailed, and the image is downloaded.
 */
import { promises as fsp } from 'node:fs';
import { SquashtreeError, errnoCode, errorMessage } from '../errors.js';
import { interruptSignal, isInterrupted } from '../exec/run.js';
import { sha256File } from '../fs/hash.js';
import { tempImagePath } from '../store/stage.js';
import { writeMergedImage } from '../squashfs/index.js';
import { collectNow, holdYoungGeneration } from '../pack/heap.js';
import { recipeSettings } from './recipe.js';
import type { OciRecipe } from './types.js';

/** The rebuild did not give the published bytes (or could not run): download instead. */
export class RebuildFailed extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RebuildFailed';
  }
}

/** Merge `inputs` (bottom first) as `recipe` says into a temp file of the store; returns its path. */
export async function rebuildImage(
  store: string,
  recipe: OciRecipe,
  inputs: readonly string[],
  want: { digest: string; size: number },
): Promise<string> {
  const tmp = tempImagePath(store);
  holdYoungGeneration();
  try {
    try {
      await writeMergedImage(inputs, tmp, {
        ...recipeSettings(recipe),
        verify: true,
        signal: interruptSignal(),
        onPhase: (p) => {
          if (p === 'verify') collectNow();
        },
      });
    } catch (e) {
      if (isInterrupted(e) || e instanceof SquashtreeError) throw e;
      if (errnoCode(e) === 'ENOSPC') {
        throw new SquashtreeError(
          'E_NO_SPACE',
          `No space left on device while rebuilding an image in ${store}`,
          {
            path: store,
            cause: e,
            hint: 'free space in the store (a rebuilt base needs about as much as the images it merges), then pull again; nothing was applied',
          },
        );
      }
      throw new RebuildFailed(`the merge failed (${errorMessage(e)})`, { cause: e });
    }
    const st = await fsp.stat(tmp);
    const sha = `sha256:${await sha256File(tmp)}`;
    if (sha !== want.digest || st.size !== want.size) {
      throw new RebuildFailed(
        `the rebuilt image differs from the published one (${sha.slice(0, 19)}…, ${st.size} bytes; published ${want.digest.slice(0, 19)}…, ${want.size} bytes)`,
      );
    }
    return tmp;
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw e;
  }
}
