/**
 * Opacity without xattrs, on a real overlay: the link count the mounted tree
 * shows, and the slow way for uppers whose dirs count 1 (btrfs). Needs root.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { needRoot, sandbox } from '../helpers/env.js';
import { buildTree } from '../helpers/tree.js';
import { byPath, walkSync } from '../../src/fs/walk.js';
import { dirNames, isOpaque, readMergedNlinks } from '../../src/layer/opacity.js';

async function overlay(t: TestContext): Promise<{ lower: string; upper: string; merged: string }> {
  const sb = await sandbox(t, 'st-opacity-');
  const [lower, upper, work, merged] = ['lower', 'upper', 'work', 'merged'].map((d) =>
    join(sb.dir, d),
  ) as [string, string, string, string];
  await buildTree(lower, {
    merged: { dir: { a: 'a\n', b: 'b\n' } },
    replaced: { dir: { a: 'a\n', b: 'b\n' } },
    emptied: { dir: { a: 'a\n' } },
  });
  for (const d of [upper, work, merged]) await fsp.mkdir(d);
  execFileSync('mount', [
    '-t',
    'overlay',
    'overlay',
    '-o',
    `lowerdir=${lower},upperdir=${upper},workdir=${work},redirect_dir=off,index=off,metacopy=off`,
    merged,
  ]);
  await fsp.writeFile(join(merged, 'merged/c'), 'c\n');
  await fsp.rm(join(merged, 'replaced'), { recursive: true });
  await fsp.mkdir(join(merged, 'replaced'));
  await fsp.writeFile(join(merged, 'replaced/a'), 'new a\n');
  await fsp.rm(join(merged, 'emptied/a'));
  return { lower, upper, merged };
}

describe('opacity', () => {
  it('reads merged and opaque dirs off the link count the overlay shows', async (t) => {
    if (!needRoot(t)) return;
    const { lower, upper, merged } = await overlay(t);
    const entries = walkSync(upper);
    const nlinks = readMergedNlinks(merged, entries);
    assert.equal(nlinks.get('merged'), 1);
    assert.ok((nlinks.get('replaced') ?? 0) >= 2);
    const map = byPath(entries);
    const opaque = async (rel: string, view: Parameters<typeof isOpaque>[3]) => {
      const e = map.get(rel);
      assert.ok(e);
      return isOpaque(e, dirNames(lower, rel), map, view);
    };
    for (const view of [{ root: merged, nlinks }, { root: merged }]) {
      assert.equal(await opaque('merged', view), false);
      assert.equal(await opaque('replaced', view), true);
      assert.equal(await opaque('emptied', view), false);
    }
  });

  it('falls back to looking for hidden lower entries where dirs count 1', async (t) => {
    if (!needRoot(t)) return;
    const { lower, upper, merged } = await overlay(t);
    const map = byPath(walkSync(upper).map((e) => ({ ...e, nlink: 1 })));
    const opaque = (rel: string) => {
      const e = map.get(rel);
      assert.ok(e);
      return isOpaque(e, dirNames(lower, rel), map, { root: merged });
    };
    assert.equal(await opaque('merged'), false);
    assert.equal(await opaque('replaced'), true);
    // Every lower entry is whited out: nothing tells, and nothing depends on it.
    assert.equal(await opaque('emptied'), undefined);
  });
});
