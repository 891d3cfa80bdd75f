/** withTree: appending a [tree.NAME] table as text, checked but not written. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { withTree } from '../../src/config/edit.js';
import { parseConfig } from '../../src/config/load.js';
import { SquashtreeError } from '../../src/errors.js';

const FILE = '/etc/squashtree/edit.toml';

const EXISTING = `# my squashtree config
# (hand-written; keep this comment)

[defaults]
compression = "zstd"   # fast enough
exclude = ["distfiles"]

# the kernel, on disk
[tree.linux]
dir = "/usr/src/linux"
upper = "/var/tmp/linux"
on-stop = "keep"
`;

describe('withTree', () => {
  it('appends the table after the existing text, leaving it byte for byte', () => {
    const r = withTree(FILE, EXISTING, 'gentoo', { dir: '/var/db/repos/gentoo' });
    assert.ok(r.text.startsWith(EXISTING), r.text);
    assert.match(r.text, /# the kernel, on disk/);
    assert.match(r.text, /compression = "zstd" {3}# fast enough/);
    assert.match(
      r.text.slice(EXISTING.length),
      /^\n\[tree\.gentoo\]\ndir = "\/var\/db\/repos\/gentoo"\n/,
    );
  });

  it('returns the resolved trees, old and new, with defaults applied', () => {
    const r = withTree(FILE, EXISTING, 'gentoo', { dir: '/var/db/repos/gentoo' });
    assert.deepEqual(
      r.trees.map((t) => t.name),
      ['linux', 'gentoo'],
    );
    const gentoo = r.trees[1];
    assert.ok(gentoo);
    assert.equal(gentoo.compression, 'zstd');
    assert.deepEqual(gentoo.exclude, ['distfiles']);
    assert.equal(gentoo.store, '/var/lib/squashtree/gentoo');
  });

  it('gives text that parses to the same trees', () => {
    const r = withTree(FILE, EXISTING, 'gentoo', {
      dir: '/var/db/repos/gentoo',
      store: '/data/squash/gentoo',
      'compression-level': 3,
      exclude: ['distfiles', 'packages'],
      upper: 'tmpfs',
      'tmpfs-size': '2G',
    });
    assert.deepEqual(parseConfig(r.text, FILE), r.trees);
    const g = r.trees[1];
    assert.ok(g);
    assert.equal(g.compressionLevel, 3);
    assert.deepEqual(g.exclude, ['distfiles', 'packages']);
    assert.deepEqual(g.upper, { kind: 'tmpfs', size: String(2 * 1024 ** 3) });
  });

  it('starts an empty file with a header comment', () => {
    const r = withTree(FILE, '', 'gentoo', { dir: '/var/db/repos/gentoo' });
    assert.match(r.text, /^# squashtree configuration/);
    assert.match(r.text, /\n\n\[tree\.gentoo\]\n/);
    assert.equal(r.trees.length, 1);
    assert.deepEqual(parseConfig(r.text, FILE), r.trees);
  });

  it('quotes names that need it', () => {
    const r = withTree(FILE, '', 'tex.live', { dir: '/usr/share/texmf-dist' });
    assert.match(r.text, /\[tree\."tex\.live"\]/);
    assert.equal(r.trees[0]?.name, 'tex.live');
  });

  it('escapes strings that need it', () => {
    const r = withTree(FILE, '', 'q', { dir: '/srv/with "quotes" and \\ back' });
    assert.equal(r.trees[0]?.dir, '/srv/with "quotes" and \\ back');
  });

  it('separates the new table from text without a final newline', () => {
    const prev = '[tree.a]\ndir = "/srv/a"';
    const r = withTree(FILE, prev, 'b', { dir: '/srv/b' });
    assert.ok(r.text.startsWith(`${prev}\n\n[tree.b]\n`), JSON.stringify(r.text));
    assert.equal(r.trees.length, 2);
  });

  it('does not add blank lines after text that already ends with one', () => {
    const prev = '[tree.a]\ndir = "/srv/a"\n\n';
    const r = withTree(FILE, prev, 'b', { dir: '/srv/b' });
    assert.ok(r.text.startsWith(`${prev}[tree.b]\n`), JSON.stringify(r.text));
  });

  it('keeps a final comment without a newline out of the new table', () => {
    const prev = '[tree.a]\ndir = "/srv/a"\n# end';
    const r = withTree(FILE, prev, 'b', { dir: '/srv/b' });
    assert.equal(r.trees.length, 2);
    assert.ok(r.text.includes('# end\n'));
  });

  it('refuses a table that overlaps an existing tree, naming the new line', () => {
    assert.throws(
      () => withTree(FILE, '[tree.a]\ndir = "/srv/a"\n', 'b', { dir: '/srv/a/sub' }),
      (e: unknown) => {
        assert.ok(e instanceof SquashtreeError);
        assert.equal(e.code, 'E_CONFIG_OVERLAP');
        assert.ok(e.message.includes(`${FILE}:5:`), e.message);
        assert.ok(e.message.includes('[tree.b]'), e.message);
        return true;
      },
    );
  });

  it('refuses a name that is already a table', () => {
    assert.throws(
      () => withTree(FILE, '[tree.a]\ndir = "/srv/a"\n', 'a', { dir: '/srv/b' }),
      (e: unknown) => e instanceof SquashtreeError && e.code === 'E_CONFIG_SYNTAX',
    );
  });

  it('refuses bad values with the key and line of the appended text', () => {
    assert.throws(
      () => withTree(FILE, EXISTING, 'g', { dir: '/srv/g', 'block-size': '3K' }),
      (e: unknown) => {
        assert.ok(e instanceof SquashtreeError);
        assert.equal(e.code, 'E_CONFIG_VALUE');
        // After the existing lines: a blank line, the header, dir, block-size.
        const line = EXISTING.split('\n').length - 1 + 4;
        assert.ok(e.message.includes(`${FILE}:${line}:`), e.message);
        assert.ok(e.message.includes('block-size'));
        return true;
      },
    );
  });

  it('does not alter the config it was given', () => {
    const before = EXISTING;
    withTree(FILE, before, 'x', { dir: '/srv/x' });
    assert.equal(before, EXISTING);
  });
});
