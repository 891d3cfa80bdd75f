/** The command line as a user meets it: help, exit codes, JSON, the demo. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cli } from '../helpers/cli.js';
import { needRoot, sandbox, mountsBelow } from '../helpers/env.js';

describe('command line', () => {
  it('--help lists every command and exits 0; nonsense exits 2', async () => {
    const help = await cli(['--help']);
    assert.equal(help.status, 0);
    for (const c of [
      'init',
      'start',
      'commit',
      'stop',
      'restart',
      'status',
      'diff',
      'discard',
      'compact',
      'rollback',
      'verify',
      'doctor',
      'demo',
    ]) {
      assert.match(help.stdout, new RegExp(`\\b${c}\\b`), c);
    }
    assert.equal((await cli(['no-such-command'])).status, 2);
    assert.equal((await cli(['rollback', '--to'])).status, 2);
    assert.equal((await cli(['--version'])).status, 0);
  });

  it('status --json with no config lists no trees', async (t) => {
    const sb = await sandbox(t);
    const r = await cli([
      '--config',
      `${sb.dir}/none.toml`,
      '--state-dir',
      sb.state,
      'status',
      '--json',
    ]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { trees: [] });
  });

  it('an unknown tree name is an error that lists the configured ones', async (t) => {
    const sb = await sandbox(t);
    const r = await cli([
      '--config',
      `${sb.dir}/none.toml`,
      '--state-dir',
      sb.state,
      'status',
      'nope',
    ]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /E_NO_TREE/);
  });

  it('usage errors in values exit 2 with a message', async (t) => {
    if (!needRoot(t)) return;
    const sb = await sandbox(t);
    const r = await cli(['--config', `${sb.dir}/c.toml`, '--state-dir', sb.state, 'init', 'x']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--dir/);
  });

  it('doctor passes on this machine', async (t) => {
    if (!needRoot(t)) return;
    const sb = await sandbox(t);
    const r = await cli(['--config', `${sb.dir}/none.toml`, '--state-dir', sb.state, 'doctor']);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /mount a gzip image with an overlay: works/);
  });

  it('demo runs the whole lifecycle and leaves nothing mounted', async (t) => {
    if (!needRoot(t)) return;
    const r = await cli(['demo', '--packages', '15']);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /identical to the expected tree/);
    assert.deepEqual(
      mountsBelow('/tmp').filter((m) => m.includes('squashtree-demo')),
      [],
    );
  });
});
