/** The command line as a user meets it: help, exit codes, JSON, the demo. */
import { describe, it } from 'node:test';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
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

  it('status --json with no config at the default path lists no trees', async (t) => {
    const sb = await sandbox(t);
    // --user takes the config from $XDG_CONFIG_HOME: a default path, not one given explicitly.
    const r = await cli(['--user', '--state-dir', sb.state, 'status', '--json'], {
      env: { XDG_CONFIG_HOME: `${sb.dir}/xdg`, SQUASHTREE_CONFIG: '' },
    });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { trees: [] });
  });

  it('an unknown tree name is an error that lists the configured ones', async (t) => {
    const sb = await sandbox(t);
    await fsp.writeFile(sb.config, '');
    const r = await cli(['--config', sb.config, '--state-dir', sb.state, 'status', 'nope']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /E_NO_TREE/);
  });

  it('a config path given explicitly that does not exist is E_CONFIG_MISSING, exit 1 (issue 14.10)', async (t) => {
    const sb = await sandbox(t);
    const missing = `${sb.dir}/squashtre.toml`;
    for (const command of [
      'status',
      'commit',
      'stop',
      'verify',
      'install cron --root /nonexistent',
    ]) {
      const viaFlag = await cli([
        '--config',
        missing,
        '--state-dir',
        sb.state,
        ...command.split(' '),
      ]);
      assert.equal(viaFlag.status, 1, `${command}: ${viaFlag.stdout}${viaFlag.stderr}`);
      assert.match(viaFlag.stderr, /E_CONFIG_MISSING/, command);
      assert.match(viaFlag.stderr, /squashtre\.toml/, command);
    }
    const viaEnv = await cli(['--state-dir', sb.state, 'status', '--json'], {
      env: { SQUASHTREE_CONFIG: missing },
    });
    assert.equal(viaEnv.status, 1);
    assert.equal(
      (JSON.parse(viaEnv.stdout) as { error: { code: string } }).error.code,
      'E_CONFIG_MISSING',
    );
    assert.match(viaEnv.stderr, /SQUASHTREE_CONFIG/);
    // doctor names it among its findings; init is what creates a config, so it may be new.
    const doc = await cli(['--config', missing, '--state-dir', sb.state, 'doctor']);
    assert.match(doc.stdout, /warn config: .*squashtre\.toml does not exist/);
  });

  it('a command with no tree to act on exits 1; status and doctor say so and exit 0 (issue 14.10)', async (t) => {
    if (!needRoot(t)) return;
    const sb = await sandbox(t);
    await fsp.writeFile(sb.config, '# no trees yet\n');
    const run = (...args: string[]) =>
      cli(['--config', sb.config, '--state-dir', sb.state, ...args]);
    for (const command of ['start', 'commit', 'stop', 'compact', 'verify']) {
      const r = await run(command);
      assert.equal(r.status, 1, `${command}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /E_NO_TREE/, command);
      assert.match(r.stderr, /squashtree init NAME --dir DIR/, command);
    }
    const st = await run('status');
    assert.equal(st.status, 0, st.stderr);
    assert.match(st.stdout, /no trees configured/);
    const doc = await run('doctor');
    assert.match(doc.stdout, /config: .*0 trees/);
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
    // One commit, one time (issue 14.14): the step's line and the summary agree.
    const step = /commit: pack only the upper into a layer +(\d+) ms/.exec(r.stdout)?.[1];
    const summary = /commit after the sync: (\d+) ms/.exec(r.stdout)?.[1];
    assert.ok(step !== undefined && summary !== undefined, r.stdout);
    assert.equal(summary, step);
    // Only this run's demos (the demo works in TMPDIR): another run's demo may be mounted now.
    assert.deepEqual(
      mountsBelow(tmpdir()).filter((m) => m.includes('squashtree-demo')),
      [],
    );
  });
});
