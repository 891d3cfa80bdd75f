/**
 * The merge rule (docs/merge-rule.md): the writer's output is a function of
 * the input images' bytes and the settings alone. The same stack merged in
 * this process, in two other processes (other working directory, time
 * zone, umask) and from copies of the inputs under other names gives the
 * same bytes, for every compressor. Runs as any user.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { applySync, generateRepo } from '../../src/corpus/portage.js';
import {
  BufferOutput,
  MERGE_METHOD,
  mergeEnvironment,
  writeMergedImage,
} from '../../src/squashfs/index.js';
import { layerOf } from '../helpers/layer-dir.js';

const haveTools = spawnSync('mksquashfs', ['-version']).status !== null;
const CHILD = fileURLToPath(new URL('../helpers/merge-child.ts', import.meta.url));
/** tsx by its path: the children run in another directory. */
const TSX = import.meta.resolve('tsx');

function sh(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe(
  'squashfs writer: reproducible merges',
  { skip: !haveTools && 'needs squashfs-tools' },
  () => {
    it('names its rule and what else must match', () => {
      assert.equal(MERGE_METHOD, 'squashtree-merge/3');
      const env = mergeEnvironment();
      assert.equal(env.zlib, process.versions.zlib);
      assert.equal(env.arch, process.arch);
    });

    for (const comp of ['gzip', 'xz', 'lz4', 'zstd']) {
      it(`gives the same bytes in other processes and from copies of the inputs (${comp})`, async (t) => {
        const dir = await fsp.mkdtemp(join(tmpdir(), 'st-repro-'));
        t.after(() => fsp.rm(dir, { recursive: true, force: true }));
        const shape = { categories: 6, packagesPerCategory: 20, seed: 3 };
        const base = await generateRepo(join(dir, 'a'), shape);
        await generateRepo(join(dir, 'b'), shape);
        await applySync(join(dir, 'b'), base, 5, 12);
        const whiteouts = await layerOf(join(dir, 'a'), join(dir, 'b'), join(dir, 'layer'));
        const pack = (src: string, out: string, pseudo: string[] = []): void => {
          sh('mksquashfs', [
            src,
            out,
            '-comp',
            comp,
            '-noappend',
            '-quiet',
            '-no-progress',
            ...pseudo.flatMap((p) => ['-p', p]),
          ]);
        };
        const inputs = [join(dir, 'a.sqfs'), join(dir, 'layer.sqfs')];
        pack(join(dir, 'a'), inputs[0] ?? '');
        pack(join(dir, 'layer'), inputs[1] ?? '', whiteouts);

        const here = new BufferOutput();
        await writeMergedImage(inputs, here, { verify: true });
        const again = new BufferOutput();
        await writeMergedImage(inputs, again);
        assert.equal(sha(again.bytes), sha(here.bytes), 'the same process, twice');

        const elsewhere = join(dir, 'elsewhere');
        await fsp.mkdir(elsewhere);
        const copies = [join(elsewhere, 'g000009-base.sqfs'), join(elsewhere, 'other name')];
        for (const [i, p] of inputs.entries()) await fsp.copyFile(p, copies[i] ?? '');
        const runs: [string, string[], NodeJS.ProcessEnv][] = [
          [join(dir, 'one.sqfs'), inputs, { TZ: 'UTC' }],
          [join(dir, 'two.sqfs'), copies, { TZ: 'Pacific/Chatham', LANG: 'C' }],
        ];
        for (const [out, ins, env] of runs) {
          sh(process.execPath, ['--import', TSX, CHILD, out, ...ins], {
            cwd: elsewhere,
            env: { ...process.env, ...env },
          });
          assert.equal(sha(await fsp.readFile(out)), sha(here.bytes), `${out}: another process`);
        }
      });
    }
  },
);
