/**
 * The rule that makes a merge reproducible: writeMergedImage's output is a
 * pure function of its input images (by content), the settings named here
 * and the environment fingerprint below. A follower that holds the same
 * inputs runs the same merge and gets the same bytes, so it can rebuild a
 * compacted base instead of downloading it. Any change to what the writer
 * emits for the same inputs must bump the version.
 */

/** The merge rule's name and version, as recipes record it. */
export const MERGE_METHOD = 'squashtree-merge/1';

/** The settings of a merge that a recipe records (all that changes the output besides the inputs). */
export interface MergeSettings {
  /** Whiteouts kept as entries (a layer rewritten alone) instead of applied. */
  keepWhiteouts: boolean;
}

/**
 * What else must match between two machines for a merge to give the same
 * bytes: the compressors that re-encode (metadata blocks, repacked fragment
 * blocks). Node bundles zlib, so its version follows Node's.
 */
export function mergeEnvironment(): Record<string, string> {
  return { zlib: process.versions.zlib ?? 'unknown' };
}
