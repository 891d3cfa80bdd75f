/**
 * Faults that come from outside squashtree: a writer that keeps writing
 * while commit runs, and processes that hold the tree while it stops.
 * Whatever happens, the last committed generation stays intact, pending
 * changes stay pending, and nothing is left behind.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { needRoot } from '../helpers/env.js';
import { assertSameTree } from '../helpers/tree.js';
import { initTree } from '../helpers/setup.js';
import { assertClean, assertNoStack, treeStatus } from '../helpers/reliability.js';
import { writeBoth, assertStillMounted, writerDuringCommits } from '../helpers/outside-faults.js';

describe('faults from outside: writers and holders', { concurrency: false }, () => {
  it('a writer active during commit: each commit publishes whole records or fails with E_CAPTURE', async (t) => {
    if (!needRoot(t)) return;
    await writerDuringCommits(t, 'in-place');
  });

  it('a writer that replaces files by rename (temp file, then rename) during commit', async (t) => {
    if (!needRoot(t)) return;
    await writerDuringCommits(t, 'rename');
  });

  it('stop while a process holds a file open, maps one or has its cwd inside: nothing lost, the holder named, the upper stays', async (t) => {
    if (!needRoot(t)) return;
    const f = await initTree(t);
    await f.ok('start', 't');
    const holders = [
      {
        what: 'an open file being written',
        argv: [
          'python3',
          '-c',
          "import sys\nf=open(sys.argv[1],'w'); f.write('part1\\n'); f.flush(); print('ready', flush=True)\nsys.stdin.readline(); f.write('part2\\n'); f.close()",
          join(f.tree, 'held.txt'),
        ],
        cwd: f.sb.dir,
        after: async () => {
          await fsp.writeFile(join(f.model, 'held.txt'), 'part1\npart2\n');
        },
      },
      {
        what: 'a mapped file (descriptor closed)',
        argv: [
          'python3',
          '-c',
          "import sys, mmap\nfd=open(sys.argv[1],'rb'); m=mmap.mmap(fd.fileno(), 0, prot=mmap.PROT_READ); fd.close(); print('ready', flush=True)\nsys.stdin.readline()",
          join(f.tree, 'a.txt'),
        ],
        cwd: f.sb.dir,
        after: () => Promise.resolve(),
      },
      {
        what: 'a cwd inside the tree',
        argv: ['sh', '-c', 'echo ready; read x'],
        cwd: join(f.tree, 'cat-one', 'pkg'),
        after: () => Promise.resolve(),
      },
    ];
    for (const [i, h] of holders.entries()) {
      await writeBoth(f, `pending-${i}`, `written before stop ${i}\n`);
      const [cmd, ...args] = h.argv;
      const p = spawn(cmd ?? '', args, { cwd: h.cwd, stdio: ['pipe', 'pipe', 'inherit'] });
      t.after(() => p.kill('SIGKILL'));
      const gone = new Promise<void>((r) => {
        p.on('exit', () => {
          r();
        });
      });
      await new Promise<void>((r) => {
        p.stdout.once('data', () => {
          r();
        });
      });
      const gen = (await treeStatus(f)).generation;
      const r = await f.run('stop', 't');
      assert.equal(r.status, 1, `${h.what}: stop fails`);
      assertNoStack(r, h.what);
      assert.match(r.stderr, /E_BUSY/);
      assert.match(
        r.stderr,
        new RegExp(`pid ${p.pid ?? 0} \\([^\\n]*${cmd ?? ''}`),
        `${h.what}: holder named`,
      );
      assert.match(r.stderr, /your changes are committed/);
      assertStillMounted(f.sb, f.tree, h.what);
      assert.equal(
        (await treeStatus(f)).generation,
        gen + 1,
        `${h.what}: committed before failing`,
      );
      p.stdin.end('go\n');
      await gone;
      await h.after();
      await f.ok('stop', 't');
      await assertClean(f.sb, f.store, `${h.what}: after the holder left`);
      await f.ok('start', 't');
      await assertSameTree(f.model, f.tree, `${h.what}: after stop and start`);
    }
    await f.ok('stop', 't');
  });
});
