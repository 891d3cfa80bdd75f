/**
 * Followers in steady state: a compacted base is rebuilt from the images a
 * follower holds (or the layers it fetches) instead of downloaded, and an
 * interrupted download resumes where it stopped. Against a real
 * docker-registry on 127.0.0.1, through the CLI.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { basename, join } from 'node:path';
import { BIN } from '../helpers/cli.js';
import { assertSameTree } from '../helpers/tree.js';
import { initTree, leftovers, parseJson } from '../helpers/setup.js';
import { Twin } from '../helpers/twin.js';
import {
  expectFail,
  follower,
  imageBytes,
  needRegistry,
  publish,
  pull,
  spec,
  startProxy,
  startRegistry,
  status,
  waitExit,
  waitFor,
} from '../helpers/registry.js';

describe('OCI registry: rebuilt bases and resumed downloads', { concurrency: false }, () => {
  it('compaction on the builder (a new base) is pulled correctly: rebuilt from the images a follower holds, or downloaded with --no-rebuild', async (t) => {
    if (!needRegistry(t)) return;
    const f = await initTree(t, spec());
    const reg = await startRegistry(t, f.sb.dir);
    const ref = `${reg.host}/squashtree/t`;
    const twin = new Twin(f.tree, f.model);
    await f.ok('start', 't');
    await twin.write('b.txt', 'beta\n');
    await f.ok('commit', 't');
    await f.ok('stop', 't');
    await publish(f.ok, ref);
    const fo = await follower(t);
    const r1 = await pull(fo, ref);
    assert.equal(r1.downloaded.length, 2);
    const fr = await follower(t);
    assert.equal((await pull(fr, ref)).downloaded.length, 2);
    await f.ok('start', 't');
    await twin.rm('a.txt');
    await twin.write('c.txt', 'gamma\n');
    await f.ok('stop', 't', '--no-compact');
    const compacted = parseJson<{ trees: { result: { generation: number } }[] }>(
      await f.ok('compact', 't', '--json'),
    );
    const gen = compacted.trees[0]?.result.generation ?? 0;
    const pub = await publish(f.ok, ref);
    assert.equal(pub.generation, gen);
    assert.equal(pub.blobs.length, 1);
    // The commit that the compaction merged away went up first, so its layer is a blob a manifest names.
    assert.deepEqual(
      pub.pushed.map((p) => [p.generation, p.recipes]),
      [
        [gen - 1, 0],
        [gen, 1],
      ],
    );
    const r = await pull(fo, ref, '--no-rebuild');
    assert.equal(r.generation, gen);
    const base = `g${String(gen).padStart(6, '0')}-base.sqfs`;
    assert.deepEqual(
      r.downloaded.map((d) => d.file),
      [base],
    );
    assert.equal(r.bytesDownloaded, await imageBytes(f.store, base));
    const st = await status(fo.ok);
    assert.equal(st.generation, gen);
    assert.equal(st.layers, 1);
    await fo.ok('start', 't');
    await assertSameTree(f.model, fo.tree, 'follower after the compacted generation');
    await fo.ok('stop', 't');
    await fo.ok('verify', 't');

    // By default the follower fetches only that layer and merges the base itself, byte for byte.
    const rr = await pull(fr, ref);
    const layer = `g${String(gen - 1).padStart(6, '0')}-layer.sqfs`;
    assert.deepEqual(
      rr.rebuilt.map((d) => d.file),
      [base],
    );
    assert.deepEqual(rr.downloaded, []);
    assert.equal(rr.bytesDownloaded, await imageBytes(f.store, layer));
    assert.deepEqual(
      rr.images.map((i) => [i.file, i.how, i.inputs?.map((x) => x.how)]),
      [[base, 'rebuilt', ['reused', 'reused', 'downloaded']]],
    );
    assert.equal(rr.images[0]?.transferred, await imageBytes(f.store, layer));
    assert.deepEqual(await leftovers(fr.store), []);
    await fr.ok('start', 't');
    await assertSameTree(f.model, fr.tree, 'follower that rebuilt the compacted generation');
    await fr.ok('stop', 't');
    await fr.ok('verify', 't');
  });

  it('an interrupted download (connection dropped, or the pull killed mid-blob) leaves the store intact and the next pull resumes it', async (t) => {
    if (!needRegistry(t)) return;
    const f = await initTree(t, spec());
    const reg = await startRegistry(t, f.sb.dir);
    const ref = `${reg.host}/squashtree/t`;
    await publish(f.ok, ref);
    const fo = await follower(t);
    await pull(fo, ref);
    await f.ok('start', 't');
    const twin = new Twin(f.tree, f.model);
    await twin.write('big.bin', randomBytes(1 << 20));
    await f.ok('stop', 't');
    const pub = await publish(f.ok, ref);
    const blob = pub.blobs.find((b) => b.file === 'g000002-layer.sqfs');
    assert.ok(blob && blob.bytes > 1 << 20);
    const part = join(fo.store, `.download-${blob.digest.slice('sha256:'.length)}`);

    const proxy = await startProxy(t, reg.port, blob.digest);
    const viaProxy = `127.0.0.1:${proxy.port}/squashtree/t`;
    proxy.mode = 'drop';
    const dropped = await fo.run('pull', 't', viaProxy, '--plain-http');
    expectFail(dropped, 'E_OCI');
    assert.match(dropped.stderr, /broke off after \d+ of \d+ bytes/);
    // The proxy sent half of the blob; what arrived before the connection closed is kept.
    const kept = (await fsp.stat(part)).size;
    assert.ok(kept > 0 && kept <= Math.floor(blob.bytes / 2), `${kept} bytes kept`);
    assert.match(dropped.stderr, new RegExp(`resumes from byte ${kept}\\b`));
    assert.equal((await status(fo.ok)).generation, 1, 'nothing applied');
    assert.deepEqual(
      await leftovers(fo.store),
      [basename(part)],
      'only the partial download is left, for the next run',
    );

    proxy.mode = 'stall';
    const child = spawn(
      process.execPath,
      [
        BIN,
        '--config',
        fo.sb.config,
        '--state-dir',
        fo.sb.state,
        'pull',
        't',
        viaProxy,
        '--plain-http',
      ],
      { stdio: 'ignore' },
    );
    t.after(() => {
      child.kill('SIGKILL');
    });
    await proxy.stalled;
    // The proxy holds the rest of the blob after sending half of what was asked for.
    const held = kept + Math.floor((blob.bytes - kept) / 2);
    const size = await waitFor(async () => {
      const n = (await fsp.stat(part)).size;
      return n === held ? n : undefined;
    });
    child.kill('SIGKILL');
    await waitExit(child, 5000);
    assert.equal(size, held, 'the killed pull had continued the partial file');
    assert.equal(proxy.ranges.at(-1), `bytes=${kept}-`, 'and asked only for the rest');
    assert.equal((await status(fo.ok)).generation, 1, 'nothing applied');
    await fo.ok('start', 't');
    await fo.ok('stop', 't');

    const r = await pull(fo, ref);
    assert.equal(r.generation, 2);
    assert.equal(r.bytesDownloaded, blob.bytes - held, 'the last pull fetched only the rest');
    assert.deepEqual(await leftovers(fo.store), [], 'the finished pull removed the partial file');
    await fo.ok('start', 't');
    await assertSameTree(f.model, fo.tree, 'follower after the completed pull');
    await fo.ok('stop', 't');
  });

  it('a server that ignores range requests: the download starts over, and a damaged partial file is never trusted', async (t) => {
    if (!needRegistry(t)) return;
    const f = await initTree(t, spec());
    const reg = await startRegistry(t, f.sb.dir);
    const ref = `${reg.host}/squashtree/t`;
    await publish(f.ok, ref);
    const fo = await follower(t);
    await pull(fo, ref);
    await f.ok('start', 't');
    const twin = new Twin(f.tree, f.model);
    await twin.write('big.bin', randomBytes(1 << 20));
    await f.ok('stop', 't');
    const pub = await publish(f.ok, ref);
    const blob = pub.blobs.find((b) => b.file === 'g000002-layer.sqfs');
    assert.ok(blob);
    const part = join(fo.store, `.download-${blob.digest.slice('sha256:'.length)}`);
    const proxy = await startProxy(t, reg.port, blob.digest);
    const viaProxy = `127.0.0.1:${proxy.port}/squashtree/t`;
    proxy.mode = 'drop';
    expectFail(await fo.run('pull', 't', viaProxy, '--plain-http'), 'E_OCI');
    assert.ok((await fsp.stat(part)).size > 0, 'a partial download is kept');

    proxy.mode = 'norange';
    const r = await pull(fo, viaProxy);
    assert.equal(r.generation, 2);
    assert.ok(proxy.ranges.length > 0, 'the follower asked for the rest');
    assert.equal(r.bytesDownloaded, blob.bytes, 'the server sent it all, and all of it was used');
    assert.deepEqual(await leftovers(fo.store), []);

    // A partial file whose bytes are wrong: the whole blob fails its digest and is fetched again.
    await f.ok('start', 't');
    await twin.write('big2.bin', randomBytes(1 << 20));
    await f.ok('stop', 't', '--no-compact');
    const pub3 = await publish(f.ok, ref);
    const blob3 = pub3.blobs.find((b) => b.uploaded);
    assert.ok(blob3);
    const part3 = join(fo.store, `.download-${blob3.digest.slice('sha256:'.length)}`);
    await fsp.writeFile(part3, randomBytes(4096));
    expectFail(await fo.run('pull', 't', ref, '--plain-http'), 'E_OCI_DIGEST');
    assert.deepEqual(await leftovers(fo.store), [], 'the wrong bytes were dropped');
    const r3 = await pull(fo, ref);
    assert.equal(r3.bytesDownloaded, blob3.bytes);
    await fo.ok('start', 't');
    await assertSameTree(f.model, fo.tree, 'follower after a download that started over');
    await fo.ok('stop', 't');
  });
});
