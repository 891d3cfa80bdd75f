/**
 * What the command line prints, as a new admin reads it (issue 14.14): the
 * man page, --help, progress while init verifies, the generations status
 * lists, init's ratio for a tiny tree, a rollback to the current generation,
 * the demo's commit time, and names that are not ASCII in --json.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { BIN, cli } from '../helpers/cli.js';
import { needRoot, sandbox } from '../helpers/env.js';
import { sqOk } from '../helpers/cli.js';
import { buildTree } from '../helpers/tree.js';
import { initTree } from '../helpers/setup.js';
import { needProgram } from '../helpers/programs.js';

describe('command line output', { concurrency: false }, () => {
  it('man shows the formatted page on a terminal and the roff source through a pipe', async (t) => {
    const piped = await cli(['man']);
    assert.equal(piped.status, 0);
    assert.match(piped.stdout, /^\.TH SQUASHTREE 8/);
    if (!needProgram(t, 'script', 'bsdutils') || !needProgram(t, 'man', 'man-db')) return;
    // script(1) runs the CLI on a pseudo-terminal; MANPAGER=cat keeps man from waiting for keys.
    const tty = spawnSync('script', ['-qec', `${process.execPath} ${BIN} man`, '/dev/null'], {
      encoding: 'utf8',
      env: { ...process.env, MANPAGER: 'cat', PAGER: 'cat', MANWIDTH: '80', TERM: 'dumb' },
    });
    assert.equal(tty.status, 0, tty.stderr);
    // Bold and underline come as overstrikes (X backspace X): read the text under them.
    const page = tty.stdout
      .split('')
      .filter((_, i, all) => all[i + 1] !== '\b' && all[i] !== '\b')
      .join('');
    assert.doesNotMatch(page, /^\.(TH|SH|TP)/m);
    assert.match(page, /SQUASHTREE\(8\)/);
    assert.match(page, /EXIT STATUS/);
  });

  it("every command's --help names --json and the exit codes", async () => {
    for (const args of [['--help'], ['start', '--help'], ['diff', '--help']]) {
      const r = await cli(args);
      assert.equal(r.status, 0);
      assert.match(r.stdout, /--json/, args.join(' '));
      assert.match(r.stdout, /Exit status: 0 success, 1 failure, 2 usage error/, args.join(' '));
    }
  });

  it('init reports progress while it verifies; a one-file tree gets no absurd ratio', async (t) => {
    if (!needRoot(t)) return;
    const sb = await sandbox(t);
    const tree = join(sb.dir, 'tree');
    await buildTree(tree, { one: 'x\n' });
    const r = await sqOk(sb)('init', 't', '--dir', tree, '--store', sb.store('t'));
    assert.match(r.stderr, /verifying[^\n]*: 100%/);
    assert.doesNotMatch(r.stdout, /\d{4,}(\.\d)?%/);
    assert.match(r.stdout, /for 2 B/);
  });

  it('status explains the generations it keeps; rollback to the current one changes nothing', async (t) => {
    if (!needRoot(t)) return;
    const f = await initTree(t);
    await f.ok('start', 't');
    await fsp.writeFile(join(f.tree, 'new'), 'n\n');
    await f.ok('stop', 't');
    const st = (await f.ok('status', 't')).stdout;
    assert.doesNotMatch(st, /\[2\]/);
    assert.match(st, /generations: 2 \(current\), 1/);
    assert.match(st, /rollback --to/);
    assert.match(st, /keep = 2/);
    const same = await f.ok('rollback', 't', '--to', '2');
    assert.doesNotMatch(same.stdout, /was 2/);
    assert.match(same.stdout, /already current/);
    const back = await f.ok('rollback', 't', '--to', '1');
    assert.match(back.stdout, /generation 1 is current again \(was 2\)/);
  });

  it('status says what the store holds and why: the current images, those kept for rollback (issue 14.13)', async (t) => {
    if (!needRoot(t)) return;
    const f = await initTree(t);
    for (let i = 0; i < 3; i++) {
      await f.ok('start', 't');
      await fsp.writeFile(join(f.tree, `f${i}`), `${i}\n`.repeat(1000));
      await f.ok('stop', 't');
    }
    const st = JSON.parse((await f.ok('status', 't', '--json')).stdout) as {
      trees: {
        storeBytes: number;
        imageBytes: number;
        storeUse: { currentBytes: number; rollbackBytes: number; rollbackGenerations: number[] };
      }[];
    };
    const s = st.trees[0];
    assert.ok(s);
    assert.equal(s.storeUse.currentBytes, s.imageBytes);
    assert.ok(s.storeUse.rollbackBytes > 0, 'older generations keep images of their own');
    assert.equal(s.storeUse.rollbackGenerations.length, 2, 'keep = 2');
    assert.equal(s.storeBytes, s.storeUse.currentBytes + s.storeUse.rollbackBytes);
    const text = (await f.ok('status', 't')).stdout;
    assert.match(text, /store: .* for the current generation/);
    assert.match(text, /kept for rollback to generations? \d/);
    assert.match(text, /keep = 2/);
    assert.match(text, /keep = 0/);
  });

  it('diff --json gives UTF-8 names as they are, and others with their bytes', async (t) => {
    if (!needRoot(t)) return;
    const f = await initTree(t);
    await f.ok('start', 't');
    await fsp.writeFile(join(f.tree, 'café-ü.txt'), 'x\n');
    await fsp.writeFile(Buffer.from(`${f.tree}/bad\xffname`, 'latin1'), 'y\n');
    const r = await f.ok('diff', 't', '--json');
    const changes = (
      JSON.parse(r.stdout) as {
        trees: { result: { changes: { kind: string; path: string; pathBase64?: string }[] } }[];
      }
    ).trees[0]?.result.changes;
    assert.ok(changes);
    const cafe = changes.find((c) => c.path.startsWith('caf'));
    assert.deepEqual(cafe, { kind: 'A', path: 'café-ü.txt', type: 'file' });
    const bad = changes.find((c) => c.path.startsWith('bad'));
    assert.equal(bad?.path, 'bad\\xffname');
    assert.deepEqual(
      Buffer.from(bad?.pathBase64 ?? '', 'base64'),
      Buffer.from('bad\xffname', 'latin1'),
    );
    const text = (await f.ok('diff', 't')).stdout;
    assert.match(text, /^A café-ü\.txt$/m);
    assert.match(text, /^A bad\\xffname$/m);
    await f.ok('stop', 't');
  });
});
