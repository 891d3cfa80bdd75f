/**
 * rollback: make an earlier generation current again. Only the manifest's
 * pointer moves; the newer generations stay listed (until `keep` drops them)
 * so a rollback can itself be undone with --to.
 */
import { SquashtreeError } from '../errors.js';
import { generation, writeManifest } from '../store/manifest.js';
import type { TreeContext } from './context.js';
import { fault } from '../faults.js';
import { checkImages } from '../store/image-integrity.js';
import { admitObserved, observe, type Observation } from './observe.js';

export interface RollbackResult {
  tree: string;
  from: number;
  to: number;
}

export async function rollbackLocked(
  ctx: TreeContext,
  to?: number,
  observed?: Observation,
): Promise<RollbackResult> {
  const { tree, layout } = ctx;
  const obs = observed ?? (await observe(ctx));
  // Refused while mounted or interrupted; the table has no no-op for rollback.
  const { manifest: m } = admitObserved(ctx, 'rollback', obs);
  let target: number;
  if (to !== undefined) {
    target = generation(m, to).generation;
  } else {
    const older = m.generations.filter((g) => g.generation < m.current).map((g) => g.generation);
    if (older.length === 0) {
      throw new SquashtreeError(
        'E_NO_GENERATION',
        `tree "${tree.name}" keeps no generation older than ${m.current}`,
        {
          hint: `kept generations: ${m.generations.map((g) => g.generation).join(', ')}; raise keep in the config to keep more`,
        },
      );
    }
    target = Math.max(...older);
  }
  const from = m.current;
  if (target === from) return { tree: tree.name, from, to: target };
  await checkImages(tree.store, m, generation(m, target).images, layout.verifiedCache);
  fault('rollback:before-manifest');
  m.current = target;
  await writeManifest(tree.store, m);
  return { tree: tree.name, from, to: target };
}
