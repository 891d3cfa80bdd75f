/** The generation manifest: image names, the schema, and reading a damaged file. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  IMAGE_NAME,
  MANIFEST_FILE,
  currentGeneration,
  generation,
  imageFileName,
  manifestPath,
  manifestSchema,
  readManifest,
  type Manifest,
} from '../../src/store/manifest.js';
import { SquashtreeError } from '../../src/errors.js';

const SHA = 'ab'.repeat(32);

function validManifest(): Manifest {
  return {
    format: 'squashtree-manifest/1',
    tree: 'gentoo',
    current: 2,
    lastGeneration: 2,
    images: {
      'g000001-base.sqfs': {
        file: 'g000001-base.sqfs',
        kind: 'base',
        bytes: 104857600,
        sha256: SHA,
        compression: 'zstd',
        blockSize: 131072,
        created: '2024-06-01T00:00:00.000Z',
      },
      'g000002-layer.sqfs': {
        file: 'g000002-layer.sqfs',
        kind: 'layer',
        bytes: 4096,
        sha256: 'cd'.repeat(32),
        compression: 'unknown',
        blockSize: 0,
        created: '2024-06-02T00:00:00.000Z',
      },
    },
    generations: [
      {
        generation: 1,
        parent: null,
        action: 'init',
        created: '2024-06-01T00:00:00.000Z',
        durationMs: 1234.5,
        images: ['g000001-base.sqfs'],
        files: 200000,
        bytes: 950000000,
      },
      {
        generation: 2,
        parent: 1,
        action: 'commit',
        created: '2024-06-02T00:00:00.000Z',
        durationMs: 0,
        images: ['g000001-base.sqfs', 'g000002-layer.sqfs'],
        files: null,
        bytes: null,
      },
    ],
  };
}

/** A deep copy to damage. */
function copy(): Record<string, unknown> {
  return JSON.parse(JSON.stringify(validManifest())) as Record<string, unknown>;
}

describe('imageFileName and IMAGE_NAME', () => {
  it('pads the generation to six digits', () => {
    assert.equal(imageFileName(1, 'base'), 'g000001-base.sqfs');
    assert.equal(imageFileName(42, 'layer'), 'g000042-layer.sqfs');
    assert.equal(imageFileName(999999, 'base'), 'g999999-base.sqfs');
  });

  it('keeps every digit beyond six', () => {
    assert.equal(imageFileName(1234567, 'layer'), 'g1234567-layer.sqfs');
  });

  it('produces names IMAGE_NAME accepts', () => {
    for (const n of [1, 7, 100000, 999999, 1000000, 12345678]) {
      for (const k of ['base', 'layer'] as const) {
        assert.match(imageFileName(n, k), IMAGE_NAME);
      }
    }
  });

  it('sorts in generation order as text up to six digits', () => {
    const names = [3, 10, 2, 100, 1].map((n) => imageFileName(n, 'layer'));
    assert.deepEqual(
      [...names].sort(),
      [1, 2, 3, 10, 100].map((n) => imageFileName(n, 'layer')),
    );
  });

  it('refuses anything else, including path tricks', () => {
    for (const name of [
      'g00001-base.sqfs',
      'g000001-Base.sqfs',
      'g000001-base.sqfs.tmp',
      'g000001-other.sqfs',
      '../g000001-base.sqfs',
      'x/g000001-base.sqfs',
      'g000001-base.sqfs/..',
      'g000001-base.sqfs\n',
      ' g000001-base.sqfs',
      'g-000001-base.sqfs',
      'g000001-base.squashfs',
      '',
    ]) {
      assert.doesNotMatch(name, IMAGE_NAME, JSON.stringify(name));
    }
  });
});

describe('manifestSchema', () => {
  it('accepts a valid manifest', () => {
    const r = manifestSchema.safeParse(validManifest());
    assert.ok(r.success);
    assert.deepEqual(r.data, validManifest());
  });

  for (const [label, damage] of [
    ['another format', (m: Record<string, unknown>) => (m.format = 'squashtree-manifest/2')],
    ['no tree', (m: Record<string, unknown>) => delete m.tree],
    ['current 0', (m: Record<string, unknown>) => (m.current = 0)],
    ['current 1.5', (m: Record<string, unknown>) => (m.current = 1.5)],
    ['lastGeneration as text', (m: Record<string, unknown>) => (m.lastGeneration = '2')],
    ['no generations', (m: Record<string, unknown>) => (m.generations = [])],
    ['images as a list', (m: Record<string, unknown>) => (m.images = [])],
  ] as const) {
    it(`refuses ${label}`, () => {
      const m = copy();
      damage(m);
      assert.equal(manifestSchema.safeParse(m).success, false);
    });
  }

  const image = (m: Record<string, unknown>): Record<string, unknown> =>
    (m.images as Record<string, Record<string, unknown>>)['g000001-base.sqfs'] ?? {};
  const gen = (m: Record<string, unknown>): Record<string, unknown> =>
    (m.generations as Record<string, unknown>[])[1] ?? {};

  for (const [label, damage] of [
    ['a bad image file name', (m: Record<string, unknown>) => (image(m).file = '../etc/passwd')],
    ['an unknown image kind', (m: Record<string, unknown>) => (image(m).kind = 'delta')],
    ['negative bytes', (m: Record<string, unknown>) => (image(m).bytes = -1)],
    ['an upper-case sha256', (m: Record<string, unknown>) => (image(m).sha256 = 'AB'.repeat(32))],
    ['a short sha256', (m: Record<string, unknown>) => (image(m).sha256 = 'ab')],
    ['an unknown compressor', (m: Record<string, unknown>) => (image(m).compression = 'bzip2')],
    ['a missing created', (m: Record<string, unknown>) => delete image(m).created],
    ['an unknown action', (m: Record<string, unknown>) => (gen(m).action = 'merge')],
    ['a generation without images', (m: Record<string, unknown>) => (gen(m).images = [])],
    ['a bad name in a generation', (m: Record<string, unknown>) => (gen(m).images = ['x.sqfs'])],
    ['a parent of 0', (m: Record<string, unknown>) => (gen(m).parent = 0)],
    ['a negative duration', (m: Record<string, unknown>) => (gen(m).durationMs = -1)],
    ['fractional files', (m: Record<string, unknown>) => (gen(m).files = 1.5)],
  ] as const) {
    it(`refuses ${label}`, () => {
      const m = copy();
      damage(m);
      assert.equal(manifestSchema.safeParse(m).success, false);
    });
  }
});

describe('generation and currentGeneration', () => {
  const m = validManifest();

  it('find a kept generation', () => {
    assert.equal(generation(m, 1).action, 'init');
    assert.equal(currentGeneration(m).generation, 2);
  });

  it('refuse one that is not kept with E_NO_GENERATION', () => {
    assert.throws(
      () => generation(m, 5),
      (e: unknown) =>
        e instanceof SquashtreeError && e.code === 'E_NO_GENERATION' && /1, 2/.test(e.hint ?? ''),
    );
  });
});

describe('readManifest', () => {
  async function store(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
    const dir = await fsp.mkdtemp(join(tmpdir(), 'squashtree-manifest-'));
    t.after(() => fsp.rm(dir, { recursive: true, force: true }));
    return dir;
  }

  async function damaged(dir: string, text: string, why: RegExp): Promise<void> {
    await fsp.writeFile(manifestPath(dir), text);
    await assert.rejects(readManifest(dir), (e: unknown) => {
      assert.ok(e instanceof SquashtreeError, String(e));
      assert.equal(e.code, 'E_MANIFEST');
      assert.equal(e.path, join(dir, MANIFEST_FILE));
      assert.ok(e.message.includes(join(dir, MANIFEST_FILE)), e.message);
      assert.match(e.message, why);
      assert.ok(e.hint);
      return true;
    });
  }

  it('gives null when the store has no manifest (or does not exist)', async (t) => {
    const dir = await store(t);
    assert.equal(await readManifest(dir), null);
    assert.equal(await readManifest(join(dir, 'missing')), null);
  });

  it('reads a valid manifest', async (t) => {
    const dir = await store(t);
    await fsp.writeFile(manifestPath(dir), JSON.stringify(validManifest(), null, 2));
    assert.deepEqual(await readManifest(dir), validManifest());
  });

  it('refuses damaged JSON with E_MANIFEST', async (t) => {
    const dir = await store(t);
    const good = JSON.stringify(validManifest());
    await damaged(dir, good.slice(0, good.length / 2), /not valid JSON/);
    await damaged(dir, '', /not valid JSON/);
    await damaged(dir, '\0\0\0\0', /not valid JSON/);
  });

  it('refuses JSON of the wrong shape with E_MANIFEST', async (t) => {
    const dir = await store(t);
    await damaged(dir, 'null', /damaged/);
    await damaged(dir, '[]', /damaged/);
    await damaged(dir, JSON.stringify({ ...validManifest(), format: 'other' }), /damaged/);
  });

  it('refuses a generation that names an image the manifest does not list', async (t) => {
    const dir = await store(t);
    const m = validManifest();
    delete m.images['g000002-layer.sqfs'];
    await damaged(dir, JSON.stringify(m), /generation 2 names unknown image g000002-layer\.sqfs/);
  });

  it('refuses a current generation that is not listed', async (t) => {
    const dir = await store(t);
    await damaged(dir, JSON.stringify({ ...validManifest(), current: 3 }), /current generation 3/);
  });
});
