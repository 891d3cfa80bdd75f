/** parseConfig's checks across trees (overlaps, a followed registry), and selectTrees. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig, selectTrees, type Config } from '../../src/config/load.js';
import { SquashtreeError } from '../../src/errors.js';
import { FILE, refuse, tree } from '../helpers/config-parse.js';

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
