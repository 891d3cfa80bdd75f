#!/usr/bin/env node
// Builds the CLI, then runs the test files with node:test through tsx, in a
// temp dir of the run's own (TMPDIR), and afterwards checks that the tests
// left nothing mounted or attached there: whatever is left is listed,
// cleaned up, and fails the run.
// Node 20's --test does not expand globs, so the files are listed here.
// Usage: node scripts/run-tests.mjs [--no-build] [unit|e2e|FILE...]
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cleanLeaks, describeLeaks, findLeaks } from './test-leaks.mjs';

const root = new URL('..', import.meta.url).pathname;
function find(dir) {
  let out = [];
  if (!existsSync(dir)) return out;
  for (const n of readdirSync(dir).sort()) {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) out = out.concat(find(p));
    else if (n.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

let args = process.argv.slice(2);
// For the runner's own test, which runs fixture files against a fresh build.
const build = !args.includes('--no-build');
args = args.filter((a) => a !== '--no-build');
let files;
if (args.length === 0) files = [...find(join(root, 'test/unit')), ...find(join(root, 'test/e2e'))];
else if (args.length === 1 && (args[0] === 'unit' || args[0] === 'e2e'))
  files = find(join(root, 'test', args[0]));
else files = args;

// The tests run the CLI as users do, from the bundle: build all of it.
if (build) {
  const b = spawnSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });
  if (b.status !== 0) process.exit(b.status ?? 1);
}

// Sticky and world-writable like /tmp: tests hand dirs in it to unprivileged users.
const runDir = mkdtempSync(join(tmpdir(), 'st-run-'));
chmodSync(runDir, 0o1777);

const child = spawn(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-reporter=spec', ...files],
  {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, SQUASHTREE_TEST: '1', TMPDIR: runDir },
  },
);
// A terminal's ^C reaches the tests too; SIGTERM (a CI timeout) is passed on. Either
// way the runner stays to clean up.
const forward = (sig) => () => child.kill(sig);
process.on('SIGINT', () => undefined);
process.on('SIGTERM', forward('SIGTERM'));
const status = await new Promise((resolve) => {
  child.on('error', (e) => {
    console.error(`cannot run the tests: ${e.message}`);
    resolve(1);
  });
  child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
});

const found = findLeaks(runDir);
let leaked = false;
if (found.mounts.length + found.loops.length > 0) {
  leaked = true;
  console.error(
    `\ntest leak check: FAILED: the tests left ${found.mounts.length} mount(s) and ` +
      `${found.loops.length} loop device(s) behind in ${runDir}:`,
  );
  for (const line of describeLeaks(found)) console.error(line);
  const { left, errors } = cleanLeaks(runDir);
  for (const e of errors) console.error(`  ${e}`);
  const rest = describeLeaks(left);
  if (rest.length > 0) {
    console.error('still there after cleaning up (remove them by hand):');
    for (const line of rest) console.error(line);
  } else console.error('cleaned up; find the test that leaked them by running files one at a time');
} else {
  console.error(`test leak check: nothing left mounted or attached in ${runDir}`);
}
// tsx keeps its compile cache there (tsx-UID); anything else a test forgot to remove.
const strays = readdirSync(runDir).filter((n) => !/^tsx-\d+$/.test(n));
if (strays.length > 0) {
  const names = strays.slice(0, 10).join(' ') + (strays.length > 10 ? ' ...' : '');
  console.error(`note: the tests left ${strays.length} temp entries (removed): ${names}`);
}
if (findLeaks(runDir).mounts.length === 0) rmSync(runDir, { recursive: true, force: true });
process.exit(status !== 0 ? status : leaked ? 1 : 0);
