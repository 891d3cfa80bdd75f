/**
 * matchImage: an image checked against the dir it was packed from, in
 * process. A faithful image matches; every kind of difference the mount
 * comparison found (and the opaque marks it could not see) is found and
 * named. Needs root (device nodes, chown, trusted.* xattrs) and mksquashfs.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { needRoot, sandbox } from '../helpers/env.js';
import { buildTree, setXattr } from '../helpers/tree.js';
import { matchImage, type MatchOptions } from '../../src/image/match.js';
import { SquashfsImage } from '../../src/squashfs/index.js';
import { walkSync } from '../../src/fs/walk.js';

const T = new Date('2026-08-01T00:00:00Z');

async function packed(t: TestContext): Promise<{ src: string; image: string; dir: string }> {
  const sb = await sandbox(t, 'st-match-');
  const src = join(sb.dir, 'src');
  await buildTree(src, {
    small: 'small\n',
    // Three 4 KiB blocks and a tail in a fragment.
    big: Buffer.alloc(3 * 4096 + 100, 'x'),
    owned: { file: 'owned\n', uid: 1234, gid: 4321, mode: 0o640 },
    link: { symlink: 'small' },
    'hard-a': 'shared\n',
    'hard-b': { hardlink: 'hard-a' },
    'apart-a': 'same\n',
    'apart-b': 'same\n',
    fifo: { fifo: true },
    opaque: { dir: { inside: 'in\n' } },
    plain: { dir: { other: 'other\n' } },
    empty: { dir: {} },
  });
  execFileSync('mknod', [join(src, 'whiteout'), 'c', '0', '0']);
  execFileSync('mknod', [join(src, 'dev'), 'b', '259', '65537']);
  setXattr(join(src, 'opaque'), 'trusted.overlay.opaque', 'y');
  execFileSync('find', [src, '-exec', 'touch', '-h', '-d', T.toISOString(), '{}', '+']);
  const image = join(sb.dir, 'image.sqfs');
  execFileSync('mksquashfs', [src, image, '-noappend', '-quiet', '-no-progress', '-b', '4096']);
  return { src, image, dir: sb.dir };
}

async function match(image: string, src: string, opts: MatchOptions = {}) {
  const img = await SquashfsImage.open(image);
  try {
    return await matchImage(img, src, opts);
  } finally {
    await img.close();
  }
}

const whats = (r: { differences: { path: string; what: string }[] }): string[] =>
  r.differences.map((d) => `${d.path}: ${d.what}`).sort();

describe('matchImage', () => {
  it('finds nothing in a faithful image and checks the opaque marks it is given', async (t) => {
    if (!needRoot(t)) return;
    const { src, image } = await packed(t);
    const ok = await match(image, src, {
      opaque: new Map([
        ['opaque', true],
        ['plain', false],
      ]),
    });
    assert.deepEqual(whats(ok), []);
    assert.equal(ok.files, 13);
    const wrong = await match(image, src, {
      opaque: new Map([
        ['opaque', false],
        ['plain', true],
      ]),
    });
    assert.deepEqual(whats(wrong), [
      'opaque: opaque mark unexpected',
      'plain: opaque mark missing',
    ]);
  });

  it('names every kind of difference', async (t) => {
    if (!needRoot(t)) return;
    const { src, image } = await packed(t);
    const keepTime = async (rel: string): Promise<void> => {
      await fsp.lutimes(join(src, rel), T, T);
    };
    // Same size and mtime, one byte changed in the third block: only the contents tell.
    const big = await fsp.readFile(join(src, 'big'));
    big[2 * 4096 + 7] = 0x79;
    await fsp.writeFile(join(src, 'big'), big);
    await keepTime('big');
    await fsp.writeFile(join(src, 'small'), 'SMALL\n');
    await keepTime('small');
    await fsp.chmod(join(src, 'owned'), 0o600);
    await fsp.rm(join(src, 'link'));
    await fsp.symlink('elsewhere', join(src, 'link'));
    await keepTime('link');
    await fsp.rm(join(src, 'apart-b'));
    await fsp.link(join(src, 'apart-a'), join(src, 'apart-b'));
    await fsp.rm(join(src, 'fifo'));
    await fsp.writeFile(join(src, 'not-packed'), 'new\n');
    await fsp.rm(join(src, 'dev'));
    execFileSync('mknod', [join(src, 'dev'), 'b', '259', '65538']);
    await keepTime('dev');
    await fsp.appendFile(join(src, 'plain/other'), 'more');
    await keepTime('plain/other');
    const r = await match(image, src, { limit: 100 });
    assert.deepEqual(whats(r), [
      'apart-b: hard links not preserved',
      'big: content differs',
      'dev: device number differs',
      'fifo: unexpected',
      'link: symlink target differs',
      'not-packed: missing',
      'owned: mode 600 != 640',
      'plain/other: size 10 != 6',
      'small: content differs',
    ]);
  });

  it('takes the entries it expects from the caller, and only the contents from the dir', async (t) => {
    if (!needRoot(t)) return;
    const { src, image } = await packed(t);
    const entries = walkSync(src);
    assert.deepEqual(whats(await match(image, src, { expected: entries })), []);
    const fewer = entries.filter((e) => e.path !== 'small');
    const renamed = fewer.map((e) => (e.path === 'owned' ? { ...e, path: 'owned-elsewhere' } : e));
    assert.deepEqual(whats(await match(image, src, { expected: renamed })), [
      'owned-elsewhere: missing',
      'owned: unexpected',
      'small: unexpected',
    ]);
  });

  it('leaves skipped paths out on both sides', async (t) => {
    if (!needRoot(t)) return;
    const { src, image } = await packed(t);
    await fsp.writeFile(join(src, 'plain/later'), 'not in the image\n');
    const r = await match(image, src, { skip: (rel) => rel === 'plain' });
    assert.deepEqual(whats(r), []);
  });
});
