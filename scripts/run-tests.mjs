#!/usr/bin/env node
// Builds the CLI, then runs the test files with node:test through tsx.
// Node 20's --test does not expand globs, so the files are listed here.
// Usage: node scripts/run-tests.mjs [unit|e2e|FILE...]
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

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

const args = process.argv.slice(2);
let files;
if (args.length === 0) files = [...find(join(root, 'test/unit')), ...find(join(root, 'test/e2e'))];
else if (args.length === 1 && (args[0] === 'unit' || args[0] === 'e2e'))
  files = find(join(root, 'test', args[0]));
else files = args;

// The tests run the CLI as users do, from the bundle: build all of it.
const build = spawnSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);

const r = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-reporter=spec', ...files],
  {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, SQUASHTREE_TEST: '1' },
  },
);
process.exit(r.status ?? 1);
