/** Single config values: sizes, powers of two, relative and nested paths. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  LEVEL_RANGE,
  isPowerOfTwo,
  isSafeRelative,
  isWithin,
  parseBytes,
  parseTmpfsSize,
} from '../../src/config/values.js';
import { COMPRESSORS } from '../../src/config/schema.js';

describe('parseBytes', () => {
  it('reads plain numbers and unit suffixes in any case', () => {
    assert.equal(parseBytes('4096'), 4096);
    assert.equal(parseBytes('4K'), 4096);
    assert.equal(parseBytes('4k'), 4096);
    assert.equal(parseBytes('128K'), 131072);
    assert.equal(parseBytes('1M'), 1024 ** 2);
    assert.equal(parseBytes('2G'), 2 * 1024 ** 3);
    assert.equal(parseBytes('1T'), 1024 ** 4);
  });

  it('accepts B, iB and KB style suffixes and surrounding blanks', () => {
    assert.equal(parseBytes('256KiB'), 256 * 1024);
    assert.equal(parseBytes('1MB'), 1024 ** 2);
    assert.equal(parseBytes(' 2 kb '), 2048);
    assert.equal(parseBytes('10b'), 10);
  });

  it('accepts decimals and rounds down to whole bytes', () => {
    assert.equal(parseBytes('1.5K'), 1536);
    assert.equal(parseBytes('0.5M'), 512 * 1024);
    assert.equal(parseBytes('1.0001K'), 1024);
  });

  it('accepts positive safe integers as numbers', () => {
    assert.equal(parseBytes(1), 1);
    assert.equal(parseBytes(65536), 65536);
    assert.equal(parseBytes(Number.MAX_SAFE_INTEGER), Number.MAX_SAFE_INTEGER);
  });

  it('refuses anything else', () => {
    for (const v of [
      '1X',
      '-3',
      '',
      ' ',
      'K',
      '1 2K',
      '1KK',
      '0',
      '0K',
      '1e3',
      '0x10',
      '.5K',
      '1,5K',
    ]) {
      assert.equal(parseBytes(v), undefined, JSON.stringify(v));
    }
    for (const v of [0, -1, 1.5, NaN, Infinity, Number.MAX_SAFE_INTEGER + 1]) {
      assert.equal(parseBytes(v), undefined, String(v));
    }
  });

  it('never returns zero for a string', () => {
    assert.equal(parseBytes('0.5'), undefined);
    assert.equal(parseBytes('0.1b'), undefined);
  });
});

describe('parseTmpfsSize', () => {
  it('passes percentages of RAM from 1% to 100% through', () => {
    assert.equal(parseTmpfsSize('25%'), '25%');
    assert.equal(parseTmpfsSize(' 1% '), '1%');
    assert.equal(parseTmpfsSize('100%'), '100%');
    assert.equal(parseTmpfsSize('050%'), '50%');
  });

  it('refuses percentages out of range or malformed', () => {
    for (const v of ['0%', '101%', '999%', '1000%', '%', '2.5%', '-5%', '25 %%']) {
      assert.equal(parseTmpfsSize(v), undefined, v);
    }
  });

  it('turns sizes into a byte count', () => {
    assert.equal(parseTmpfsSize('1G'), String(1024 ** 3));
    assert.equal(parseTmpfsSize('512M'), String(512 * 1024 ** 2));
    assert.equal(parseTmpfsSize(1048576), '1048576');
  });

  it('refuses what is neither', () => {
    for (const v of ['1X', '', 'lots', '-1G']) assert.equal(parseTmpfsSize(v), undefined, v);
    assert.equal(parseTmpfsSize(0), undefined);
    assert.equal(parseTmpfsSize(-5), undefined);
  });

  it('never gives "0", which tmpfs takes as no limit', () => {
    assert.equal(parseTmpfsSize('0.5'), undefined);
  });
});

describe('isPowerOfTwo', () => {
  it('is true for every power of two mksquashfs takes as a block size', () => {
    for (let n = 4096; n <= 1 << 20; n *= 2) assert.ok(isPowerOfTwo(n), String(n));
    assert.ok(isPowerOfTwo(1));
    assert.ok(isPowerOfTwo(2 ** 30));
  });

  it('is false for zero, negatives and other numbers', () => {
    for (const n of [0, -2, -4096, 3, 6, 1000, 4095, 4097, 3 * 4096, 2 ** 20 + 2 ** 19]) {
      assert.equal(isPowerOfTwo(n), false, String(n));
    }
  });

  it('is false beyond 32 bits for non-powers', () => {
    assert.equal(isPowerOfTwo(2 ** 32 + 2 ** 31), false);
    assert.equal(isPowerOfTwo(3 * 2 ** 32), false);
  });
});

describe('LEVEL_RANGE', () => {
  it('has an entry for every compressor, none for xz and lz4', () => {
    for (const c of COMPRESSORS) assert.ok(c in LEVEL_RANGE, c);
    assert.deepEqual(LEVEL_RANGE.gzip, [1, 9]);
    assert.deepEqual(LEVEL_RANGE.lzo, [1, 9]);
    assert.deepEqual(LEVEL_RANGE.zstd, [1, 22]);
    assert.equal(LEVEL_RANGE.xz, undefined);
    assert.equal(LEVEL_RANGE.lz4, undefined);
  });
});

describe('isSafeRelative', () => {
  it('accepts relative paths that stay inside', () => {
    for (const p of ['distfiles', 'metadata/md5-cache', '.git', 'a/b/c', '..a', 'a..', 'a/...']) {
      assert.ok(isSafeRelative(p), p);
    }
  });

  it('refuses empty, absolute, ".." segments and NUL', () => {
    for (const p of ['', '/etc', '..', '../x', 'a/../b', 'a/..', 'a\0b']) {
      assert.equal(isSafeRelative(p), false, JSON.stringify(p));
    }
  });
});

describe('isWithin', () => {
  it('is true for the same path and for paths below', () => {
    assert.ok(isWithin('/srv/a', '/srv/a'));
    assert.ok(isWithin('/srv/a/b', '/srv/a'));
    assert.ok(isWithin('/srv/a/b/c', '/srv'));
  });

  it('is false for siblings that only share a prefix', () => {
    assert.equal(isWithin('/srv/ab', '/srv/a'), false);
    assert.equal(isWithin('/srv/a-store', '/srv/a'), false);
    assert.equal(isWithin('/srv', '/srv/a'), false);
  });

  it('puts everything within the root directory', () => {
    assert.ok(isWithin('/anything', '/'));
    assert.ok(isWithin('/', '/'));
  });

  it('accepts an outer path written with a trailing slash', () => {
    assert.ok(isWithin('/srv/a/b', '/srv/a/'));
    assert.equal(isWithin('/srv/ab', '/srv/a/'), false);
  });
});
