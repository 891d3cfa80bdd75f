/**
 * Shared by the faults-outside-*.test.ts files: a tree on a small store of
 * its own, the checks that nothing was lost or left behind, and a writer that
 * keeps writing while commits run (with the check of what it wrote).
 */
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { needRoot, sandbox, type Sandbox } from './env.js';
import { sq, sqOk, type CliResult } from './cli.js';
import { assertSameTree, buildTree } from './tree.js';
import { initTree, leftovers, SMALL, type TreeFixture } from './setup.js';
import {
  assertClean,
  assertNoStack,
  mountTable,
  runtimeOf,
  sleep,
  smallExt4,
  strayMounts,
  treeStatus,
} from './reliability.js';

/** The error code a failed CLI run printed ("error E_X: ..."). */
export function errorCode(r: CliResult): string {
  return /^error (E_[A-Z_]+):/m.exec(r.stderr)?.[1] ?? '(none)';
}

/** The "error E_X: message" line of a failed run. */
export function errorLine(r: CliResult): string {
  return (
    /^error E_.*$/m.exec(r.stderr)?.[0] ?? r.stderr.split('\n').find((l) => /error/.test(l)) ?? ''
  );
}

/** A tree whose store lives on a small ext4 filesystem of its own. */
export async function treeOnSmallStore(
  t: Parameters<typeof needRoot>[0],
  megabytes: number,
  toml: string,
  inodes?: number,
): Promise<TreeFixture & { storefs: string; filler: string }> {
  const sb = await sandbox(t);
  const storefs = smallExt4(sb, megabytes, inodes);
  const tree = join(sb.dir, 'tree');
  const model = join(sb.dir, 'model');
  await buildTree(tree, SMALL);
  await buildTree(model, SMALL);
  await fsp.writeFile(sb.config, toml);
  const ok = sqOk(sb);
  const store = join(storefs, 'store');
  await ok('init', 't', '--dir', tree, '--store', store);
  return {
    sb,
    tree,
    model,
    store,
    ok,
    run: sq(sb),
    storefs,
    filler: join(storefs, 'filler'),
  };
}

export async function writeBoth(f: TreeFixture, rel: string, data: Buffer | string): Promise<void> {
  await fsp.writeFile(join(f.tree, rel), data);
  await fsp.writeFile(join(f.model, rel), data);
}

/**
 * Image files in the store that no generation of the manifest names, nor the
 * mounted session stands on (the store keeps those while the session lasts).
 */
export async function orphanImages(store: string, sb?: Sandbox): Promise<string[]> {
  const m = JSON.parse(await fsp.readFile(join(store, 'manifest.json'), 'utf8')) as {
    generations: { images: string[] }[];
  };
  const named = new Set(m.generations.flatMap((g) => g.images));
  if (sb) {
    const session = await fsp
      .readFile(join(runtimeOf(sb).runtime, 'session.json'), 'utf8')
      .then((t) => JSON.parse(t) as { lower: string[] })
      .catch(() => ({ lower: [] }));
    for (const f of session.lower) named.add(f);
  }
  return (await fsp.readdir(store)).filter((n) => n.endsWith('.sqfs') && !named.has(n));
}

export function assertStillMounted(sb: Sandbox, tree: string, what: string): void {
  const table = mountTable(sb.dir);
  const { upper } = runtimeOf(sb);
  assert.ok(
    table.some((m) => m.point === tree && m.fstype === 'overlay'),
    `${what}: the overlay is gone: ${JSON.stringify(table)}`,
  );
  assert.ok(
    table.some((m) => m.point === upper && m.fstype === 'tmpfs'),
    `${what}: the tmpfs upper was unmounted: ${JSON.stringify(table)}`,
  );
}

/**
 * Commits while a writer runs (three against a writer that never pauses,
 * three against one that writes in bursts): each commit succeeds or fails
 * with E_CAPTURE; every generation published meanwhile holds only states the
 * writer left its files in; once it stops, a commit succeeds.
 */
export async function writerDuringCommits(
  t: Parameters<typeof needRoot>[0],
  mode: 'in-place' | 'rename',
): Promise<void> {
  const f = await initTree(t, SMALL, [], '[defaults]\nkeep = 50\n');
  await f.ok('start', 't');
  const wdir = join(f.tree, 'w');
  await fsp.mkdir(wdir);
  const stopFile = join(f.sb.dir, 'writer-stop');
  const hotFile = join(f.sb.dir, 'writer-hot');
  await fsp.writeFile(hotFile, '');
  const writer = spawn(process.execPath, ['-e', WRITER, wdir, stopFile, hotFile, mode], {
    stdio: 'inherit',
  });
  const exited = new Promise<number | null>((r) => writer.on('exit', r));
  const results: string[] = [];
  const genBefore = (await treeStatus(f)).generation;
  try {
    await sleep(300);
    for (let i = 0; i < 6; i++) {
      if (i === 3) await fsp.rm(hotFile);
      const r = await f.run('commit', 't');
      const phase = i < 3 ? 'hot' : 'bursts';
      results.push(`${phase}: ${r.status === 0 ? 'ok' : errorCode(r)}`);
      assertNoStack(r, `commit ${i} with a writer`);
      if (r.status !== 0) {
        assert.equal(r.status, 1);
        assert.match(r.stderr, /E_CAPTURE/, `a failed commit says E_CAPTURE: ${r.stderr}`);
        assert.match(r.stderr, /hint: nothing was committed/);
      }
      assert.deepEqual(await leftovers(f.store), []);
      assert.deepEqual(strayMounts(f.sb), []);
    }
  } finally {
    await fsp.writeFile(stopFile, '');
    t.diagnostic(`${mode} writer, commits while writing: ${results.join(', ')}`);
  }
  assert.equal(await exited, 0, 'the writer ran without errors');
  // A commit once the writer is done always succeeds.
  await f.ok('commit', 't');
  const st = await treeStatus(f);
  const published = st.generations.filter((g) => g.generation > genBefore);
  assert.ok(published.length >= 1);
  // Every generation published while the writer ran holds only whole records.
  const manifest = JSON.parse(await fsp.readFile(join(f.store, 'manifest.json'), 'utf8')) as {
    generations: { generation: number; images: string[] }[];
  };
  const check = join(f.sb.dir, 'check');
  await fsp.mkdir(check);
  let files = 0;
  for (const g of manifest.generations.filter((x) => x.generation > genBefore)) {
    const layer = g.images[g.images.length - 1] ?? '';
    execFileSync('mount', ['-t', 'squashfs', '-o', 'loop,ro', join(f.store, layer), check]);
    try {
      files += await checkRecords(join(check, 'w'), `generation ${g.generation} (${layer})`);
    } finally {
      execFileSync('umount', [check]);
    }
  }
  t.diagnostic(`${published.length} generations, ${files} writer files checked`);
  const expected = join(f.sb.dir, 'expected-w');
  execFileSync('cp', ['-a', wdir, expected]);
  await f.ok('stop', 't');
  await f.ok('start', 't');
  await checkRecords(wdir, 'after stop and start');
  await assertSameTree(expected, wdir, 'the writer files after stop and start');
  await f.ok('stop', 't');
  await assertClean(f.sb, f.store, 'at the end');
}

/**
 * The writer: appends whole records to logs, rewrites fixed-size records in
 * place and replaces a file by rename, in bursts with pauses, until a stop
 * file appears. Every state it leaves a file in is checkable by checkRecords.
 */
export const REC = 96 * 1024;
export const WRITER = `
const fs = require('node:fs');
const path = require('node:path');
const [dir, stopFile, hotFile, mode] = process.argv.slice(1);
const REC = ${REC};
const record = (tag, seq) => {
  const head = tag + seq + ':';
  const tail = ':' + seq + '\\n';
  const fill = String.fromCharCode(97 + (seq % 26)).repeat(REC - head.length - tail.length);
  return Buffer.from(head + fill + tail);
};
let seq = 0;
const fds = [0, 1].map((i) => fs.openSync(path.join(dir, 'inplace-' + i + '.dat'), 'w'));
for (const fd of fds) fs.writeSync(fd, record('r', 0), 0, REC, 0);
const logs = [0, 1, 2].map((i) => fs.openSync(path.join(dir, 'log-' + i + '.txt'), 'a'));
const logSeq = [0, 0, 0];
function burst() {
  for (let k = 0; k < 25; k++) {
    seq++;
    const i = seq % 3;
    fs.writeSync(logs[i], 'L' + logSeq[i]++ + ' ' + 'x'.repeat(40 + (seq % 50)) + '\\n');
    if (seq % 4 === 0) fs.writeSync(fds[seq % 2], record('r', seq), 0, REC, 0);
    if (mode === 'rename' && k === 0) {
      // Many short-lived temp names: a copy of the upper that lists them finds them gone.
      for (let j = 0; j < 60; j++) fs.writeFileSync(path.join(dir, '.churn-' + j + '.tmp'), 'c' + seq + '\\n');
      for (let j = 0; j < 60; j++)
        fs.renameSync(path.join(dir, '.churn-' + j + '.tmp'), path.join(dir, 'churn-' + j + '.dat'));
    }
    if (mode === 'rename' && seq % 2 === 0) {
      // As rsync and portage do: a temp file, renamed over the real one.
      const tmp = path.join(dir, '.atomic-' + (seq % 10) + '.tmp');
      fs.writeFileSync(tmp, record('t', seq));
      fs.renameSync(tmp, path.join(dir, 'atomic-' + (seq % 10) + '.dat'));
    }
  }
}
(function loop() {
  if (fs.existsSync(stopFile)) {
    for (const fd of [...fds, ...logs]) fs.closeSync(fd);
    process.exit(0);
  }
  burst();
  // Hot: no pause at all; otherwise bursts with pauses a capture can fall into.
  setTimeout(loop, fs.existsSync(hotFile) ? 0 : Math.floor(Math.random() * 250));
})();
`;

/** Each writer file in dir must be a state the writer left it in; returns how many were checked. */
export async function checkRecords(dir: string, what: string): Promise<number> {
  let n = 0;
  for (const name of await fsp.readdir(dir)) {
    const data = await fsp.readFile(join(dir, name));
    n++;
    if (name.startsWith('log-')) {
      const text = data.toString('latin1');
      assert.ok(text === '' || text.endsWith('\n'), `${what}: ${name} ends in a torn record`);
      const lines = text.split('\n').slice(0, -1);
      lines.forEach((l, i) => {
        assert.match(l, /^L\d+ x{40,89}$/, `${what}: ${name} line ${i} is torn`);
        assert.equal(l.slice(1, l.indexOf(' ')), String(i), `${what}: ${name} lost a record`);
      });
    } else if (name.startsWith('atomic-') || name.startsWith('inplace-')) {
      assert.equal(data.length, REC, `${what}: ${name} has ${data.length} bytes`);
      const text = data.toString('latin1');
      const m = /^([rt])(\d+):([a-z])+:(\d+)\n$/.exec(text);
      assert.ok(m, `${what}: ${name} is not one record`);
      const seq = Number(m[2]);
      assert.equal(m[4], m[2], `${what}: ${name} mixes records ${m[2]} and ${m[4]}`);
      const fill = String.fromCharCode(97 + (seq % 26));
      assert.ok(
        text
          .slice(text.indexOf(':') + 1, text.lastIndexOf(':'))
          .split('')
          .every((ch) => ch === fill),
        `${what}: ${name} holds a torn record`,
      );
    } else if (name.startsWith('churn-')) {
      assert.match(data.toString('latin1'), /^c\d+\n$/, `${what}: ${name} is torn`);
    } else if (!/^\.(atomic-\d|churn-\d+)\.tmp$/.test(name)) {
      assert.fail(`${what}: unexpected file ${name}`);
    }
  }
  return n;
}
