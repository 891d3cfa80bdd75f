/**
 * The safety rules of the core, each tried for real: mksquashfs's silent data
 * loss, the per-tree lock, a busy tree on stop, bad configs, corrupt images,
 * a hostile state dir, and a disk upper that outlives a "reboot".
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { needRoot, mountsBelow, sandbox, unmountAllBelow } from '../helpers/env.js';
import { BIN, asNobody, cli, type CliResult } from '../helpers/cli.js';
import { assertSameTree, buildTree } from '../helpers/tree.js';
import { initTree, leftovers, parseJson, type StatusJson } from '../helpers/setup.js';

async function status(f: {
  ok: (...a: string[]) => Promise<{ stdout: string }>;
}): Promise<StatusJson['trees'][number]> {
  const s = parseJson<StatusJson>((await f.ok('status', '--json')) as never);
  const t = s.trees[0];
  assert.ok(t);
  return t;
}

describe('safety rules', { concurrency: false }, () => {
  it('a mksquashfs "Failed to read file" message fails the commit; the generation stays', async (t) => {
    if (!needRoot(t)) return;
    // The stand-in below is mksquashfs, so commits here pack with it (pack-method auto uses the writer).
    const f = await initTree(t, undefined, [], '[defaults]\npack-method = "mksquashfs"\n');
    await f.ok('start', 't');
    await fsp.writeFile(join(f.tree, 'x'), 'x\n');
    // mksquashfs exits 0 after storing an empty file; this stand-in does the same.
    const bin = join(f.sb.dir, 'bin');
    await fsp.mkdir(bin);
    await fsp.writeFile(
      join(bin, 'mksquashfs'),
      '#!/bin/sh\n/usr/bin/mksquashfs "$@" >/dev/null\necho "Failed to read file $1/x, creating empty file"\nexit 0\n',
      { mode: 0o755 },
    );
    const before = await status(f);
    const r = await cli(['--config', f.sb.config, '--state-dir', f.sb.state, 'commit', 't'], {
      env: { PATH: `${bin}:${process.env.PATH ?? ''}` },
    });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /E_PACK/);
    const after = await status(f);
    assert.equal(after.generation, before.generation);
    assert.ok(after.pending.files > 0, 'the change is still pending');
    assert.deepEqual(await leftovers(f.store), []);
    await f.ok('commit', 't');
    assert.equal((await status(f)).generation, before.generation + 1);
  });

  it('one lock per tree: --wait 0 fails while flock(1) holds it, then commits go one at a time', async (t) => {
    if (!needRoot(t)) return;
    const f = await initTree(t);
    await f.ok('start', 't');
    const lock = join(f.sb.state, 't', 'lock');
    const holder = spawn('flock', [lock, 'sleep', '3'], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 300));
    const busy = await f.run('--wait', '0', 'commit', 't');
    assert.equal(busy.status, 1);
    assert.match(busy.stderr, /E_LOCKED/);
    const waited = await f.run('--wait', '20', 'commit', 't');
    assert.equal(waited.status, 0, waited.stderr);
    holder.kill();
    const runs = await Promise.all(
      Array.from({ length: 6 }, async (_, i) => {
        await fsp.writeFile(join(f.tree, `c${i}`), `${i}\n`);
        return f.run(i % 3 === 0 ? 'status' : 'commit', 't');
      }),
    );
    for (const r of runs) assert.equal(r.status, 0, r.stderr);
    await f.ok('stop', 't');
    await f.ok('start', 't');
    for (let i = 0; i < 6; i++)
      assert.equal(await fsp.readFile(join(f.tree, `c${i}`), 'utf8'), `${i}\n`);
    await f.ok('stop', 't');
  });

  it('stop on a busy tree commits, names the holder and fails; --lazy detaches', async (t) => {
    if (!needRoot(t)) return;
    const f = await initTree(t);
    await f.ok('start', 't');
    await fsp.writeFile(join(f.tree, 'pending'), 'keep me\n');
    const sleeper = spawn('sleep', ['60'], { cwd: join(f.tree, 'cat-one'), stdio: 'ignore' });
    t.after(() => sleeper.kill());
    await new Promise((r) => setTimeout(r, 200));
    const gen = (await status(f)).generation;
    const r = await f.run('stop', 't');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /E_BUSY/);
    assert.match(r.stderr, new RegExp(`pid ${sleeper.pid ?? 0} \\(sleep 60\\)`));
    assert.equal((await status(f)).generation, gen + 1, 'committed before failing');
    assert.ok(mountsBelow(f.tree).length > 0, 'still mounted');
    await f.ok('stop', '--lazy', 't');
    sleeper.kill();
    await new Promise((res) => setTimeout(res, 200));
    await f.ok('start', 't');
    assert.equal(await fsp.readFile(join(f.tree, 'pending'), 'utf8'), 'keep me\n');
    await f.ok('stop', 't');
  });

  it('a bad config is refused with file, line and key; nothing is mounted', async (t) => {
    if (!needRoot(t)) return;
    const f = await initTree(t);
    const good = await fsp.readFile(f.sb.config, 'utf8');
    const cases: [string, RegExp][] = [
      [`${good}bogus-key = 1\n`, /:\d+:.*bogus-key/],
      [`${good}keep = "two"\n`, /:\d+:.*keep/],
      [good.replace(/dir = ".*"/, 'dir = "relative/path"'), /:\d+:.*dir/],
      [`${good}tmpfs-size = "1X"\n`, /:\d+:.*tmpfs-size/],
      [`${good}[tree.other]\ndir = "${f.tree}/sub"\n`, /overlaps/],
      [`${good}[tree.bad\n`, /:\d+:\d+: TOML syntax error/],
    ];
    for (const [text, re] of cases) {
      await fsp.writeFile(f.sb.config, text);
      const r = await f.run('start');
      assert.equal(r.status, 1, text);
      assert.match(r.stderr, re);
      assert.match(r.stderr, /hint:/);
      assert.deepEqual(mountsBelow(f.sb.dir), []);
    }
    const usage = await f.run('start', '--no-such-flag');
    assert.equal(usage.status, 2);
  });

  it('a corrupt image is refused at start, named, with rollback as the way out; nothing is deleted', async (t) => {
    if (!needRoot(t)) return;
    const f = await initTree(t);
    await f.ok('start', 't');
    await fsp.writeFile(join(f.tree, 'second'), 'gen 2\n');
    await f.ok('stop', 't');
    const layer = (await fsp.readdir(f.store)).find((n) => n.endsWith('-layer.sqfs')) ?? '';
    const fh = await fsp.open(join(f.store, layer), 'r+');
    await fh.write(Buffer.from('garbage!'), 0, 8, 200);
    await fh.close();
    const r = await f.run('start', 't');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /E_IMAGE_CORRUPT/);
    assert.ok(r.stderr.includes(layer));
    assert.match(r.stderr, /rollback/);
    assert.deepEqual(mountsBelow(f.sb.dir), []);
    assert.ok((await fsp.readdir(f.store)).includes(layer), 'nothing deleted');
    const v = await f.run('verify', 't');
    assert.equal(v.status, 1);
    await f.ok('rollback', 't');
    await f.ok('start', 't');
    await assertSameTree(f.model, f.tree, 'after rollback past the corrupt layer');
    await f.ok('stop', 't', '--on-stop', 'discard');
  });

  it('a state dir that is a symlink, world-writable or foreign-owned is refused', async (t) => {
    if (!needRoot(t)) return;
    const f = await initTree(t);
    const other = join(f.sb.dir, 'elsewhere');
    await fsp.mkdir(other, { mode: 0o700 });
    const state = join(f.sb.dir, 'hostile-state');
    const run = (...a: string[]): ReturnType<typeof cli> =>
      cli(['--config', f.sb.config, '--state-dir', state, ...a]);
    await fsp.symlink(other, state);
    let r = await run('start', 't');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /E_UNSAFE_PATH.*symbolic link/);
    await fsp.rm(state);
    await fsp.mkdir(state, { mode: 0o777 });
    await fsp.chmod(state, 0o777);
    r = await run('start', 't');
    assert.match(r.stderr, /E_UNSAFE_PATH.*mode/);
    await fsp.chmod(state, 0o700);
    await fsp.chown(state, 65534, 65534);
    r = await run('start', 't');
    assert.match(r.stderr, /E_UNSAFE_PATH.*owned by uid 65534/);
    await fsp.chown(state, 0, 0);
    await fsp.mkdir(join(state, 't'), { mode: 0o700 });
    await fsp.symlink('/etc/passwd', join(state, 't', 'lock'));
    r = await run('start', 't');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /E_UNSAFE_PATH/);
    assert.deepEqual(mountsBelow(f.sb.dir), []);
  });

  it('a disk upper survives a "reboot": its changes come back, committed ones are not applied twice', async (t) => {
    if (!needRoot(t)) return;
    const f = await initTree(t, undefined, ['--upper', '{SB}/disk-upper']);
    const upper = join(f.sb.dir, 'disk-upper');
    await f.ok('start', 't');
    for (const root of [f.tree, f.model]) {
      await fsp.writeFile(join(root, 'created-then-committed'), '1\n');
      await fsp.writeFile(join(root, 'short-lived'), 'gone before the crash\n');
    }
    await f.ok('commit', 't');
    for (const root of [f.tree, f.model]) {
      await fsp.rm(join(root, 'short-lived'));
      await fsp.writeFile(join(root, 'after-commit'), '2\n');
      await fsp.rm(join(root, 'a.txt'));
    }
    // Power loss: every mount goes, /run is wiped; only the disk survives.
    unmountAllBelow(f.sb.dir);
    await fsp.rm(f.sb.state, { recursive: true, force: true });
    const st = await status(f);
    assert.equal(st.state, 'interrupted');
    await f.ok('start', 't');
    await assertSameTree(f.model, f.tree, 'after the reboot');
    await f.ok('stop', 't');
    await f.ok('start', 't');
    await assertSameTree(f.model, f.tree, 'committed after the reboot');
    await f.ok('stop', 't');
    assert.deepEqual(await fsp.readdir(upper), [], 'the disk upper is emptied once committed');
  });

  it('images and stores are readable only by their owner, whatever the umask; old stores are fixed (issue 14.5)', async (t) => {
    if (!needRoot(t)) return;
    const sb = await sandbox(t);
    const tree = join(sb.dir, 'tree');
    await buildTree(tree, { 'secret.txt': { file: 'root only\n', mode: 0o600 }, pub: 'p\n' });
    // umask 0: what a careless service manager hands down.
    const wide = (...args: string[]): Promise<CliResult> =>
      cli(
        [
          '-c',
          'umask 000; exec "$@"',
          'sh',
          process.execPath,
          BIN,
          '--config',
          sb.config,
          '--state-dir',
          sb.state,
          ...args,
        ],
        { program: 'sh' },
      );
    const ok = async (...args: string[]): Promise<void> => {
      const r = await wide(...args);
      assert.equal(r.status, 0, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    };
    const store = sb.store('t');
    const modes = async (): Promise<Record<string, string>> => {
      const out: Record<string, string> = {
        '.': ((await fsp.stat(store)).mode & 0o777).toString(8),
      };
      for (const n of await fsp.readdir(store))
        out[n] = ((await fsp.stat(join(store, n))).mode & 0o777).toString(8);
      return out;
    };
    const allPrivate = async (what: string): Promise<void> => {
      for (const [n, m] of Object.entries(await modes()))
        assert.equal(m, n === '.' ? '700' : '600', `${what}: ${n} is ${m}`);
    };
    await ok('init', 't', '--dir', tree, '--store', store);
    await allPrivate('after init');
    await ok('start', 't');
    await fsp.writeFile(join(tree, 'new'), 'n\n');
    await ok('commit', 't');
    await allPrivate('after commit');
    await ok('stop', 't', '--no-compact');
    await ok('compact', 't');
    await allPrivate('after compact');
    const [image] = (await fsp.readdir(store)).filter((n) => n.endsWith('.sqfs'));
    assert.ok(image);
    await fsp.chmod(sb.dir, 0o755);
    const leak = await asNobody(['inspect', join(store, image), 'secret.txt', '--cat'], sb.dir);
    assert.equal(leak.status, 1, 'nobody reads no image');
    assert.equal(leak.stdout.length, 0);
    assert.match(leak.stderr, /EACCES/);
    // A store written before this fix: the next command makes it private.
    await fsp.chmod(store, 0o755);
    for (const n of await fsp.readdir(store)) await fsp.chmod(join(store, n), 0o644);
    await ok('status', 't');
    await allPrivate('after status on an old store');
    await fsp.chmod(store, 0o755);
    for (const n of await fsp.readdir(store)) await fsp.chmod(join(store, n), 0o644);
    await ok('start', 't');
    await allPrivate('after start on an old store');
    await ok('stop', 't');
  });
});
