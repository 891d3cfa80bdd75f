import { describe, it } from 'node:test';
import { existsSync } from 'node:fs';
import assert from 'node:assert/strict';
import { userPaths } from '../../src/config/user-paths.js';
import { resolveGlobals } from '../../src/cli/context.js';
import { SquashtreeError } from '../../src/errors.js';
import { fuseOverlayOptions } from '../../src/mount/mount.js';
import { withMounter } from '../../src/mount/engine.js';
import { parseConfig } from '../../src/config/load.js';

const env = {
  HOME: '/home/ann',
  XDG_RUNTIME_DIR: '/run/user/1000',
  XDG_CONFIG_HOME: '/home/ann/cfg',
  XDG_DATA_HOME: '/home/ann/data',
};

describe('user paths', () => {
  it('follow the XDG variables', () => {
    assert.deepEqual(userPaths(env), {
      config: '/home/ann/cfg/squashtree/squashtree.toml',
      stateDir: '/run/user/1000/squashtree',
      storeRoot: '/home/ann/data/squashtree',
    });
  });

  it('fall back to ~/.config and ~/.local/share; relative XDG values are ignored', () => {
    const p = userPaths({ HOME: '/home/ann', XDG_RUNTIME_DIR: '/r', XDG_CONFIG_HOME: 'rel' });
    assert.equal(p.config, '/home/ann/.config/squashtree/squashtree.toml');
    assert.equal(p.storeRoot, '/home/ann/.local/share/squashtree');
  });

  it('without a runtime dir: /run/user/UID if it exists, else E_USAGE naming $XDG_RUNTIME_DIR', () => {
    const fallback = `/run/user/${process.getuid?.() ?? 0}`;
    if (existsSync(fallback)) {
      assert.equal(userPaths({ HOME: '/h' }).stateDir, `${fallback}/squashtree`);
      return;
    }
    assert.throws(
      () => userPaths({ HOME: '/h' }),
      (e: unknown) =>
        e instanceof SquashtreeError && e.code === 'E_USAGE' && /XDG_RUNTIME_DIR/.test(e.message),
    );
    // The config path is known without it; only the state dir needs it.
    const ctx = resolveGlobals({}, { HOME: '/h' }, false);
    assert.equal(ctx.configPath, '/h/.config/squashtree/squashtree.toml');
    assert.throws(() => ctx.stateDir, { code: 'E_USAGE' });
  });

  it('user mode is the default without root, and --user asks for it as root', () => {
    assert.equal(resolveGlobals({}, env, false).userMode, true);
    assert.equal(resolveGlobals({}, env, true).userMode, false);
    const asRoot = resolveGlobals({ user: true }, env, true);
    assert.equal(asRoot.userMode, true);
    assert.equal(asRoot.stateDir, '/run/user/1000/squashtree');
    assert.equal(asRoot.configPath, '/home/ann/cfg/squashtree/squashtree.toml');
    assert.equal(asRoot.storeRoot, '/home/ann/data/squashtree');
    // Explicit paths still win.
    const explicit = resolveGlobals({ user: true, config: '/c.toml', stateDir: '/s' }, env, true);
    assert.equal(explicit.configPath, '/c.toml');
    assert.equal(explicit.stateDir, '/s');
  });

  it('a tree without store gets one under the store root given', () => {
    const [t] = parseConfig(
      '[tree.tex]\ndir = "/home/ann/tex"\n',
      'x.toml',
      '/home/ann/data/squashtree',
    );
    assert.equal(t?.store, '/home/ann/data/squashtree/tex');
    assert.equal(t?.engine, 'auto');
  });
});

describe('fuse-overlayfs options', () => {
  it('take the kernel syntax; allow_other only as root; unknown mount options are left out', async () => {
    const spec = {
      lower: ['/s/i/1', '/s/i/0'],
      upper: '/s/u/data',
      work: '/s/u/work',
      extra: ['noexec', 'lazytime'],
    };
    const user = await withMounter({ kind: 'fuse', privileged: false }, () =>
      Promise.resolve(fuseOverlayOptions(spec)),
    );
    assert.equal(
      user,
      'lowerdir=/s/i/1:/s/i/0,upperdir=/s/u/data,workdir=/s/u/work,noacl,nosuid,nodev,noexec',
    );
    const root = await withMounter({ kind: 'fuse', privileged: true }, () =>
      Promise.resolve(fuseOverlayOptions(spec)),
    );
    assert.match(root, /,allow_other,default_permissions,/);
    assert.throws(() => fuseOverlayOptions({ lower: ['/a,b'] }), { code: 'E_UNSAFE_PATH' });
  });
});
