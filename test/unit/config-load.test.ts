/**
 * parseConfig and selectTrees: defaults, every refusal with its code, and
 * that each message names the file, the line and the key at fault.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig, selectTrees, type Config } from '../../src/config/load.js';
import { SquashtreeError, type ErrorCode } from '../../src/errors.js';
import type { TreeConfig } from '../../src/config/schema.js';

const FILE = '/etc/squashtree/test.toml';

interface Expect {
  /** Substrings the message must contain (keys, values). */
  has?: string[];
  /** Line the message must name as FILE:LINE. */
  line?: number;
}

function refuse(text: string, code: ErrorCode, want: Expect = {}): SquashtreeError {
  let caught: unknown;
  try {
    parseConfig(text, FILE);
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof SquashtreeError, `expected a SquashtreeError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.equal(caught.path, FILE);
  assert.ok(caught.message.startsWith(FILE), caught.message);
  if (want.line !== undefined) {
    assert.ok(
      caught.message.includes(`${FILE}:${want.line}:`),
      `no :${want.line}: in ${caught.message}`,
    );
  }
  for (const s of want.has ?? [])
    assert.ok(caught.message.includes(s), `no ${s} in ${caught.message}`);
  assert.ok(caught.hint !== undefined && caught.hint.length > 0, 'a hint names the fix');
  return caught;
}

function one(text: string): TreeConfig {
  const trees = parseConfig(text, FILE);
  assert.equal(trees.length, 1);
  const [t] = trees;
  assert.ok(t);
  return t;
}

const tree = (body: string, name = 'a', dir = '/srv/a'): string =>
  `[tree.${name}]\ndir = "${dir}"\n${body}`;

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

describe('parseConfig: wrong types and values', () => {
  it('names a missing dir with the table line', () => {
    refuse('\n[tree.a]\nstore = "/x"\n', 'E_CONFIG_VALUE', { line: 2, has: ['dir'] });
  });

  for (const [body, key, line] of [
    ['keep = "two"', 'keep', 3],
    ['keep = -1', 'keep', 3],
    ['keep = 1001', 'keep', 3],
    ['keep = 1.5', 'keep', 3],
    ['compact-after = 0', 'compact-after', 3],
    ['compression = "bzip2"', 'compression', 3],
    ['on-stop = "never"', 'on-stop', 3],
    ['exclude = "distfiles"', 'exclude', 3],
    ['mksquashfs-args = "-no-xattrs"', 'mksquashfs-args', 3],
    ['mksquashfs-args = [1]', 'mksquashfs-args', 3],
    ['mount-options = ["suid"]', 'mount-options', 3],
    ['mount-options = "noexec"', 'mount-options', 3],
    ['compression-level = 3.5', 'compression-level', 3],
    ['compression-level = "3"', 'compression-level', 3],
    ['tmpfs-size = true', 'tmpfs-size', 3],
    ['block-size = [4096]', 'block-size', 3],
    ['upper = 1', 'upper', 3],
    ['store = false', 'store', 3],
    ['keep = 1979-05-27', 'keep', 3],
  ] as const) {
    it(`refuses ${body}`, () => {
      refuse(tree(`${body}\n`), 'E_CONFIG_VALUE', { line, has: [key] });
    });
  }

  it('refuses a dir of the wrong type', () => {
    refuse('[tree.a]\ndir = 5\n', 'E_CONFIG_VALUE', { line: 2, has: ['dir'] });
  });

  it('refuses a tree table that is not a table', () => {
    refuse('tree = 3\n', 'E_CONFIG_VALUE', { line: 1, has: ['tree'] });
  });

  it('refuses relative dir, store and upper', () => {
    refuse('[tree.a]\ndir = "srv/a"\n', 'E_CONFIG_VALUE', { line: 2, has: ['dir', 'srv/a'] });
    refuse(tree('store = "store/a"\n'), 'E_CONFIG_VALUE', { line: 3, has: ['store'] });
    refuse(tree('upper = "./upper"\n'), 'E_CONFIG_VALUE', { line: 3, has: ['upper'] });
    refuse('[defaults]\nupper = "upper"\n', 'E_CONFIG_VALUE', { line: 2, has: ['upper'] });
  });

  it('refuses the root directory as dir', () => {
    refuse('[tree.a]\ndir = "/"\n', 'E_CONFIG_VALUE', { line: 2, has: ['dir'] });
    refuse('[tree.a]\ndir = "//."\n', 'E_CONFIG_VALUE', { line: 2, has: ['dir'] });
  });

  for (const size of ['1X', '', '0%', '101%', '-3', '1.5.2G', '25 %%', '0']) {
    it(`refuses tmpfs-size = "${size}"`, () => {
      refuse(tree(`tmpfs-size = "${size}"\n`), 'E_CONFIG_VALUE', { line: 3, has: ['tmpfs-size'] });
    });
  }

  it('refuses tmpfs-size in [defaults] too', () => {
    refuse('[defaults]\ntmpfs-size = "1X"\n', 'E_CONFIG_VALUE', { line: 2, has: ['tmpfs-size'] });
  });

  it('refuses a tmpfs-size below one byte', () => {
    refuse(tree('tmpfs-size = "0.5"\n'), 'E_CONFIG_VALUE', { line: 3, has: ['tmpfs-size'] });
  });

  for (const size of ['3K', '2K', '2M', '1X', '0', '100000']) {
    it(`refuses block-size = "${size}"`, () => {
      refuse(tree(`block-size = "${size}"\n`), 'E_CONFIG_VALUE', { line: 3, has: ['block-size'] });
    });
  }

  it('refuses a numeric block-size that is not a power of two in range', () => {
    refuse(tree('block-size = 1000\n'), 'E_CONFIG_VALUE', { line: 3, has: ['block-size'] });
    refuse(tree('block-size = 2048\n'), 'E_CONFIG_VALUE', { line: 3, has: ['block-size'] });
    refuse(tree('block-size = 0\n'), 'E_CONFIG_VALUE', { line: 3, has: ['block-size'] });
  });

  for (const [comp, level] of [
    ['zstd', 0],
    ['zstd', 23],
    ['gzip', 10],
    ['lzo', 0],
    ['gzip', -1],
  ] as const) {
    it(`refuses compression-level ${level} for ${comp}`, () => {
      refuse(tree(`compression = "${comp}"\ncompression-level = ${level}\n`), 'E_CONFIG_VALUE', {
        line: 4,
        has: ['compression-level', String(level)],
      });
    });
  }

  for (const comp of ['xz', 'lz4']) {
    it(`refuses any compression-level for ${comp}`, () => {
      refuse(tree(`compression = "${comp}"\ncompression-level = 5\n`), 'E_CONFIG_VALUE', {
        line: 4,
        has: ['compression-level', comp],
      });
      refuse(`[defaults]\ncompression = "${comp}"\ncompression-level = 5\n`, 'E_CONFIG_VALUE', {
        line: 3,
        has: ['[defaults]', 'compression-level'],
      });
    });
  }

  it('checks a level from [defaults] against the compressor a tree ends up with', () => {
    // The default compressor is gzip (1..9); zstd's 15 is out of its range.
    refuse('[defaults]\ncompression-level = 15\n\n[tree.a]\ndir = "/srv/a"\n', 'E_CONFIG_VALUE', {
      line: 4,
      has: ['[tree.a]', 'compression-level', 'gzip'],
    });
    refuse(
      '[defaults]\ncompression-level = 5\n\n' + tree('compression = "xz"\n'),
      'E_CONFIG_VALUE',
      {
        has: ['[tree.a]', 'compression-level', 'xz'],
      },
    );
  });

  it('reports an out-of-range level once', () => {
    const e = refuse(tree('compression = "gzip"\ncompression-level = 10\n'), 'E_CONFIG_VALUE');
    assert.equal(e.message.split('\n').length, 1, e.message);
  });

  it('refuses exclude entries that leave the tree', () => {
    refuse(tree('exclude = ["ok", "../etc"]\n'), 'E_CONFIG_VALUE', {
      line: 3,
      has: ['exclude', '../etc'],
    });
    refuse(tree('exclude = ["/etc"]\n'), 'E_CONFIG_VALUE', { line: 3, has: ['/etc'] });
    refuse(tree('exclude = [""]\n'), 'E_CONFIG_VALUE', { line: 3, has: ['exclude'] });
    refuse(tree('exclude = ["a/../../b"]\n'), 'E_CONFIG_VALUE', { line: 3, has: ['exclude'] });
    refuse('[defaults]\nexclude = ["/"]\n', 'E_CONFIG_VALUE', { line: 2, has: ['exclude'] });
  });

  it('refuses on-stop = "keep" with a tmpfs upper, explicit or by default', () => {
    refuse(tree('on-stop = "keep"\n'), 'E_CONFIG_VALUE', { line: 3, has: ['on-stop'] });
    refuse(tree('upper = "tmpfs"\non-stop = "keep"\n'), 'E_CONFIG_VALUE', {
      line: 4,
      has: ['on-stop'],
    });
    // From [defaults]: only the tree left on tmpfs is refused, at its table line.
    refuse(
      `[defaults]
on-stop = "keep"

[tree.a]
dir = "/srv/a"
upper = "/var/tmp/a"

[tree.b]
dir = "/srv/b"
`,
      'E_CONFIG_VALUE',
      { line: 8, has: ['[tree.b]', 'on-stop'] },
    );
  });

  it('refuses an upper of "/"', () => {
    refuse(tree('upper = "/"\non-stop = "keep"\n'), 'E_CONFIG_VALUE', {
      line: 3,
      has: ['upper'],
    });
  });
});

describe('parseConfig: overlapping trees', () => {
  const overlap = (text: string, line: number, has: string[]): void => {
    refuse(text, 'E_CONFIG_OVERLAP', { line, has });
  };

  it('refuses two trees on one dir', () => {
    overlap('[tree.a]\ndir = "/srv/x"\n\n[tree.b]\ndir = "/srv/x/"\n', 5, ['[tree.b]', 'dir']);
  });

  it('refuses a dir inside another tree, in either order', () => {
    overlap('[tree.a]\ndir = "/srv"\n\n[tree.b]\ndir = "/srv/b"\n', 5, ['/srv/b', '"a"']);
    overlap('[tree.a]\ndir = "/srv/b/c"\n\n[tree.b]\ndir = "/srv/b"\n', 5, ['/srv/b/c']);
  });

  it('refuses a store inside the tree’s own dir', () => {
    overlap(tree('store = "/srv/a/.store"\n'), 3, ['store', '/srv/a/.store']);
  });

  it('refuses a default store inside the tree’s own dir', () => {
    // (Not /var/lib itself: a system directory is refused before overlaps are looked at.)
    overlap('[tree.a]\ndir = "/var/lib/squashtree"\n', 1, ['store']);
  });

  it('refuses a store inside another tree’s dir', () => {
    overlap('[tree.a]\ndir = "/srv/a"\n\n[tree.b]\ndir = "/srv/b"\nstore = "/srv/a/s"\n', 6, [
      'store',
      '[tree.b]',
    ]);
    overlap('[tree.a]\ndir = "/srv/a"\nstore = "/srv/b/s"\n\n[tree.b]\ndir = "/srv/b"\n', 6, [
      '[tree.b]',
    ]);
  });

  it('refuses two trees sharing a store', () => {
    overlap(
      '[tree.a]\ndir = "/srv/a"\nstore = "/st"\n\n[tree.b]\ndir = "/srv/b"\nstore = "/st"\n',
      7,
      ['store'],
    );
  });

  it('refuses a disk upper inside the tree’s own dir, or containing it', () => {
    overlap(tree('upper = "/srv/a/upper"\n'), 3, ['upper']);
    overlap(tree('upper = "/srv"\n'), 3, ['upper']);
  });

  it('stays out of the way of names that only share a prefix', () => {
    assert.equal(
      parseConfig('[tree.a]\ndir = "/srv/a"\n[tree.b]\ndir = "/srv/ab"\nstore = "/srv/a-s"\n', FILE)
        .length,
      2,
    );
  });
});

describe('parseConfig: TOML syntax', () => {
  for (const [label, text, line] of [
    ['an unterminated string', '[tree.a]\ndir = "/srv/a\n', 2],
    ['a doubled =', '[tree.a]\ndir = "/srv/a"\n\nkeep = = 3\n', 4],
    ['a duplicate key', '[tree.a]\ndir = "/srv/a"\ndir = "/srv/b"\n', 3],
    ['a redefined table', '[tree.a]\ndir = "/srv/a"\n[tree.a]\ndir = "/b"\n', 3],
    ['a broken header', '# c\n[tree.a\ndir = "/srv/a"\n', 2],
    ['a bare word value', '[tree.a]\ndir = /srv/a\n', 2],
    ['an integer too large', '[tree.a]\ndir = "/srv/a"\nkeep = 99999999999999999999\n', 3],
  ] as const) {
    it(`gives E_CONFIG_SYNTAX with the line for ${label}`, () => {
      const e = refuse(text, 'E_CONFIG_SYNTAX', { has: ['syntax'] });
      assert.match(e.message, new RegExp(`^${FILE}:${line}:\\d+: `));
    });
  }

  it('exits with status 1 as errors.ts documents for config problems (2 is for command-line usage)', () => {
    const e = refuse('[tree.a\n', 'E_CONFIG_SYNTAX');
    assert.equal(e.exitCode, 1);
  });
});

describe('selectTrees', () => {
  const config: Config = {
    path: FILE,
    exists: true,
    text: '',
    trees: parseConfig('[tree.a]\ndir = "/srv/a"\n[tree.b]\ndir = "/srv/b"\n', FILE),
  };

  it('returns every tree when no name is given', () => {
    assert.equal(selectTrees(config, []), config.trees);
  });

  it('returns the named trees in the order asked for', () => {
    assert.deepEqual(
      selectTrees(config, ['b', 'a']).map((t) => t.name),
      ['b', 'a'],
    );
  });

  it('refuses an unknown name with E_NO_TREE, listing the configured trees', () => {
    assert.throws(
      () => selectTrees(config, ['a', 'c']),
      (e: unknown) => {
        assert.ok(e instanceof SquashtreeError);
        assert.equal(e.code, 'E_NO_TREE');
        assert.match(e.message, /"c"/);
        assert.match(e.hint ?? '', /a, b/);
        return true;
      },
    );
  });

  it('suggests init when nothing is configured', () => {
    const empty: Config = { path: FILE, exists: false, text: '', trees: [] };
    assert.deepEqual(selectTrees(empty, []), []);
    assert.throws(
      () => selectTrees(empty, ['x']),
      (e: unknown) =>
        e instanceof SquashtreeError && e.code === 'E_NO_TREE' && /init x/.test(e.hint ?? ''),
    );
  });
});

describe('parseConfig: following a registry', () => {
  it('takes pull-from, verify-key and plain-http, from [defaults] or the tree', () => {
    const [t] = parseConfig(
      '[defaults]\nplain-http = true\n[tree.g]\ndir = "/srv/g"\npull-from = "127.0.0.1:5000/gentoo/repo"\nverify-key = "/etc/squashtree/keys/builder.pub"\n',
      FILE,
    );
    assert.equal(t?.pullFrom, '127.0.0.1:5000/gentoo/repo');
    assert.equal(t?.verifyKey, '/etc/squashtree/keys/builder.pub');
    assert.equal(t?.plainHttp, true);
  });

  it('refuses a relative verify-key, naming the key and line', () => {
    assert.throws(
      () => parseConfig('[tree.g]\ndir = "/srv/g"\nverify-key = "keys/builder.pub"\n', FILE),
      (e: unknown) =>
        e instanceof SquashtreeError &&
        e.code === 'E_CONFIG_VALUE' &&
        /:3:.*verify-key/.test(e.message),
    );
  });
});
