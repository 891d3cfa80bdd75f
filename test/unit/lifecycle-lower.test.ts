/** soleLayer: the one image that holds a path, or none when several (or none) do. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildTree } from '../helpers/tree.js';
import { soleLayer } from '../../src/lifecycle/lower.js';

describe('soleLayer', () => {
  it('names the only layer with an entry at the path', async (t) => {
    const dir = await fsp.mkdtemp(join(tmpdir(), 'st-lower-'));
    t.after(() => fsp.rm(dir, { recursive: true, force: true }));
    const [top, base] = [join(dir, 'top'), join(dir, 'base')];
    await buildTree(base, { only: { dir: { a: 'a\n' } }, both: { dir: {} }, file: 'f\n' });
    await buildTree(top, { both: { dir: { b: 'b\n' } }, file: { dir: {} } });
    const stack = { view: join(dir, 'view'), layers: [top, base] };
    assert.equal(soleLayer(stack, 'only'), base);
    assert.equal(soleLayer(stack, 'only/a'), base);
    assert.equal(soleLayer(stack, 'both/b'), top);
    assert.equal(soleLayer(stack, 'both'), undefined, 'two layers hold it');
    assert.equal(soleLayer(stack, 'file'), undefined, 'a dir over a file: two entries');
    assert.equal(soleLayer(stack, 'file/x'), undefined, 'nobody holds it');
    assert.equal(soleLayer({ view: stack.view }, 'only'), undefined, 'layers unknown');
  });
});
