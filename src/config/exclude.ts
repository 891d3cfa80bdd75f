/**
 * A tree's `exclude` list: paths relative to the tree that stay on the real
 * disk and are never packed. One test of membership for every walk and plan.
 */

/** Whether REL (relative to the tree) is an excluded path or lies below one. */
export const isExcluded = (rel: string, exclude: readonly string[]): boolean =>
  exclude.some((x) => rel === x || rel.startsWith(`${x}/`));

/** Whether an excluded path lies below REL (so REL must be descended into, not taken whole). */
export const holdsExcluded = (rel: string, exclude: readonly string[]): boolean =>
  exclude.some((x) => x.startsWith(`${rel}/`));

/** Walk options that leave EXCLUDE out: none at all when nothing is excluded. */
export const skipExcluded = (exclude: readonly string[]): { skip?: (rel: string) => boolean } =>
  exclude.length ? { skip: (rel: string): boolean => isExcluded(rel, exclude) } : {};
