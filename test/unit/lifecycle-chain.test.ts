/**
 * resolveChain and the snapshots keyed by generation, on a temp dir: where
 * a session's next commit stacks, how a commit killed between its manifest
 * and its session record is taken up, and when a session cannot stack.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { resolveChain } from '../../src/lifecycle/commit-chain.js';
import type { Layout } from '../../src/lifecycle/layout.js';
import type { Session } from '../../src/lifecycle/session.js';
import {
  readGenerationSnapshot,
  removeSnapshots,
  removeUnnamedSnapshots,
  snapshotPath,
  writeGenerationSnapshot,
} from '../../src/lifecycle/snapshot.js';
import type { Generation, ImageRecord, Manifest } from '../../src/store/manifest.js';

const SHA = (c: string): string => c.repeat(64);

async function home(t: TestContext): Promise<Layout> {
  const dir = await fsp.mkdtemp(join(tmpdir(), 'st-chain-'));
  t.after(() => fsp.rm(dir, { recursive: true, force: true }));
  return { sessionHome: dir } as Layout;
}

function record(file: string, sha: string): ImageRecord {
  return {
    file,
    kind: file.endsWith('-base.sqfs') ? 'base' : 'layer',
    bytes: 4096,
    sha256: sha,
    compression: 'gzip',
    blockSize: 131072,
    created: '2026-01-01T00:00:00Z',
  };
}

function gen(
  n: number,
  parent: number | null,
  action: Generation['action'],
  images: string[],
): Generation {
  return {
    generation: n,
    parent,
    action,
    created: '2026-01-01T00:00:00Z',
    durationMs: 1,
    images,
    files: 1,
    bytes: 1,
  };
}

const B1 = 'g000001-base.sqfs';
const L2 = 'g000002-layer.sqfs';
const L3 = 'g000003-layer.sqfs';

function manifest(gens: Generation[], current: number, shas: Record<string, string>): Manifest {
  return {
    format: 'squashtree-manifest/1',
    tree: 't',
    current,
    lastGeneration: Math.max(...gens.map((g) => g.generation)),
    images: Object.fromEntries(Object.entries(shas).map(([f, s]) => [f, record(f, s)])),
    generations: gens,
  };
}

const session = (committed: number | null): Session => ({
  format: 'squashtree-session/1',
  tree: 't',
  dir: '/tree',
  lower: [B1],
  generation: 1,
  lowerFiles: 1,
  lowerBytes: 1,
  mountedAt: '2026-01-01T00:00:00Z',
  committedGeneration: committed,
  engine: 'kernel',
});

const entries = (...paths: string[]): Map<string, string> =>
  new Map(paths.map((p) => [p, `file:420:0:0:1:1:1:${p.length}:0:`]));

describe('resolveChain', () => {
  const g1 = gen(1, null, 'init', [B1]);
  const g2 = gen(2, 1, 'commit', [B1, L2]);
  const g3 = gen(3, 2, 'commit', [B1, L2, L3]);

  it('a session that committed nothing stacks on what it mounted, holding none of the upper', async (t) => {
    const layout = await home(t);
    const c = await resolveChain(layout, session(null), manifest([g1], 1, { [B1]: SHA('a') }));
    assert.equal(c.head?.generation, 1);
    assert.deepEqual(c.images, [B1]);
    assert.equal(c.snapshot.size, 0);
    assert.equal(c.unstackable, undefined);
  });

  it('after a commit: that generation and its snapshot', async (t) => {
    const layout = await home(t);
    await writeGenerationSnapshot(layout, {
      generation: 2,
      images: [B1, L2],
      top: SHA('b'),
      entries: entries('a'),
    });
    const m = manifest([g1, g2], 2, { [B1]: SHA('a'), [L2]: SHA('b') });
    const c = await resolveChain(layout, session(2), m);
    assert.deepEqual([c.head?.generation, c.recovered, c.unstackable], [2, false, undefined]);
    assert.deepEqual([...c.snapshot.keys()], ['a']);
  });

  it('takes up a generation whose commit was killed before the session record', async (t) => {
    const layout = await home(t);
    await writeGenerationSnapshot(layout, {
      generation: 3,
      images: [B1, L2, L3],
      top: SHA('c'),
      entries: entries('a', 'b'),
    });
    const m = manifest([g1, g2, g3], 3, { [B1]: SHA('a'), [L2]: SHA('b'), [L3]: SHA('c') });
    const c = await resolveChain(layout, session(2), m);
    assert.equal(c.recovered, true);
    assert.equal(c.session.committedGeneration, 3);
    assert.deepEqual(c.images, [B1, L2, L3]);
    assert.deepEqual([...c.snapshot.keys()], ['a', 'b']);
  });

  it('not when the top image is another (a pull made that generation): the session is out of step', async (t) => {
    const layout = await home(t);
    await writeGenerationSnapshot(layout, {
      generation: 2,
      images: [B1, L2],
      top: SHA('b'),
      entries: entries('a'),
    });
    await writeGenerationSnapshot(layout, {
      generation: 3,
      images: [B1, L2, L3],
      top: SHA('c'),
      entries: entries('a', 'b'),
    });
    const m = manifest([g1, g2, g3], 3, { [B1]: SHA('a'), [L2]: SHA('b'), [L3]: SHA('f') });
    const c = await resolveChain(layout, session(2), m);
    assert.equal(c.recovered, false);
    assert.match(c.unstackable ?? '', /generation 3 is not the one this session made/);
    // Pending changes still count against what the session committed.
    assert.equal(c.head?.generation, 2);
    assert.deepEqual([...c.snapshot.keys()], ['a']);
  });

  it('a snapshot that names other images than its generation is no snapshot of it', async (t) => {
    const layout = await home(t);
    await writeGenerationSnapshot(layout, {
      generation: 2,
      images: [B1, L3],
      top: SHA('b'),
      entries: entries('a'),
    });
    const m = manifest([g1, g2], 2, { [B1]: SHA('a'), [L2]: SHA('b') });
    const c = await resolveChain(layout, session(2), m);
    assert.match(c.unstackable ?? '', /no record of what generation 2 holds/);
  });
});

describe('generation snapshots', () => {
  it('round-trip binary names; a damaged one reads as none', async (t) => {
    const layout = await home(t);
    const names = entries('caf\xe9\n', 'plain');
    await writeGenerationSnapshot(layout, {
      generation: 5,
      images: [B1],
      top: null,
      entries: names,
    });
    const back = await readGenerationSnapshot(layout, 5);
    assert.deepEqual([...(back?.entries.keys() ?? [])], ['caf\xe9\n', 'plain']);
    await fsp.writeFile(snapshotPath(layout, 5), '{"format":"squashtree-upper/2"');
    assert.equal(await readGenerationSnapshot(layout, 5), null);
    assert.equal(await readGenerationSnapshot(layout, 6), null);
  });

  it('those of generations no manifest named go; removeSnapshots keeps what it is told', async (t) => {
    const layout = await home(t);
    for (const g of [3, 4, 5])
      await writeGenerationSnapshot(layout, {
        generation: g,
        images: [B1],
        top: null,
        entries: entries(),
      });
    await removeUnnamedSnapshots(layout, 4);
    assert.deepEqual((await fsp.readdir(layout.sessionHome)).sort(), [
      'upper-g000003.json',
      'upper-g000004.json',
    ]);
    await removeSnapshots(layout, new Set([4]));
    assert.deepEqual(await fsp.readdir(layout.sessionHome), ['upper-g000004.json']);
    await removeSnapshots(layout);
    assert.deepEqual(await fsp.readdir(layout.sessionHome), []);
  });
});
