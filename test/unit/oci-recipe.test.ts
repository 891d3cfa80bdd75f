/** Recipes on the wire: conversion from the store's record, what a follower refuses to run. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  configRecipes,
  recipeSettings,
  recipeUnusable,
  toOciRecipe,
} from '../../src/oci/recipe.js';
import { MERGE_METHOD, mergeEnvironment } from '../../src/squashfs/recipe.js';
import { mergeRecipe, type ImageRecord } from '../../src/store/manifest.js';
import type { StackConfig } from '../../src/oci/types.js';

const rec = (sha: string, bytes: number): ImageRecord => ({
  file: 'g000001-base.sqfs',
  kind: 'base',
  bytes,
  sha256: sha.repeat(64),
  compression: 'gzip',
  blockSize: 131072,
  created: '2026-08-01T00:00:00Z',
});

describe('recipes', () => {
  it('the store records the merge rule, the inputs bottom first, settings and environment', () => {
    const r = mergeRecipe([rec('a', 10), rec('b', 20)], { keepWhiteouts: false });
    assert.deepEqual(r, {
      method: MERGE_METHOD,
      inputs: [
        { sha256: 'a'.repeat(64), bytes: 10 },
        { sha256: 'b'.repeat(64), bytes: 20 },
      ],
      settings: { keepWhiteouts: false },
      environment: mergeEnvironment(),
    });
    const o = toOciRecipe(r);
    assert.deepEqual(o.inputs[1], { digest: `sha256:${'b'.repeat(64)}`, size: 20 });
    assert.equal(recipeUnusable(o), null);
    assert.deepEqual(recipeSettings(o), { keepWhiteouts: false });
  });

  it('another rule, another environment or an unknown setting is not run', () => {
    const o = toOciRecipe(mergeRecipe([rec('a', 1)], { keepWhiteouts: false }));
    assert.match(
      recipeUnusable({ ...o, method: 'squashtree-merge/1' }) ?? '',
      /made by squashtree-merge\/1/,
    );
    assert.match(
      recipeUnusable({ ...o, environment: { ...o.environment, zlib: 'x' } }) ?? '',
      /environment differs \(zlib x there/,
    );
    assert.match(
      recipeUnusable({ ...o, environment: { ...o.environment, lzma: '5' } }) ?? '',
      /lzma 5 there, unset here/,
    );
    assert.match(recipeUnusable({ ...o, settings: { level: 9 } }) ?? '', /does not know \(level\)/);
    assert.match(
      recipeUnusable({ ...o, settings: { keepWhiteouts: 'yes' } }) ?? '',
      /not a boolean/,
    );
  });

  it('a config keeps the recipes that parse and drops the others (older configs have none)', () => {
    const good = toOciRecipe(mergeRecipe([rec('a', 1)], { keepWhiteouts: false }));
    const config = {
      recipes: {
        [`sha256:${'c'.repeat(64)}`]: good,
        [`sha256:${'d'.repeat(64)}`]: { method: 'x' },
        'not-a-digest': good,
      },
    } as unknown as StackConfig;
    assert.deepEqual([...configRecipes(config).keys()], [`sha256:${'c'.repeat(64)}`]);
    assert.equal(configRecipes({} as StackConfig).size, 0);
  });
});
