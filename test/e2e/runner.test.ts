/**
 * The test runner's leak check (scripts/run-tests.mjs), run on fixture test
 * files: one that leaves a tmpfs mounted and a loop device attached to a
 * deleted image makes the run fail, and the runner names both and removes
 * them; a clean one passes; a failing one keeps its failure; and a mount
 * that is not the run's (here: this test's own) is neither reported nor
 * touched.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mountsBelow, needRoot, sandbox } from '../helpers/env.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const LEAKY = `
import { it } from 'node:test';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
it('leaks a mount and a loop device', () => {
  const dir = mkdtempSync(join(tmpdir(), 'st-test-leak-'));
  mkdirSync(join(dir, 'm'));
  execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', join(dir, 'm')]);
  mkdirSync(join(dir, 'src'));
  writeFileSync(join(dir, 'src', 'f'), 'x');
  execFileSync('mksquashfs', [join(dir, 'src'), join(dir, 'i.sqfs'), '-quiet', '-no-progress']);
  const dev = execFileSync('losetup', ['-f', '--show', join(dir, 'i.sqfs')], { encoding: 'utf8' });
  writeFileSync(join(dir, 'device'), dev.trim());
  rmSync(join(dir, 'i.sqfs'));
  process.stdout.write('LOOP=' + dev.trim() + '\\n');
});
`;

const CLEAN = `
import { it } from 'node:test';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
it('mounts and unmounts', () => {
  const dir = mkdtempSync(join(tmpdir(), 'st-test-clean-'));
  mkdirSync(join(dir, 'm'));
  execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', join(dir, 'm')]);
  execFileSync('umount', [join(dir, 'm')]);
  rmSync(dir, { recursive: true });
});
`;

const FAILING = `
import { it } from 'node:test';
import assert from 'node:assert/strict';
it('fails', () => {
  assert.equal(1, 2);
});
`;

interface Run {
  status: number;
  out: string;
}

/** This environment without node:test's marker, which makes an inner --test run nothing. */
function outsideTest(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  return env;
}

function runner(file: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [join(ROOT, 'scripts/run-tests.mjs'), '--no-build', file],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: outsideTest() },
    );
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => {
      resolve({ status: code ?? -1, out });
    });
  });
}

const attached = (device: string): boolean =>
  existsSync(`/sys/block/${device.replace('/dev/', '')}/loop/backing_file`);

describe('the test runner checks what the tests left behind', () => {
  it('fails a run that leaves a mount and a loop device, names both and removes them', async (t) => {
    if (!needRoot(t)) return;
    const sb = await sandbox(t);
    const file = join(sb.dir, 'leaky.test.ts');
    await fsp.writeFile(file, LEAKY);
    // A mount that is not the run's: this test's own, next to the fixture.
    const foreign = join(sb.dir, 'foreign');
    await fsp.mkdir(foreign);
    execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', foreign]);

    const r = await runner(file);
    const device = /LOOP=(\/dev\/loop\d+)/.exec(r.out)?.[1] ?? '';
    t.after(() => {
      if (device && attached(device)) execFileSync('losetup', ['-d', device]);
    });
    assert.equal(r.status, 1, r.out);
    assert.match(
      r.out,
      /test leak check: FAILED: the tests left 1 mount\(s\) and 1 loop device\(s\)/,
    );
    assert.match(r.out, /mount \/.*\/st-test-leak-[^/ ]+\/m \(tmpfs\)/);
    assert.ok(device, r.out);
    assert.match(
      r.out,
      new RegExp(`loop  ${device} -> /.*/st-test-leak-[^/ ]+/i\\.sqfs \\(deleted\\)`),
    );
    assert.match(r.out, /cleaned up/);
    assert.equal(attached(device), false, 'the loop device is detached');
    assert.deepEqual(
      mountsBelow('/tmp').filter((m) => m.includes('st-test-leak-')),
      [],
      'the leaked mount is gone',
    );
    assert.deepEqual(mountsBelow(foreign), [foreign], 'a mount that is not the run’s stays');
    assert.doesNotMatch(r.out, /foreign/);
  });

  it('passes a clean run, and keeps a failing run’s failure', async (t) => {
    if (!needRoot(t)) return;
    const sb = await sandbox(t);
    await fsp.writeFile(join(sb.dir, 'clean.test.ts'), CLEAN);
    await fsp.writeFile(join(sb.dir, 'failing.test.ts'), FAILING);
    const clean = await runner(join(sb.dir, 'clean.test.ts'));
    assert.equal(clean.status, 0, clean.out);
    assert.match(clean.out, /test leak check: nothing left mounted or attached/);
    const failing = await runner(join(sb.dir, 'failing.test.ts'));
    assert.equal(failing.status, 1, failing.out);
    assert.match(failing.out, /test leak check: nothing left mounted or attached/);
  });
});
