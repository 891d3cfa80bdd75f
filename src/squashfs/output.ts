/**
 * Where the writer puts an image: a new file (created exclusively, never an
 * existing one) or a growable buffer in memory, so that round trips run as
 * any user without a filesystem to mount. Writes are positional; the image
 * can be read back through a ByteSource to be checked.
 */
import { promises as fsp } from 'node:fs';
import { BufferSource, FileSource, type ByteSource } from './source.js';

export interface ImageOutput {
  /** Called once before the first write. */
  open(): Promise<void>;
  /** All of buf at pos (a short write is an error, never taken for a whole one). */
  write(buf: Buffer, pos: number): Promise<void>;
  /** Done writing (files: closed). */
  close(): Promise<void>;
  /** Remove what this output created (after a failure); a no-op when it created nothing. */
  discard(): Promise<void>;
  /** The image written, to read it back (the caller closes the source). */
  source(): Promise<ByteSource>;
  /** For messages. */
  readonly name: string;
}

/** A file created with O_EXCL, mode 0644. */
export class FileOutput implements ImageOutput {
  private fh: fsp.FileHandle | null = null;
  private created = false;

  constructor(readonly path: string) {}

  get name(): string {
    return this.path;
  }

  async open(): Promise<void> {
    this.fh = await fsp.open(this.path, 'wx', 0o644);
    this.created = true;
  }

  async write(buf: Buffer, pos: number): Promise<void> {
    const fh = this.fh;
    if (!fh) throw new Error(`${this.path} is not open for writing`);
    // write(2) may write less than asked when the disk fills (the next call then fails with ENOSPC).
    let done = 0;
    while (done < buf.length) {
      const { bytesWritten } = await fh.write(buf, done, buf.length - done, pos + done);
      if (bytesWritten <= 0) throw new Error(`write at ${pos + done} made no progress`);
      done += bytesWritten;
    }
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = null;
    if (fh) await fh.close();
  }

  async discard(): Promise<void> {
    await this.close();
    // Only a file this output created is removed (an existing one made open fail).
    if (this.created) await fsp.rm(this.path, { force: true });
    this.created = false;
  }

  source(): Promise<ByteSource> {
    return FileSource.open(this.path);
  }
}

/** An image in memory; `bytes` is what was written. */
export class BufferOutput implements ImageOutput {
  readonly name = 'buffer';
  private buf = Buffer.alloc(0);
  private size = 0;

  get bytes(): Buffer {
    return this.buf.subarray(0, this.size);
  }

  open(): Promise<void> {
    this.buf = Buffer.alloc(1 << 16);
    this.size = 0;
    return Promise.resolve();
  }

  write(data: Buffer, pos: number): Promise<void> {
    const end = pos + data.length;
    if (end > this.buf.length) {
      const grown = Buffer.alloc(Math.max(end, this.buf.length * 2));
      this.buf.copy(grown, 0, 0, this.size);
      this.buf = grown;
    }
    data.copy(this.buf, pos);
    this.size = Math.max(this.size, end);
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  discard(): Promise<void> {
    this.buf = Buffer.alloc(0);
    this.size = 0;
    return Promise.resolve();
  }

  source(): Promise<ByteSource> {
    return Promise.resolve(new BufferSource(this.bytes));
  }
}
