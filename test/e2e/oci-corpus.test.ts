/**
 * The registry with the real corpus: one day of GURU crosses the wire as
 * about its layer. Skipped, with a message, without the corpus
 * (../shared/corpus) or docker-registry.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { sandbox } from '../helpers/env.js';
import { sqOk } from '../helpers/cli.js';
import { CORPUS, PORTAGE_RSYNC } from '../helpers/portage.js';
import { follower, needRegistry, publish, pull, startRegistry } from '../helpers/registry.js';

describe('OCI registry: the real corpus (figures)', () => {
  it('one day of GURU (guru-base -> guru-d1): the follower downloads about the layer, not the tree', async (t) => {
    if (!existsSync(join(CORPUS, 'guru-d1.tar.xz'))) {
      const msg = `corpus not found at ${CORPUS}; skipping the real-corpus registry test`;
      console.log(`# SKIP: ${msg}`);
      t.skip(msg);
      return;
    }
    if (!needRegistry(t)) return;
    const sb = await sandbox(t);
    for (const s of ['base', 'd1']) {
      await fsp.mkdir(join(sb.dir, s));
      execFileSync('tar', ['-xJf', join(CORPUS, `guru-${s}.tar.xz`), '-C', join(sb.dir, s)]);
    }
    const tree = join(sb.dir, 'tree');
    execFileSync('cp', ['-a', join(sb.dir, 'base'), tree]);
    const ok = sqOk(sb);
    const compression = process.env.SQUASHTREE_OCI_CORPUS_COMPRESSION ?? 'gzip';
    await ok('init', 't', '--dir', tree, '--store', sb.store('t'), '--compression', compression);
    const reg = await startRegistry(t, sb.dir);
    const ref = `${reg.host}/gentoo/guru`;
    await ok('start', 't');
    const pub1 = await publish(ok, ref);
    const fo = await follower(t);
    const first = await pull(fo, ref);

    execFileSync('rsync', [...PORTAGE_RSYNC, `${join(sb.dir, 'd1')}/`, `${tree}/`]);
    await ok('commit', 't');
    const pub2 = await publish(ok, ref);
    await ok('stop', 't');
    const layer = pub2.blobs.find((b) => b.uploaded);
    assert.ok(layer);
    const w0 = performance.now();
    const second = await pull(fo, ref);
    const wall = performance.now() - w0;
    const ratio = second.transferBytes / layer.bytes;
    const mib = (n: number): string => `${(n / 2 ** 20).toFixed(2)} MiB`;
    const lines = [
      `compression ${compression}`,
      `base image ${mib(pub1.blobs[0]?.bytes ?? 0)}; first pull ${mib(first.transferBytes)} in ${first.durationMs.toFixed(0)} ms`,
      `one-day layer ${layer.file} ${mib(layer.bytes)} (${layer.bytes} bytes); publish uploaded ${mib(pub2.uploadedBytes)} in ${pub2.durationMs.toFixed(0)} ms`,
      `second pull: ${second.bytesDownloaded} blob bytes, ${second.transferBytes} bytes in all (${ratio.toFixed(3)}x the layer) in ${second.durationMs.toFixed(0)} ms (${wall.toFixed(0)} ms for the whole command)`,
      `timestamp.chk in the config: ${pub2.timestamp ?? '(none)'}`,
    ];
    for (const l of lines) {
      t.diagnostic(l);
      console.log(`# ${l}`);
    }
    assert.equal(second.bytesDownloaded, layer.bytes);
    assert.ok(ratio <= 1.2, `transfer ${ratio.toFixed(3)}x the layer`);
    assert.equal(pub2.timestamp, 'Sat, 01 Aug 2026 21:01:15 +0000');
    await fo.ok('start', 't');
    const diff = execFileSync(
      'rsync',
      ['-n', '-a', '-c', '-O', '--delete', '-i', `${join(sb.dir, 'd1')}/`, `${fo.tree}/`],
      { encoding: 'utf8' },
    )
      .split('\n')
      .filter((l) => l && !l.startsWith('.d'));
    assert.deepEqual(diff.slice(0, 5), [], 'the follower holds guru-d1');
    await fo.ok('stop', 't');
  });
});
