/**
 * The packer's worker script as the bundle ships it (scripts/bundle.mjs):
 * the CLI bundle names it, it loads on its own (zstd's WebAssembly too)
 * and compresses a job to the same bytes as the library does inline. The
 * xattr binary stays outside the bundle (a native module is required at
 * run time), and the bundles are ASCII.
 */
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { dataCompressor, prepareEncoders } from '../../src/squashfs/compress.js';
import { runJob, type EncoderSpec, type PackResult } from '../../src/squashfs/pack-jobs.js';

const dist = new URL('../../dist/', import.meta.url).pathname;
const bundle = join(dist, 'squashtree.mjs');
const worker = join(dist, 'squashtree-pack-worker.mjs');

function skipWithoutBuild(t: TestContext): boolean {
  if (existsSync(bundle) && existsSync(worker)) return false;
  process.stderr.write(`SKIPPED: ${t.name}: no build in dist/ (npm run build)\n`);
  t.skip('needs npm run build');
  return true;
}

function runInWorker(spec: EncoderSpec, job: unknown): Promise<PackResult> {
  const w = new Worker(worker, { workerData: spec });
  return new Promise<PackResult>((resolve, reject) => {
    w.on('error', reject);
    w.on('message', (m: { ready?: true; fatal?: string; result?: PackResult }) => {
      if (m.ready) w.postMessage({ id: 1, job });
      else if (m.fatal) reject(new Error(m.fatal));
      else if (m.result) resolve(m.result);
    });
  }).finally(() => w.terminate());
}

describe('squashfs packer: the bundled worker script', () => {
  it('is named by the CLI bundle, which leaves the xattr binary out', async (t) => {
    if (skipWithoutBuild(t)) return;
    const text = await fsp.readFile(bundle, 'utf8');
    assert.ok(text.includes('"./squashtree-pack-worker.mjs"'), 'the bundle names its worker');
    assert.ok(!text.includes('xattr.linux-x64-gnu.node'), 'the native binary is not bundled');
  });

  it('is ASCII, so that V8 keeps its source one byte a character', async (t) => {
    if (skipWithoutBuild(t)) return;
    for (const f of [bundle, worker]) {
      const bytes = await fsp.readFile(f);
      assert.equal(
        bytes.findIndex((b) => b > 0x7f),
        -1,
        `${f} has a byte past ASCII`,
      );
    }
  });

  for (const name of ['gzip', 'zstd', 'xz'] as const) {
    it(`compresses a job as the library does inline (${name})`, async (t) => {
      if (skipWithoutBuild(t)) return;
      const dir = await fsp.mkdtemp(join(tmpdir(), 'st-bundle-'));
      t.after(() => fsp.rm(dir, { recursive: true, force: true }));
      const file = join(dir, 'f');
      const data = Buffer.alloc(3 * 131072 + 99);
      for (let i = 0; i < data.length; i++) data[i] = (i * 13 + (i >> 10)) % 97;
      await fsp.writeFile(file, data);
      const spec: EncoderSpec = { name, options: {}, blockSize: 131072 };
      const job = {
        kind: 'blocks',
        path: Buffer.from(file),
        size: data.length,
        first: 0,
        count: 4,
      };
      const got = await runInWorker(spec, job);
      await prepareEncoders(name);
      const encode = dataCompressor(name, {});
      assert.ok(encode);
      const want = runJob({ ...job, kind: 'blocks' }, spec, encode);
      assert.deepEqual([...got.words], [...want.words]);
      assert.deepEqual([...got.crcs], [...want.crcs]);
      assert.ok(Buffer.from(got.data).equals(Buffer.from(want.data)));
    });
  }
});
