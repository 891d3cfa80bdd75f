/** The native SquashFS reader on damaged images: each damage is a SquashfsFormatError naming the structure at fault. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SquashfsFormatError, SquashfsImage } from '../../src/squashfs/index.js';
import { mksquashfs } from '../helpers/awkward-tree.js';

describe('squashfs reader: damaged images', () => {
  let dir = '';
  let good = Buffer.alloc(0);
  before(async () => {
    dir = await fsp.mkdtemp(join(tmpdir(), 'squashfs-damaged-'));
    await fsp.mkdir(join(dir, 'src/sub'), { recursive: true });
    await fsp.writeFile(join(dir, 'src/sub/file'), 'content\n'.repeat(1000));
    mksquashfs(join(dir, 'src'), join(dir, 'i.sqfs'), []);
    good = await fsp.readFile(join(dir, 'i.sqfs'));
  });
  after(async () => {
    if (dir) await fsp.rm(dir, { recursive: true, force: true });
  });

  const expectFormat = async (buf: Buffer, structure: string, re: RegExp): Promise<void> => {
    await assert.rejects(
      SquashfsImage.fromBuffer(buf),
      (e) => e instanceof SquashfsFormatError && e.structure === structure && re.test(e.message),
    );
  };

  it('rejects a bad magic, version, block size and compressor', async () => {
    const b = Buffer.from(good);
    b.writeUInt32LE(0x12345678, 0);
    await expectFormat(b, 'superblock', /bad magic/);
    const v = Buffer.from(good);
    v.writeUInt16LE(3, 28);
    await expectFormat(v, 'superblock', /version 3\.0/);
    const s = Buffer.from(good);
    s.writeUInt32LE(3000, 12);
    await expectFormat(s, 'superblock', /block size/);
    const c = Buffer.from(good);
    c.writeUInt16LE(9, 20);
    await expectFormat(c, 'superblock', /unknown compressor id 9/);
    await expectFormat(good.subarray(0, 50), 'superblock', /smaller than a superblock/);
  });

  it('rejects a truncated image with its offset', async () => {
    await assert.rejects(
      SquashfsImage.fromBuffer(good.subarray(0, 200)),
      (e) => e instanceof SquashfsFormatError && /truncated/.test(e.message) && e.offset === 0,
    );
    const file = join(dir, 'trunc.sqfs');
    await fsp.writeFile(file, good.subarray(0, good.readUInt32LE(40) - 10));
    await assert.rejects(SquashfsImage.open(file), SquashfsFormatError);
  });

  it('rejects a root inode reference outside the inode table', async () => {
    const b = Buffer.from(good);
    b.writeBigUInt64LE(0xffffn << 16n, 32);
    await expectFormat(b, 'superblock', /root inode reference/);
  });

  it('closes the file handle when open fails, and after close', async () => {
    const file = join(dir, 'bad.sqfs');
    await fsp.writeFile(file, Buffer.alloc(4096));
    await assert.rejects(SquashfsImage.open(file), SquashfsFormatError);
    const img = await SquashfsImage.open(join(dir, 'i.sqfs'));
    await img.close();
    await img.close();
    await assert.rejects(img.lookup('/sub'), /closed/);
  });
});
