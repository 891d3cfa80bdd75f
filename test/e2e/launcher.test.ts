/**
 * The launcher's environment (src/exec/launch-env.ts): bin/squashtree.js
 * starts through its own first line, the process starts with LAUNCH_ENV
 * (what glibc reads), and the CLI takes it back out before it runs anyone
 * else. A probe module, loaded by NODE_OPTIONS before the CLI, records the
 * environment before main() and at exit.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  forgetLaunchEnv,
  launchWords,
  LAUNCH_ENV,
  LAUNCHER_SHEBANG,
} from '../../src/exec/launch-env.js';
import { BIN } from '../helpers/cli.js';

const KEYS = Object.keys(LAUNCH_ENV);

describe('launcher environment', () => {
  it("is the launcher's first line", () => {
    const first = readFileSync(BIN, 'utf8').split('\n', 1)[0];
    assert.equal(first, LAUNCHER_SHEBANG);
  });

  it('reaches the process started through the launcher and not what it starts', (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'st-launch-'));
    t.after(() => {
      rmSync(dir, { recursive: true, force: true });
    });
    const probe = join(dir, 'probe.mjs');
    const out = join(dir, 'env.json');
    writeFileSync(
      probe,
      `import { writeFileSync } from 'node:fs';
const keys = ${JSON.stringify(KEYS)};
const pick = () => Object.fromEntries(keys.map((k) => [k, process.env[k] ?? null]));
const atStart = pick();
process.on('exit', () => writeFileSync(${JSON.stringify(out)}, JSON.stringify({ atStart, atExit: pick() })));
`,
    );
    const env: NodeJS.ProcessEnv = { ...process.env, NODE_OPTIONS: `--import=${probe}` };
    for (const k of KEYS) Reflect.deleteProperty(env, k);
    // Run as a user runs it: the file itself, so the kernel reads its first line.
    const r = spawnSync(BIN, ['--version'], { env, encoding: 'utf8' });
    assert.equal(r.status, 0, `${BIN} --version: ${r.stderr}`);
    const seen = JSON.parse(readFileSync(out, 'utf8')) as {
      atStart: Record<string, string | null>;
      atExit: Record<string, string | null>;
    };
    assert.deepEqual(seen.atStart, LAUNCH_ENV, 'set when the process starts');
    for (const k of KEYS) assert.equal(seen.atExit[k], null, `${k} removed for children`);
  });

  it('leaves a value the user set to something else', () => {
    const [key] = KEYS;
    assert.ok(key);
    const env: NodeJS.ProcessEnv = { [key]: 'mine', OTHER: 'x' };
    forgetLaunchEnv(env);
    assert.deepEqual(env, { [key]: 'mine', OTHER: 'x' });
    env[key] = LAUNCH_ENV[key] ?? '';
    forgetLaunchEnv(env);
    assert.deepEqual(env, { OTHER: 'x' });
  });

  it('gives generated files the same environment', () => {
    const words = launchWords('/usr/bin/node', '/opt/st/bin/squashtree.js');
    assert.deepEqual(words, [
      '/usr/bin/env',
      ...Object.entries(LAUNCH_ENV).map(([k, v]) => `${k}=${v}`),
      '/usr/bin/node',
      '/opt/st/bin/squashtree.js',
    ]);
  });
});
