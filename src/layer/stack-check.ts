/**
 * The proof that a new generation shows what the overlay shows, at a cost
 * that follows the change, not the tree. The images below the new layer
 * show what the overlay showed at the session's previous commit (that
 * commit proved it; a session that committed nothing stands on what it
 * mounted, a compaction's merge is checked against its inputs). A layer
 * can change what the stack shows only at the paths it holds and in the
 * listings of the dirs it holds. So with the new layer stacked on them
 * (read natively, stack-view.ts), every path of the layer is looked up: a
 * whiteout must show nothing, anything else the upper entry's type,
 * permissions, owner, size, mtime, target, device; and every dir of the
 * layer is listed, to equal the names the mounted tree showed while the
 * upper was copied (capture.ts). The layer's own bytes are checked against
 * the staged copy beside this (src/pack/pack-image.ts).
 */
import type { Difference } from '../image/compare.js';
import { metaDiff } from '../image/match.js';
import { displayPath, joinRel } from '../fs/paths.js';
import type { Plan } from './layer-plan.js';
import type { StackView } from './stack-view.js';
import { isExcluded } from '../config/exclude.js';

export async function checkStack(
  view: StackView,
  checks: Plan['checks'],
  listings: ReadonlyMap<string, readonly string[]>,
  exclude: readonly string[] = [],
  limit = 20,
): Promise<Difference[]> {
  const out: Difference[] = [];
  const add = (path: string, what: string): void => {
    if (out.length < limit) out.push({ path: displayPath(path), what });
  };
  const keep = (dir: string, name: string): boolean => {
    const rel = joinRel(dir, name);
    return !isExcluded(rel, exclude);
  };
  for (const c of checks) {
    if (out.length >= limit) break;
    const s = await view.lookup(c.path);
    if (!c.entry) {
      if (s) add(c.path, 'deleted in the tree, shown by the new stack');
      continue;
    }
    if (!s) {
      add(c.path, 'in the tree, missing from the new stack');
      continue;
    }
    const d = metaDiff(c.entry, await view.stat(s));
    if (d) {
      add(c.path, d);
      continue;
    }
    if (c.entry.type !== 'dir') continue;
    const shown = listings.get(c.path);
    if (!shown) {
      add(c.path, 'the tree could not be listed there');
      continue;
    }
    const want = new Set(shown.filter((n) => keep(c.path, n)));
    const have = [...((await view.names(c.path))?.keys() ?? [])].filter((n) => keep(c.path, n));
    const extra = have.filter((n) => !want.delete(n));
    if (extra.length > 0)
      add(c.path, `the new stack shows ${displayPath(extra[0] ?? '')} that the tree does not`);
    else if (want.size > 0)
      add(c.path, `the new stack lacks ${displayPath([...want][0] ?? '')} that the tree shows`);
  }
  return out;
}
