/**
 * The fleet in steady state, over eight generated days with the default
 * compaction policy (compact-after = 2, keep = 2), against a real
 * docker-registry on 127.0.0.1: what followers download against the day's
 * layers, for a builder that stops every day (a new base every other day)
 * and one that stays mounted (commit + publish each day), plus a follower
 * that was offline for five days. Every count is bytes the CLI reports.
 */
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { applySync, generateRepo, type RepoStats } from '../../src/corpus/portage.js';
import type { CommitResult } from '../../src/lifecycle/commit.js';
import type { PullResult } from '../../src/oci/pull.js';
import { sandbox } from '../helpers/env.js';
import { sqOk } from '../helpers/cli.js';
import { parseJson, type StatusJson } from '../helpers/setup.js';
import { assertSameTree } from '../helpers/tree.js';
import { follower, needRegistry, publish, pull, startRegistry } from '../helpers/registry.js';

const DAYS = 8;
const SHAPE = { categories: 10, packagesPerCategory: 30, seed: 12 };
const PER_DAY = 30;
/** Manifests, configs, tags and tokens a pull reads besides blobs, per day at most. */
const DOCUMENTS_PER_DAY = 24 << 10;

type Ok = ReturnType<typeof sqOk>;

async function builder(
  t: TestContext,
  dir: string,
  name: string,
): Promise<{ ok: Ok; tree: string }> {
  const sb = await sandbox(t, `st-fleet-${name}-`);
  const tree = join(sb.dir, 'tree');
  execFileSync('cp', ['-a', dir, tree]);
  const ok = sqOk(sb);
  await ok('init', 't', '--dir', tree, '--store', sb.store('t'));
  await ok('start', 't');
  return { ok, tree };
}

async function commit(ok: Ok): Promise<CommitResult> {
  const r = parseJson<{ trees: { result: CommitResult }[] }>(await ok('commit', 't', '--json'));
  const c = r.trees[0]?.result;
  assert.ok(c?.committed, 'the day committed a layer');
  return c;
}

async function images(ok: Ok): Promise<number> {
  return parseJson<StatusJson>(await ok('status', '--json')).trees[0]?.layers ?? 0;
}

function sum(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}

function bases(r: PullResult): string[] {
  return r.images
    .filter((i) => i.how === 'downloaded' && /-base\.sqfs$/.test(i.file))
    .map((i) => i.file);
}

describe('OCI registry: the fleet over eight days', { concurrency: false }, () => {
  it('followers download about the daily layers, whether the builder stops daily or stays mounted; an offline follower catches up with layers only', async (t) => {
    if (!needRegistry(t)) return;
    const sb = await sandbox(t, 'st-fleet-');
    const model = join(sb.dir, 'model');
    const stats: RepoStats = await generateRepo(model, SHAPE);
    const reg = await startRegistry(t, sb.dir);
    const refA = `${reg.host}/fleet/daily-stop`;
    const refB = `${reg.host}/fleet/mounted`;
    const a = await builder(t, model, 'a');
    const b = await builder(t, model, 'b');
    await publish(a.ok, refA);
    await publish(b.ok, refB);
    const fa = await follower(t);
    const fb = await follower(t);
    const offline = await follower(t);
    await pull(fa, refA);
    await pull(fb, refB);
    await pull(offline, refA);

    const live: RepoStats = { ...stats, packages: [...stats.packages] };
    const rows: { layer: number; a: PullResult; b: PullResult }[] = [];
    let stacked = true;
    let offlineCatchUp: PullResult | undefined;
    for (let day = 1; day <= DAYS; day++) {
      const seed = 4000 + day;
      for (const dir of [model, a.tree, b.tree]) await applySync(dir, live, seed, PER_DAY);
      live.packages = live.packages.filter((cp) => existsSync(join(model, cp)));
      // Builder A: commit, stop (compacting every other day), start, publish.
      const layer = (await commit(a.ok)).layerBytes;
      await a.ok('stop', 't');
      await a.ok('start', 't');
      await publish(a.ok, refA);
      // Builder B stays mounted: commit, publish.
      const before = await images(b.ok);
      await commit(b.ok);
      if (day > 1 && (await images(b.ok)) <= before) stacked = false;
      await publish(b.ok, refB);
      rows.push({ layer, a: await pull(fa, refA), b: await pull(fb, refB) });
      if (day === 1) await pull(offline, refA);
      // Offline on days 2 to 6: it catches up on day 7.
      if (day === 7) offlineCatchUp = await pull(offline, refA);
    }
    // B stops at last (the session's layers are compacted) and publishes once more.
    await b.ok('stop', 't');
    await publish(b.ok, refB);
    const last = await pull(fb, refB);

    const layers = rows.map((r) => r.layer);
    const downA = rows.map((r) => r.a.bytesDownloaded);
    const downB = [...rows.map((r) => r.b.bytesDownloaded), last.bytesDownloaded];
    const lines = rows.map(
      (r, i) =>
        `day ${i + 1}: layer ${r.layer} B; daily-stop follower ${r.a.bytesDownloaded} B (${r.a.rebuilt.length} rebuilt); mounted follower ${r.b.bytesDownloaded} B`,
    );
    const missed = layers.slice(1, 7);
    const ratioA = sum(downA) / sum(layers);
    const ratioB = sum(downB) / sum(layers);
    lines.push(
      `daily-stop: ${sum(downA)} B for ${sum(layers)} B of layers: ${ratioA.toFixed(3)}x`,
      `mounted: ${sum(downB)} B (the last stop's compaction: ${last.bytesDownloaded} B): ${ratioB.toFixed(3)}x`,
      `offline on days 2-6: ${offlineCatchUp?.bytesDownloaded ?? 0} B on day 7 for ${sum(missed)} B of layers of days 2-7`,
    );
    lines.push(
      `offline catch-up: ${(offlineCatchUp?.images ?? []).map((i) => `${i.file} ${i.how}${i.inputs ? ` from ${i.inputs.map((x) => x.how).join(', ')}` : ''}`).join('; ')}`,
    );
    for (const l of lines) {
      t.diagnostic(l);
      console.log(`# ${l}`);
    }

    // The builder that stops daily made a new base every other day; followers rebuilt each.
    assert.ok(
      rows.filter((r) => r.a.rebuilt.length > 0).length >= DAYS / 2 - 1,
      'compacted bases were rebuilt',
    );
    for (const r of rows) assert.deepEqual(bases(r.a), [], 'no base was downloaded');
    assert.ok(ratioA <= 1.2, `daily-stop follower: ${ratioA.toFixed(3)}x the daily layers`);
    for (const r of rows) {
      assert.ok(
        r.a.transferBytes - r.a.bytesDownloaded <= DOCUMENTS_PER_DAY,
        `documents: ${r.a.transferBytes - r.a.bytesDownloaded} B`,
      );
    }
    const o = offlineCatchUp;
    assert.ok(o);
    assert.deepEqual(bases(o), [], 'the offline follower caught up with layers only');
    assert.ok(o.rebuilt.length > 0);
    assert.ok(
      o.bytesDownloaded <= 1.2 * sum(missed),
      `offline follower: ${o.bytesDownloaded} B for ${sum(missed)} B of layers`,
    );
    await pull(offline, refA);
    for (const fo of [fa, offline]) {
      await fo.ok('start', 't');
      await assertSameTree(model, fo.tree, 'a follower of the daily-stop builder');
      await fo.ok('stop', 't');
    }
    await a.ok('stop', 't');

    assert.ok(stacked, 'each commit of the mounted session is a layer of its own');
    assert.deepEqual(bases(last), [], 'the mounted builder’s final compaction was rebuilt');
    assert.ok(ratioB <= 1.2, `mounted follower: ${ratioB.toFixed(3)}x the daily layers`);
    await fb.ok('start', 't');
    await assertSameTree(model, fb.tree, 'a follower of the mounted builder');
    await fb.ok('stop', 't');
  });
});
