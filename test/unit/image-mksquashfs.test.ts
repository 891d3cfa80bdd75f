/** The mksquashfs command line, built without running it. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  compressorArgs,
  mksquashfsArgs,
  type BuildOptions,
  type PackSettings,
} from '../../src/image/mksquashfs.js';

const settings: PackSettings = {
  compression: 'zstd',
  compressionLevel: undefined,
  blockSize: 131072,
  extraArgs: [],
};

const opts = (over: Partial<BuildOptions> = {}): BuildOptions => ({
  ...settings,
  source: '/run/squashtree/gentoo/stage',
  output: '/var/lib/squashtree/gentoo/.tmp-g000002-layer.sqfs',
  ...over,
});

/** The value following a flag, if the flag is there. */
function after(args: readonly string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i < 0 ? undefined : args[i + 1];
}

describe('compressorArgs', () => {
  it('names the compressor and the block size in bytes', () => {
    assert.deepEqual(compressorArgs(settings), ['-comp', 'zstd', '-b', '131072']);
  });

  it('adds the level when one is set', () => {
    assert.deepEqual(compressorArgs({ ...settings, compression: 'gzip', compressionLevel: 9 }), [
      '-comp',
      'gzip',
      '-b',
      '131072',
      '-Xcompression-level',
      '9',
    ]);
  });

  it('passes level 0 on rather than dropping it', () => {
    assert.equal(
      after(compressorArgs({ ...settings, compressionLevel: 0 }), '-Xcompression-level'),
      '0',
    );
  });

  it('leaves the level out for compressors without one', () => {
    for (const compression of ['xz', 'lz4'] as const) {
      const args = compressorArgs({ ...settings, compression });
      assert.ok(!args.includes('-Xcompression-level'));
      assert.equal(after(args, '-comp'), compression);
    }
  });
});

describe('mksquashfsArgs', () => {
  it('starts with source and output, then never appends to an old image', () => {
    const args = mksquashfsArgs(opts());
    assert.equal(args[0], '/run/squashtree/gentoo/stage');
    assert.equal(args[1], '/var/lib/squashtree/gentoo/.tmp-g000002-layer.sqfs');
    assert.ok(args.includes('-noappend'));
  });

  it('keeps extended attributes and reports progress', () => {
    const args = mksquashfsArgs(opts());
    assert.ok(args.includes('-xattrs'));
    assert.ok(!args.includes('-no-xattrs'));
    assert.ok(args.includes('-progress'));
  });

  it('includes the compressor settings', () => {
    const args = mksquashfsArgs(
      opts({ compression: 'gzip', compressionLevel: 6, blockSize: 1 << 20 }),
    );
    assert.equal(after(args, '-comp'), 'gzip');
    assert.equal(after(args, '-b'), String(1 << 20));
    assert.equal(after(args, '-Xcompression-level'), '6');
  });

  it('passes the extra arguments as they are', () => {
    const extra = ['-no-fragments', '-processors', '2', 'with space'];
    const args = mksquashfsArgs(opts({ extraArgs: extra }));
    const i = args.indexOf('-no-fragments');
    assert.ok(i > 1);
    assert.deepEqual(args.slice(i, i + extra.length), extra);
  });

  it('puts -e and the excludes last, after the extra arguments', () => {
    const args = mksquashfsArgs(
      opts({ extraArgs: ['-no-fragments'], exclude: ['distfiles', 'metadata/md5-cache'] }),
    );
    const e = args.indexOf('-e');
    assert.deepEqual(args.slice(e), ['-e', 'distfiles', 'metadata/md5-cache']);
    assert.ok(e > args.indexOf('-no-fragments'));
    assert.ok(e > args.indexOf('-noappend'));
    assert.ok(e > args.indexOf('-xattrs'));
    assert.ok(e > args.indexOf('-comp'));
    assert.equal(args.lastIndexOf('-e'), e);
  });

  it('leaves -e out without excludes', () => {
    assert.ok(!mksquashfsArgs(opts()).includes('-e'));
    assert.ok(!mksquashfsArgs(opts({ exclude: [] })).includes('-e'));
  });

  it('keeps exclude entries that look like options after -e', () => {
    const args = mksquashfsArgs(opts({ exclude: ['-noappend', 'a b'] }));
    assert.deepEqual(args.slice(-3), ['-e', '-noappend', 'a b']);
  });

  it('does not alter the options it was given', () => {
    const extra = ['-no-fragments'];
    const exclude = ['distfiles'];
    mksquashfsArgs(opts({ extraArgs: extra, exclude }));
    assert.deepEqual(extra, ['-no-fragments']);
    assert.deepEqual(exclude, ['distfiles']);
  });
});
