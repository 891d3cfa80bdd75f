/**
 * docs/architecture.md's state table is generated from the transition table
 * (scripts/gen-architecture.mjs, run by npm run build): the committed doc
 * must be what the table makes.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

const root = new URL('../..', import.meta.url).pathname;

describe('docs/architecture.md', () => {
  it('holds the state table as src/lifecycle/transitions.ts makes it', () => {
    // The runner builds dist/ first; the script reads the table from there.
    const r = spawnSync(process.execPath, [`${root}scripts/gen-architecture.mjs`, '--check'], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
  });
});
