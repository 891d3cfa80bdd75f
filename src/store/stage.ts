/**
 * Putting a new image into the store: it is made in a temp file of the
 * store (same filesystem, so the rename is atomic), checked by whoever made
 * it, then fsynced and renamed into place, and its record written. On any
 * failure the temp file goes; a crash leaves it to cleanupTemps.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { publishFile } from '../fs/durable.js';
import { imageFacts, type ImageFacts } from '../image/check.js';
import type { ImageRecord } from './manifest.js';
import { TEMP_PREFIX } from './store.js';

export function tempImagePath(store: string): string {
  return join(store, `${TEMP_PREFIX}${process.pid}-${randomBytes(4).toString('hex')}.sqfs`);
}

/** What the maker of a staged image hands back: its own result, and the facts if it took them. */
export interface Made<T> {
  result: T;
  /** Size and sha256 of the temp file, if the check read them already (else they are taken here). */
  facts?: ImageFacts;
}

/**
 * Stage IMAGE.file in STORE: `make(tmp)` writes and checks the temp file;
 * then it is published and its record returned with make's result.
 */
export async function stageImage<T>(
  store: string,
  image: Pick<ImageRecord, 'file' | 'kind' | 'compression' | 'blockSize'>,
  make: (tmp: string) => Promise<Made<T>>,
): Promise<{ record: ImageRecord; result: T }> {
  const tmp = tempImagePath(store);
  try {
    const made = await make(tmp);
    const facts = made.facts ?? (await imageFacts(tmp));
    await publishFile(tmp, join(store, image.file));
    const record: ImageRecord = {
      file: image.file,
      kind: image.kind,
      bytes: facts.bytes,
      sha256: facts.sha256,
      compression: image.compression,
      blockSize: image.blockSize,
      created: new Date().toISOString(),
    };
    return { record, result: made.result };
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw e;
  }
}
