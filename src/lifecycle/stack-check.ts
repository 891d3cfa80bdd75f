/**
 * The proof that a new generation shows what the overlay shows, at a cost
 * that follows the upper, not the tree: with the new layer stacked on the
 * images below it (read natively, stack-view.ts), every upper path is looked
 * up (a whiteout must show nothing; anything else its type, permissions,
 * owner, size, mtime, target, device) and every upper dir is listed, to
 * equal the names the mounted tree showed while the upper was copied. What
 * the upper does not touch comes from the images below, unchanged. The
 * layer's own bytes are checked against the staged copy beside this
 * (publish.ts).
 */
import type { Difference } from '../image/compare.js';
import { metaDiff } from '../image/match.js';
import { displayPath, joinRel } from '../fs/paths.js';
import type { Logical } from './plan.js';
import type { StackView } from './stack-view.js';

export async function checkStack(
  view: StackView,
  logical: readonly Logical[],
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
    return !exclude.some((x) => rel === x || rel.startsWith(`${x}/`));
  };
  for (const l of logical) {
    if (out.length >= limit) break;
    const s = await view.lookup(l.path);
    if (l.whiteout) {
      if (s) add(l.path, 'deleted in the tree, shown by the new stack');
      continue;
    }
    if (!s) {
      add(l.path, 'in the tree, missing from the new stack');
      continue;
    }
    const d = metaDiff(l.entry, await view.stat(s));
    if (d) {
      add(l.path, d);
      continue;
    }
    if (l.entry.type !== 'dir') continue;
    const shown = listings.get(l.path);
    if (!shown) continue;
    const want = new Set(shown.filter((n) => keep(l.path, n)));
    const have = [...((await view.names(l.path))?.keys() ?? [])].filter((n) => keep(l.path, n));
    const extra = have.filter((n) => !want.delete(n));
    if (extra.length > 0)
      add(l.path, `the new stack shows ${displayPath(extra[0] ?? '')} that the tree does not`);
    else if (want.size > 0)
      add(l.path, `the new stack lacks ${displayPath([...want][0] ?? '')} that the tree shows`);
  }
  return out;
}
