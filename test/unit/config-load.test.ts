/**
 * parseConfig: valid configs with their defaults, and unknown keys. Refusals
 * of wrong values are in config-load-refusals.test.ts, checks across trees
 * and selectTrees in config-load-trees.test.ts; each message names the file,
 * the line and the key at fault.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/load.js';
import { SquashtreeError } from '../../src/errors.js';
import { FILE, refuse, one, tree } from '../helpers/config-parse.js';

describe('parseConfig: valid configs', () => {
  it('applies every built-in default to a minimal tree', () => {
    assert.deepEqual(one('[tree.gentoo]\ndir = "/var/db/repos/gentoo"\n'), {
      name: 'gentoo',
      dir: '/var/db/repos/gentoo',
      store: '/var/lib/squashtree/gentoo',
      compression: 'gzip',
      compressionLevel: undefined,
      blockSize: 128 * 1024,
      mksquashfsArgs: [],
      exclude: [],
      upper: { kind: 'tmpfs', size: '25%' },
      onStop: 'commit',
      keep: 2,
      compactAfter: 2,
      compactMethod: 'auto',
      packMethod: 'auto',
      mountOptions: [],
      pullFrom: undefined,
      verifyKey: undefined,
      plainHttp: false,
      publishTo: undefined,
      signKey: undefined,
      engine: 'auto',
    });
  });

  it('resolves the README example, trees in file order', () => {
    const text = `# /etc/squashtree/squashtree.toml
[defaults]
compression = "zstd"
exclude = ["distfiles", "packages", ".git"]

[tree.gentoo]
dir = "/var/db/repos/gentoo"
tmpfs-size = "1G"

[tree.linux]
dir = "/usr/src/linux"
upper = "/var/tmp/squashtree/linux"   # on disk: survives a reboot
on-stop = "keep"
mount-options = ["noexec"]
`;
    const trees = parseConfig(text, FILE);
    assert.deepEqual(
      trees.map((t) => t.name),
      ['gentoo', 'linux'],
    );
    const [gentoo, linux] = trees;
    assert.ok(gentoo && linux);
    assert.equal(gentoo.compression, 'zstd');
    assert.deepEqual(gentoo.exclude, ['distfiles', 'packages', '.git']);
    assert.deepEqual(gentoo.upper, { kind: 'tmpfs', size: String(1024 ** 3) });
    assert.equal(linux.compression, 'zstd');
    assert.deepEqual(linux.upper, { kind: 'dir', path: '/var/tmp/squashtree/linux' });
    assert.equal(linux.onStop, 'keep');
    assert.deepEqual(linux.mountOptions, ['noexec']);
    assert.equal(linux.store, '/var/lib/squashtree/linux');
  });

  it('lets a tree override [defaults], lists replacing rather than merging', () => {
    const t = one(`[defaults]
compression = "xz"
exclude = ["distfiles"]
keep = 5
compact-after = 3

[tree.a]
dir = "/srv/a"
compression = "zstd"
compression-level = 19
exclude = ["packages/"]
`);
    assert.equal(t.compression, 'zstd');
    assert.equal(t.compressionLevel, 19);
    assert.deepEqual(t.exclude, ['packages']);
    assert.equal(t.keep, 5);
    assert.equal(t.compactAfter, 3);
  });

  it('takes a compression-level from [defaults] for a tree that sets the compressor', () => {
    const t = one('[defaults]\ncompression-level = 15\n\n' + tree('compression = "zstd"\n'));
    assert.equal(t.compressionLevel, 15);
  });

  it('accepts every key with a valid value', () => {
    const t = one(
      tree(`store = "/data/store/a"
compression = "gzip"
compression-level = 9
block-size = "1M"
mksquashfs-args = ["-no-fragments", "-processors", "2"]
exclude = ["distfiles", "metadata/md5-cache"]
upper = "/var/tmp/upper-a/"
tmpfs-size = "512M"
on-stop = "discard"
keep = 0
compact-after = 400
mount-options = ["noatime", "noexec"]
`),
    );
    assert.equal(t.store, '/data/store/a');
    assert.equal(t.blockSize, 1024 * 1024);
    assert.deepEqual(t.mksquashfsArgs, ['-no-fragments', '-processors', '2']);
    assert.deepEqual(t.upper, { kind: 'dir', path: '/var/tmp/upper-a' });
    assert.equal(t.onStop, 'discard');
    assert.equal(t.keep, 0);
    assert.equal(t.compactAfter, 400);
    assert.deepEqual(t.mountOptions, ['noatime', 'noexec']);
  });

  it('reads sizes as strings or plain numbers', () => {
    assert.equal(one(tree('block-size = "4K"\n')).blockSize, 4096);
    assert.equal(one(tree('block-size = 65536\n')).blockSize, 65536);
    assert.equal(one(tree('block-size = "256KiB"\n')).blockSize, 256 * 1024);
    assert.deepEqual(one(tree('tmpfs-size = "50%"\n')).upper, { kind: 'tmpfs', size: '50%' });
    assert.deepEqual(one(tree('tmpfs-size = 1048576\n')).upper, {
      kind: 'tmpfs',
      size: '1048576',
    });
    assert.deepEqual(one(tree('upper = "tmpfs"\ntmpfs-size = "2g"\n')).upper, {
      kind: 'tmpfs',
      size: String(2 * 1024 ** 3),
    });
  });

  it('normalises dir, store and upper (trailing slashes and "."); ".." is refused, not resolved', () => {
    const t = one('[tree.a]\ndir = "/srv/a/./"\nstore = "/data//store/"\nupper = "/u/v//"\n');
    assert.equal(t.dir, '/srv/a');
    assert.equal(t.store, '/data/store');
    assert.deepEqual(t.upper, { kind: 'dir', path: '/u/v' });
    // Issue 14.8: "/srv/../etc" would have resolved to /etc.
    for (const key of ['dir', 'store', 'upper']) {
      const body =
        key === 'dir' ? 'dir = "/srv/../srv/a"' : `dir = "/srv/a"\n${key} = "/data/../x"`;
      assert.throws(
        () => parseConfig(`[tree.a]\n${body}\n`, FILE),
        (e: unknown) =>
          e instanceof SquashtreeError &&
          e.code === 'E_CONFIG_VALUE' &&
          new RegExp(`${key} .*"\\.\\."`).test(e.message),
        key,
      );
    }
  });

  it('accepts quoted tree names with dots, and inline or dotted tables', () => {
    assert.equal(one('[tree."my.tree"]\ndir = "/srv/x"\n').name, 'my.tree');
    assert.equal(one('tree = { b = { dir = "/srv/b" } }\n').dir, '/srv/b');
    assert.equal(one('[tree]\nc.dir = "/srv/c"\n').name, 'c');
  });

  it('accepts CRLF line endings', () => {
    assert.equal(one('[tree.a]\r\ndir = "/srv/a"\r\n').dir, '/srv/a');
  });

  it('gives no trees for an empty file or one with only [defaults]', () => {
    assert.deepEqual(parseConfig('', FILE), []);
    assert.deepEqual(parseConfig('# nothing yet\n', FILE), []);
    assert.deepEqual(parseConfig('[defaults]\ncompression = "lz4"\n', FILE), []);
  });

  it('lets on-stop = "keep" stand with a disk upper', () => {
    const t = one(tree('upper = "/var/tmp/a"\non-stop = "keep"\n'));
    assert.equal(t.onStop, 'keep');
  });

  it('accepts trees side by side and a store beside (not inside) a dir', () => {
    const trees = parseConfig(
      '[tree.a]\ndir = "/srv/a"\nstore = "/srv/a-store"\n\n[tree.ab]\ndir = "/srv/ab"\n',
      FILE,
    );
    assert.equal(trees.length, 2);
  });
});

describe('parseConfig: unknown keys', () => {
  it('names an unknown key in a tree with its file:line', () => {
    const text = '[defaults]\ncompression = "xz"\n\n[tree.a]\ndir = "/srv/a"\ncolour = 3\n';
    refuse(text, 'E_CONFIG_KEY', { line: 6, has: ['colour', '[tree.a]'] });
  });

  it('names an unknown key in [defaults]', () => {
    refuse('[defaults]\ncompresion = "xz"\n', 'E_CONFIG_KEY', { line: 2, has: ['compresion'] });
  });

  it('refuses dir and store in [defaults]', () => {
    refuse('[defaults]\n\ndir = "/srv"\n', 'E_CONFIG_KEY', { line: 3, has: ['dir'] });
    refuse('[defaults]\nstore = "/srv"\n', 'E_CONFIG_KEY', { line: 2, has: ['store'] });
  });

  it('names an unknown top-level key or table', () => {
    refuse('# c\nfoo = 1\n', 'E_CONFIG_KEY', { line: 2, has: ['foo'] });
    refuse('\n[trees]\na = 1\n', 'E_CONFIG_KEY', { line: 2, has: ['trees'] });
  });

  it('gives the line of a misspelt table name such as [trees.a]', () => {
    refuse('\n[trees.a]\ndir = "/srv/a"\n', 'E_CONFIG_KEY', { line: 2, has: ['trees'] });
  });

  it('names an unknown key written as a dotted or inline key', () => {
    refuse('[tree]\na.dir = "/srv/a"\na.colour = 2\n', 'E_CONFIG_KEY', {
      line: 3,
      has: ['colour'],
    });
    refuse('tree = { a = { dir = "/srv/a", colour = 1 } }\n', 'E_CONFIG_KEY', {
      line: 1,
      has: ['colour'],
    });
  });

  it('refuses tree names that are not allowed', () => {
    refuse('[tree."a b"]\ndir = "/srv/a"\n', 'E_CONFIG_KEY', { line: 1, has: ['a b'] });
    refuse('[tree."-x"]\ndir = "/srv/a"\n', 'E_CONFIG_KEY', { line: 1, has: ['-x'] });
    refuse(`[tree.${'n'.repeat(65)}]\ndir = "/srv/a"\n`, 'E_CONFIG_KEY', { line: 1 });
  });

  it('reports every problem, each on its own line', () => {
    const e = refuse(
      '[tree.a]\ndir = "/srv/a"\ncolour = 1\n\n[tree.b]\ndir = "/srv/b"\nflavour = 2\n',
      'E_CONFIG_KEY',
      { has: ['colour', 'flavour'] },
    );
    assert.match(e.message, new RegExp(`^${FILE}:3: .*colour`, 'm'));
    assert.match(e.message, new RegExp(`^${FILE}:7: .*flavour`, 'm'));
  });

  it('refuses a table named __proto__ like any other bad name', () => {
    refuse('[tree.__proto__]\ndir = "/srv/a"\n', 'E_CONFIG_KEY', { line: 1 });
  });
});
