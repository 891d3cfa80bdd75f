/** Human-readable numbers, without ICU. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { count, thousands } from '../../src/cli/format.js';

describe('thousands', () => {
  it('groups digits by three as en-US does', () => {
    for (const n of [0, 7, 999, 1000, 12345, 203374, 1234567, -1234, 1234.5])
      assert.equal(thousands(n), n.toLocaleString('en-US', { maximumFractionDigits: 20 }));
  });

  it('makes count read as before', () => {
    assert.equal(count(1, 'file'), '1 file');
    assert.equal(count(203374, 'file'), '203,374 files');
    assert.equal(count(null, 'file'), '? files');
  });
});
