/**
 * Downloading one blob into a file, resumable: a partial file left by an
 * interrupted download is re-hashed and only the rest is asked for, with an
 * HTTP range request. A server that ignores the range (200 instead of 206)
 * sends the whole blob, and the file starts over. Every byte is hashed; the
 * file is kept when the transfer breaks off (the next run resumes it) and
 * removed when its content proves wrong.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, promises as fsp, constants as C } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { SquashtreeError, errorMessage } from '../errors.js';
import { digestMismatch } from './client-errors.js';
import { discardBody, type HttpResponse } from './http.js';

/** What a download needs of the registry client. */
export interface BlobReader {
  readonly where: string;
  /** GET the blob from byte `from` on (200: all of it, 206: the rest). */
  openBlob(digest: string, from: number): Promise<HttpResponse>;
  countBlobBytes(n: number): void;
  bodyFailure(e: unknown, res: HttpResponse): SquashtreeError;
}

export interface DownloadOptions {
  /** Keep and continue a partial `dest` instead of requiring a new file. */
  resume?: boolean;
  onProgress?: (received: number) => void;
  /**
   * Test hook: stop (as a broken connection would) once the file holds this
   * many bytes, so a test holds a download at a known byte count.
   */
  stopAt?: number;
}

export interface DownloadResult {
  /** Bytes that were in the file already and were kept. */
  resumedFrom: number;
  /** Bytes received now. */
  received: number;
}

/** SQUASHTREE_TEST_DOWNLOAD_STOP=N with the fault acknowledgement: the stopAt hook from outside. */
export function stopAtFromEnv(env: NodeJS.ProcessEnv = process.env): number | undefined {
  if (env.SQUASHTREE_TEST_FAULT_ACK !== 'kill-me-i-am-a-test') return undefined;
  const n = Number(env.SQUASHTREE_TEST_DOWNLOAD_STOP);
  return Number.isInteger(n) && n >= 0 ? n : undefined;
}

async function hashPrefix(path: string, n: number, hash: Hash): Promise<void> {
  if (n === 0) return;
  for await (const chunk of createReadStream(path, { start: 0, end: n - 1 })) {
    hash.update(chunk as Buffer);
  }
}

async function writeAll(fh: FileHandle, chunk: Uint8Array, at: number): Promise<void> {
  let off = 0;
  while (off < chunk.byteLength) {
    const { bytesWritten } = await fh.write(chunk, off, chunk.byteLength - off, at + off);
    off += bytesWritten;
  }
}

export async function downloadToFile(
  client: BlobReader,
  digest: string,
  size: number,
  dest: string,
  opts: DownloadOptions = {},
): Promise<DownloadResult> {
  const where = client.where;
  const flags = C.O_RDWR | C.O_CREAT | C.O_NOFOLLOW | (opts.resume ? 0 : C.O_EXCL);
  const fh = await fsp.open(dest, flags, 0o600);
  let bad = false;
  try {
    let have = (await fh.stat()).size;
    if (have > size) {
      await fh.truncate(0);
      have = 0;
    }
    let hash = createHash('sha256');
    await hashPrefix(dest, have, hash);
    if (have === size) {
      // A complete file from an earlier run: it is right or it goes.
      if (`sha256:${hash.digest('hex')}` === digest) return { resumedFrom: have, received: 0 };
      await fh.truncate(0);
      have = 0;
      hash = createHash('sha256');
    }
    const res = await client.openBlob(digest, have);
    if (have > 0) {
      const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
      if (res.status !== 206 || Number(range?.[1]) !== have) {
        // The server ignores ranges (or answered another one): start over with what it sends.
        if (res.status === 206) {
          await discardBody(res);
          await fh.truncate(0);
          return await downloadToFile(client, digest, size, dest, { ...opts, resume: true });
        }
        await fh.truncate(0);
        have = 0;
        hash = createHash('sha256');
      }
    }
    const resumedFrom = have;
    let n = have;
    try {
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        client.countBlobBytes(chunk.byteLength);
        if (n + chunk.byteLength > size) {
          res.body.destroy();
          bad = true;
          throw digestMismatch(`blob ${digest} (more than ${size} bytes)`, where);
        }
        let part: Buffer = chunk;
        if (opts.stopAt !== undefined && n + part.byteLength >= opts.stopAt) {
          part = part.subarray(0, Math.max(0, opts.stopAt - n));
        }
        hash.update(part);
        await writeAll(fh, part, n);
        n += part.byteLength;
        opts.onProgress?.(n);
        if (opts.stopAt !== undefined && n >= opts.stopAt && n < size) {
          res.body.destroy();
          throw new Error(`stopped by the test hook at byte ${n}`);
        }
      }
    } catch (e) {
      if (e instanceof SquashtreeError) throw e;
      await fh.sync();
      const why = client.bodyFailure(e, res);
      if (why.code === 'E_INTERRUPTED') throw why;
      throw new SquashtreeError(
        why.code === 'E_OCI_TIMEOUT' ? 'E_OCI_TIMEOUT' : 'E_OCI',
        `the download of blob ${digest} from ${where} broke off after ${n} of ${size} bytes: ${errorMessage(e)}`,
        {
          cause: e,
          hint: `nothing was applied; run the command again: it resumes from byte ${n}`,
        },
      );
    }
    if (n !== size) {
      await fh.sync();
      throw new SquashtreeError(
        'E_OCI',
        `blob ${digest} from ${where} ended after ${n} of ${size} bytes`,
        { hint: `nothing was applied; run the command again: it resumes from byte ${n}` },
      );
    }
    if (`sha256:${hash.digest('hex')}` !== digest) {
      bad = true;
      throw digestMismatch(`blob ${digest}`, where);
    }
    await fh.sync();
    return { resumedFrom, received: n - resumedFrom };
  } finally {
    await fh.close();
    // Content that proved wrong is not resumed from.
    if (bad) await fsp.rm(dest, { force: true });
  }
}
