/**
 * The ambient mounter (src/mount/engine.ts): what withMounter sets is what
 * currentMounter() gives inside, nested or not, and two operations that run
 * at once each see their own, also when one of them runs with the mounter
 * that withMounter leaves unset.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { currentMounter, isRoot, withMounter, type Mounter } from '../../src/mount/engine.js';

const kernel: Mounter = { kind: 'kernel', privileged: isRoot() };
const fuse: Mounter = { kind: 'fuse', privileged: false };

/** The mounter seen after a few turns of the event loop, as an operation sees it after its awaits. */
async function seenLater(): Promise<Mounter> {
  for (let i = 0; i < 3; i++) await tick();
  return currentMounter();
}

describe('ambient mounter', () => {
  it('is the kernel mounter when none is set', async () => {
    assert.deepEqual(currentMounter(), kernel);
    assert.deepEqual(await withMounter(kernel, seenLater), kernel);
  });

  it('nests: the inner one holds inside it, the outer one after it', async () => {
    const seen = await withMounter(fuse, async () => {
      const inner = await withMounter(kernel, seenLater);
      const nestedFuse = await withMounter(kernel, () => withMounter(fuse, seenLater));
      return { inner, nestedFuse, after: await seenLater() };
    });
    assert.deepEqual(seen, { inner: kernel, nestedFuse: fuse, after: fuse });
  });

  it('keeps operations that run at once apart', async () => {
    const [a, b, c] = await Promise.all([
      withMounter(fuse, seenLater),
      withMounter(kernel, seenLater),
      withMounter({ kind: 'kernel', privileged: !isRoot() }, seenLater),
    ]);
    assert.deepEqual(a, fuse);
    assert.deepEqual(b, kernel);
    assert.deepEqual(c, { kind: 'kernel', privileged: !isRoot() });
    assert.deepEqual(currentMounter(), kernel);
  });
});
