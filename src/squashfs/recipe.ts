/**
 * The rule that makes a merge reproducible (docs/merge-rule.md): the bytes
 * writeMergedImage writes are a pure function of
 *
 *   - the input images' bytes, in stack order (not their paths or names),
 *   - the settings in MergeSettings,
 *   - the method below, and what mergeEnvironment() lists.
 *
 * Nothing else enters: no clock (the superblock's time is the newest
 * input's), no randomness, no iteration over anything unordered (names
 * are compared as bytes; maps are filled in walk order), no decision that
 * depends on timing or on how many worker threads compress (their results
 * are placed in the order the plan gives), no host detail (user, paths,
 * page size). Repacking decisions (which fragment blocks are copied whole,
 * where each repacked tail goes) are functions of the inputs alone
 * (fragment-plan.ts). A follower that holds the same inputs runs the same
 * merge and gets the same bytes, so it can rebuild a compacted base instead
 * of downloading it, and check it against the builder's sha256; any
 * mismatch only costs that download.
 *
 * Any change to what the writer emits for the same inputs must change the
 * method's version.
 */
import { COMPRESSION_ENVIRONMENT } from './compress.js';

/** The merge rule's name and version, as recipes record it. */
export const MERGE_METHOD = 'squashtree-merge/3';

/** The settings of a merge that a recipe records (all that changes the output besides the inputs). */
export interface MergeSettings {
  /** Whiteouts kept as entries (a layer rewritten alone) instead of applied. */
  keepWhiteouts: boolean;
}

/**
 * What else must match between two machines for a merge to give the same
 * bytes: the encoders that re-encode (metadata blocks, repacked fragment
 * blocks). gzip is Node's bundled zlib (its version follows Node's; it is
 * Chromium's fork, whose deflate may hash with CPU instructions, so the
 * architecture is listed too); xz and lz4 are encoders of this package
 * (versioned by MERGE_METHOD); zstd is a WASM build whose package version
 * is listed.
 */
export function mergeEnvironment(): Record<string, string> {
  return {
    zlib: process.versions.zlib ?? 'unknown',
    arch: process.arch,
    ...COMPRESSION_ENVIRONMENT,
  };
}
