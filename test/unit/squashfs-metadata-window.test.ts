/**
 * The metadata cache reads a table ahead (metadata.ts, READ_AHEAD): the
 * blocks of a table come back as written, across the ends of its reads,
 * with far fewer reads than blocks, and a block stored uncompressed is a
 * copy rather than a view that would keep a whole read alive.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { metadataCompressor } from '../../src/squashfs/compress.js';
import { makeDecompressor } from '../../src/squashfs/decompress.js';
import { MetadataCache, METADATA_SIZE } from '../../src/squashfs/metadata.js';
import { MetadataWriter } from '../../src/squashfs/meta-writer.js';
import { BoundedReader, BufferSource, FileSource } from '../../src/squashfs/source.js';
import { noise } from '../helpers/tree.js';

class CountingSource extends BufferSource {
  reads = 0;

  override readAt(pos: number, len: number, into?: Buffer): Promise<Buffer> {
    this.reads++;
    return super.readAt(pos, len, into);
  }
}

/** A table of `blocks` metadata blocks: half text that compresses, half noise stored as is. */
function table(blocks: number): { bytes: Buffer; plain: Buffer[] } {
  const w = new MetadataWriter(metadataCompressor('gzip'));
  const plain: Buffer[] = [];
  for (let i = 0; i < blocks; i++) {
    const b =
      i % 2 === 0
        ? Buffer.from(`block ${i} `.repeat(METADATA_SIZE).slice(0, METADATA_SIZE))
        : noise(METADATA_SIZE, i + 1);
    plain.push(b);
    w.write(b);
  }
  return { bytes: Buffer.concat(w.finish()), plain };
}

describe('metadata read-ahead', () => {
  it('returns every block as written with fewer reads than blocks', async () => {
    const { bytes, plain } = table(40);
    const source = new CountingSource(bytes);
    const cache = new MetadataCache(new BoundedReader(source), makeDecompressor('gzip'));
    let pos = 0;
    for (const [i, want] of plain.entries()) {
      const blk = await cache.get(pos, bytes.length, 'test table');
      assert.ok(blk.data.equals(want), `block ${i}`);
      if (i % 2 === 1) {
        assert.equal(blk.data.buffer.byteLength, blk.data.length, 'a stored block is its own copy');
      }
      pos = blk.next;
    }
    assert.equal(pos, bytes.length);
    // 20 stored blocks of 8 KiB alone make 160 KiB: three or four reads, never one per block.
    assert.ok(source.reads <= 6, `${source.reads} reads for ${plain.length} blocks`);
  });

  it('names a block that runs past its table', async () => {
    const { bytes } = table(2);
    const cache = new MetadataCache(
      new BoundedReader(new BufferSource(bytes)),
      makeDecompressor('gzip'),
    );
    await assert.rejects(
      cache.get(0, 10, 'test table'),
      /runs past the end of its table \(byte 10\)/,
    );
  });

  it('reads a file synchronously, and names where a short file ends', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'st-meta-'));
    t.after(() => {
      rmSync(dir, { recursive: true, force: true });
    });
    const { bytes, plain } = table(6);
    const file = join(dir, 'table');
    writeFileSync(file, bytes);
    const source = await FileSource.open(file);
    try {
      const cache = new MetadataCache(new BoundedReader(source), makeDecompressor('gzip'));
      let pos = 0;
      for (const want of plain) {
        const blk = await cache.get(pos, bytes.length, 'test table');
        assert.ok(blk.data.equals(want));
        pos = blk.next;
      }
      // The bound says the table goes on; the file says otherwise.
      const past = new MetadataCache(
        Object.assign(new BoundedReader(source), { limit: bytes.length + 100 }),
        makeDecompressor('gzip'),
      );
      await assert.rejects(
        past.get(bytes.length, bytes.length + 100, 'test table'),
        /file ends at byte \d+, \d+ bytes short/,
      );
    } finally {
      await source.close();
    }
  });
});
