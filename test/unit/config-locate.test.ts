/** splitDotted and LineLocator: naming the line of a key in config text. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LineLocator, splitDotted } from '../../src/config/locate.js';

describe('splitDotted', () => {
  it('splits bare dotted keys', () => {
    assert.deepEqual(splitDotted('tree.gentoo.dir'), ['tree', 'gentoo', 'dir']);
    assert.deepEqual(splitDotted('keep'), ['keep']);
  });

  it('keeps dots inside double or single quotes', () => {
    assert.deepEqual(splitDotted('tree."my.name"'), ['tree', 'my.name']);
    assert.deepEqual(splitDotted("tree.'a.b'.c"), ['tree', 'a.b', 'c']);
  });

  it('trims whitespace around the parts', () => {
    assert.deepEqual(splitDotted(' tree . "x y" . dir '), ['tree', 'x y', 'dir']);
  });

  it('gives one empty part for an empty key', () => {
    assert.deepEqual(splitDotted(''), ['']);
  });

  it('keeps the other quote kind inside a quoted part', () => {
    assert.deepEqual(splitDotted(`tree."it's"`), ['tree', "it's"]);
  });
});

describe('LineLocator', () => {
  const text = [
    '# squashtree', // 1
    '[defaults]', // 2
    'keep = 1', // 3
    '', // 4
    '[ tree . "my.tree" ]', // 5
    'dir = "/a"', // 6
    '"quoted key" = 1', // 7
    'sub.key = 2', // 8
    '  indented = 3', // 9
    '# keep = 99', // 10
    'exclude = [', // 11
    '  "a",', // 12
    ']', // 13
    '[tree.b]', // 14
    'dir = "/b"  # trailing comment', // 15
  ].join('\n');
  const loc = new LineLocator(text);

  it('finds keys under their table, 1-based', () => {
    assert.equal(loc.line(['defaults', 'keep']), 3);
    assert.equal(loc.line(['tree', 'my.tree', 'dir']), 6);
    assert.equal(loc.line(['tree', 'b', 'dir']), 15);
  });

  it('finds quoted, dotted and indented keys', () => {
    assert.equal(loc.line(['tree', 'my.tree', 'quoted key']), 7);
    assert.equal(loc.line(['tree', 'my.tree', 'sub', 'key']), 8);
    assert.equal(loc.line(['tree', 'my.tree', 'indented']), 9);
  });

  it('falls back to the nearest known key or table', () => {
    assert.equal(loc.line(['tree', 'my.tree', 'missing']), 5);
    assert.equal(loc.line(['defaults', 'compression']), 2);
    // An element of a list points at the list's key.
    assert.equal(loc.line(['tree', 'my.tree', 'exclude', 0]), 11);
    assert.equal(loc.line(['tree', 'b', 'dir', 'deeper']), 15);
  });

  it('ignores commented-out keys', () => {
    assert.equal(loc.line(['tree', 'my.tree', 'keep']), 5);
    assert.equal(loc.line(['defaults', 'keep']), 3);
  });

  it('gives undefined for paths it cannot place', () => {
    assert.equal(loc.line(['nowhere']), undefined);
    assert.equal(loc.line([]), undefined);
  });

  it('places top-level keys before any table', () => {
    const l = new LineLocator('\nfoo = 1\n[tree.a]\nfoo = 2\n');
    assert.equal(l.line(['foo']), 2);
    assert.equal(l.line(['tree', 'a', 'foo']), 4);
  });

  it('places inline and dotted-table keys', () => {
    const l = new LineLocator('tree.a = { dir = "/a" }\n[tree]\nb.dir = "/b"\n');
    assert.equal(l.line(['tree', 'a', 'dir']), 1);
    assert.equal(l.line(['tree', 'b', 'dir']), 3);
  });

  it('counts lines of CRLF text the same way', () => {
    const l = new LineLocator('[tree.a]\r\n\r\ndir = "/a"\r\n');
    assert.equal(l.line(['tree', 'a', 'dir']), 3);
  });

  it('takes the last line when a key is repeated', () => {
    const l = new LineLocator('[tree.a]\ndir = 1\n[tree.a]\ndir = 2\n');
    assert.equal(l.line(['tree', 'a', 'dir']), 4);
    assert.equal(l.line(['tree', 'a']), 3);
  });
});
