/**
 * parseConfig refuses wrong types and values, and TOML that does not parse:
 * every refusal with its code, naming the file, the line and the key at fault.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FILE, refuse, tree } from '../helpers/config-parse.js';

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
