/**
 * init where a tree half exists (issue 14.6): a store whose config entry
 * was lost (after --remove-source the store is the only copy of the data)
 * is adopted after every image is checked, never "remove it and run init
 * again"; a tree written in the config without images is built from the
 * config's own settings.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { needRoot, sandbox } from '../helpers/env.js';
import { sq, sqOk } from '../helpers/cli.js';
import { assertSameTree, buildTree } from '../helpers/tree.js';
import { SMALL } from '../helpers/setup.js';

interface Manifest {
  tree: string;
  current: number;
  images: Record<string, { compression: string }>;
}

/** A tree initialised with --remove-source, two generations, then its config lost. */
async function orphanStore(t: Parameters<typeof sandbox>[0]) {
  const sb = await sandbox(t);
  const tree = join(sb.dir, 'tree');
  const model = join(sb.dir, 'model');
  await buildTree(tree, SMALL);
  await buildTree(model, SMALL);
  const ok = sqOk(sb);
  await ok('init', 't', '--dir', tree, '--store', sb.store('t'), '--remove-source');
  await ok('start', 't');
  for (const d of [tree, model]) await fsp.writeFile(join(d, 'second'), '2\n');
  await ok('stop', 't');
  await fsp.rm(sb.config);
  const snapshot = async (): Promise<Record<string, string>> => {
    const out: Record<string, string> = {};
    for (const n of (await fsp.readdir(sb.store('t'))).sort()) {
      const st = await fsp.stat(join(sb.store('t'), n));
      out[n] = `${st.ino}:${st.size}:${st.mtimeMs}`;
    }
    return out;
  };
  return { sb, tree, model, ok, run: sq(sb), snapshot };
}

const dangerous = /remove .*(store|\/store\/t)|rm -r/i;

describe('init of a tree that half exists', { concurrency: false }, () => {
  it('adopts a store whose config entry was lost, after checking every image', async (t) => {
    if (!needRoot(t)) return;
    const o = await orphanStore(t);
    const before = await o.snapshot();
    const r = await o.ok('init', 't', '--dir', o.tree, '--store', o.sb.store('t'));
    assert.match(r.stdout, /adopted the store .*generation 2/);
    assert.doesNotMatch(r.stdout + r.stderr, dangerous);
    assert.match(r.stderr, /checking/);
    assert.deepEqual(await o.snapshot(), before, 'nothing in the store was rewritten');
    assert.match(await fsp.readFile(o.sb.config, 'utf8'), /\[tree\.t\]/);
    await o.ok('start', 't');
    await assertSameTree(o.model, o.tree, 'the adopted tree');
    await o.ok('stop', 't');
  });

  it('refuses a damaged store, naming the image, and changes nothing', async (t) => {
    if (!needRoot(t)) return;
    const o = await orphanStore(t);
    const m = JSON.parse(
      await fsp.readFile(join(o.sb.store('t'), 'manifest.json'), 'utf8'),
    ) as Manifest;
    const layer = Object.keys(m.images).find((f) => f.endsWith('-layer.sqfs'));
    assert.ok(layer);
    const fh = await fsp.open(join(o.sb.store('t'), layer), 'r+');
    await fh.write(Buffer.from([0x5a]), 0, 1, 200);
    await fh.close();
    const before = await o.snapshot();
    const r = await o.run('init', 't', '--dir', o.tree, '--store', o.sb.store('t'));
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /E_IMAGE_CORRUPT/);
    assert.match(r.stderr, new RegExp(layer));
    assert.doesNotMatch(r.stderr, dangerous);
    assert.equal(existsSync(o.sb.config), false, 'no config written');
    assert.deepEqual(await o.snapshot(), before, 'nothing deleted');
    // A damaged manifest: the same, with no advice to delete anything either.
    await fsp.writeFile(join(o.sb.store('t'), 'manifest.json'), '{"format": "nope"}');
    const bad = await o.run('init', 't', '--dir', o.tree, '--store', o.sb.store('t'));
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /E_MANIFEST/);
    assert.doesNotMatch(bad.stderr, dangerous);
    // Packing options make no sense for a store that already holds the tree.
    await fsp.writeFile(
      join(o.sb.store('t'), 'manifest.json'),
      JSON.stringify({ ...m, images: m.images }),
    );
    const pack = await o.run(
      'init',
      't',
      '--dir',
      o.tree,
      '--store',
      o.sb.store('t'),
      '--remove-source',
    );
    assert.equal(pack.status, 2, pack.stderr);
  });

  it('builds a tree that the config names but that has no images, from the config', async (t) => {
    if (!needRoot(t)) return;
    const sb = await sandbox(t);
    const tree = join(sb.dir, 'tree');
    const model = join(sb.dir, 'model');
    await buildTree(tree, SMALL);
    await buildTree(model, SMALL);
    const text = `# written by hand\n[tree.t]\ndir = "${tree}"\nstore = "${sb.store('t')}"\ncompression = "lz4"\n`;
    await fsp.writeFile(sb.config, text);
    const run = sq(sb);
    const start = await run('start', 't');
    assert.equal(start.status, 1);
    assert.match(start.stderr, /squashtree init t\b/);
    const wrongDir = await run('init', 't', '--dir', join(sb.dir, 'elsewhere'));
    assert.equal(wrongDir.status, 2, wrongDir.stderr);
    assert.match(wrongDir.stderr, /dir/);
    const r = await run('init', 't');
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.equal(await fsp.readFile(sb.config, 'utf8'), text, 'the config is left as written');
    const m = JSON.parse(
      await fsp.readFile(join(sb.store('t'), 'manifest.json'), 'utf8'),
    ) as Manifest;
    assert.deepEqual(
      Object.values(m.images).map((i) => i.compression),
      ['lz4'],
    );
    const again = await run('init', 't');
    assert.equal(again.status, 1);
    assert.match(again.stderr, /E_TREE_EXISTS/);
    assert.match(again.stderr, /squashtree start t/);
    await sqOk(sb)('start', 't');
    await assertSameTree(model, tree, 'built from the config');
    await sqOk(sb)('stop', 't');
  });
});
