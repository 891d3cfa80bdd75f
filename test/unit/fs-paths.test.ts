/** Binary relative paths: display, fs paths and joining. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { displayPath, fsPath, joinRel } from '../../src/fs/paths.js';

/** A name as the tool holds it: its bytes, one char per byte. */
const bin = (bytes: number[] | string): string =>
  (typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : Buffer.from(bytes)).toString('latin1');

describe('displayPath', () => {
  it('shows plain ASCII as it is', () => {
    assert.equal(displayPath('metadata/md5-cache/app-misc'), 'metadata/md5-cache/app-misc');
    assert.equal(displayPath('with space.txt'), 'with space.txt');
    assert.equal(displayPath(''), '');
  });

  it('decodes valid UTF-8 names', () => {
    assert.equal(displayPath(bin('café/naïve')), 'café/naïve');
    assert.equal(displayPath(bin('日本語')), '日本語');
    assert.equal(displayPath(bin('smile-\u{1F600}')), 'smile-\u{1F600}');
    assert.equal(displayPath(bin('\ufffd')), '\ufffd');
  });

  it('escapes newline, tab, backslash and other control characters', () => {
    assert.equal(displayPath('new\nline'), 'new\\nline');
    assert.equal(displayPath('a\tb'), 'a\\tb');
    assert.equal(displayPath('back\\slash'), 'back\\\\slash');
    assert.equal(displayPath('bell\x07'), 'bell\\x07');
    assert.equal(displayPath('del\x7f'), 'del\\x7f');
    assert.equal(displayPath('cr\r'), 'cr\\x0d');
    assert.equal(displayPath(bin('é\n')), 'é\\n');
  });

  it('escapes every non-ASCII byte of a name that is not UTF-8', () => {
    assert.equal(displayPath('caf\xe9'), 'caf\\xe9');
    assert.equal(displayPath('caf\xe9-\xff\xfe'), 'caf\\xe9-\\xff\\xfe');
    // One bad byte: the valid UTF-8 sequence beside it is escaped too.
    assert.equal(displayPath(bin([0xc3, 0xa9, 0xff])), '\\xc3\\xa9\\xff');
    assert.equal(displayPath('\xff\nx\\'), '\\xff\\nx\\\\');
  });

  it('escapes encodings Node would decode lossily (surrogates, overlong, truncated)', () => {
    assert.equal(displayPath(bin([0xed, 0xa0, 0x80])), '\\xed\\xa0\\x80');
    assert.equal(displayPath(bin([0xc0, 0xaf])), '\\xc0\\xaf');
    assert.equal(displayPath(bin([0x61, 0xe2, 0x82])), 'a\\xe2\\x82');
  });

  it('gives distinct output for distinct names', () => {
    const names = ['a\\nb', 'a\nb', 'a\\x0ab', 'caf\xe9', 'caf\\xe9', bin('café'), 'a\\\\'];
    const shown = names.map(displayPath);
    assert.equal(new Set(shown).size, names.length, JSON.stringify(shown));
  });

  it('returns one line of printable text for any byte', () => {
    for (let b = 0; b < 256; b++) {
      const out = displayPath(`x${String.fromCharCode(b)}y`);
      const control = out.split('').some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);
      assert.ok(!control, `byte ${b}: ${JSON.stringify(out)}`);
    }
  });
});

describe('fsPath', () => {
  /** The bytes node:fs passes to the kernel (it encodes strings as UTF-8). */
  const bytesOf = (p: string | Buffer): Buffer => (typeof p === 'string' ? Buffer.from(p) : p);

  it('gives the root itself for the empty relative path', () => {
    assert.deepEqual(bytesOf(fsPath('/srv/tree', '')), Buffer.from('/srv/tree'));
  });

  it('joins the root and the relative path with one slash', () => {
    assert.equal(bytesOf(fsPath('/srv/tree', 'a/b')).toString(), '/srv/tree/a/b');
  });

  it('keeps the relative path’s bytes exactly', () => {
    const p = bytesOf(fsPath('/srv', 'caf\xe9\xff'));
    assert.deepEqual([...p.subarray(-6)], [0x2f, 0x63, 0x61, 0x66, 0xe9, 0xff]);
    assert.equal(p.length, '/srv/'.length + 5);
  });

  it('encodes the root as UTF-8 text and a UTF-8 relative path byte for byte', () => {
    const p = bytesOf(fsPath('/srv/é', bin('ü')));
    assert.equal(p.toString('utf8'), '/srv/é/ü');
  });

  it('keeps newlines and backslashes in names', () => {
    assert.equal(bytesOf(fsPath('/r', 'new\nline\\x')).toString('latin1'), '/r/new\nline\\x');
  });

  it('gives plain text for ASCII paths and bytes for the rest', () => {
    assert.equal(typeof fsPath('/r', 'a/b c'), 'string');
    assert.ok(Buffer.isBuffer(fsPath('/r', 'caf\xe9')));
  });
});

describe('joinRel', () => {
  it('gives the name itself under the root', () => {
    assert.equal(joinRel('', 'a'), 'a');
  });

  it('joins with a slash below the root', () => {
    assert.equal(joinRel('a', 'b'), 'a/b');
    assert.equal(joinRel('a/b', 'caf\xe9'), 'a/b/caf\xe9');
  });

  it('round-trips through fsPath', () => {
    const rel = joinRel(joinRel('', 'dir\xff'), 'f\n');
    assert.equal(fsPath('/root', rel).toString('latin1'), '/root/dir\xff/f\n');
  });
});
