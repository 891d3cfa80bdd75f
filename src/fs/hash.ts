import { createHash } from 'node:crypto';
import { createReadStream, promises as fsp } from 'node:fs';
import type { Buffer } from 'node:buffer';

const SMALL = 4 << 20;

export async function sha256File(path: string | Buffer): Promise<string> {
  const h = createHash('sha256');
  // One read for small files: a stream per file costs more than the hashing.
  const fh = await fsp.open(path, 'r');
  try {
    const { size } = await fh.stat();
    if (size <= SMALL) {
      h.update(await fh.readFile());
      return h.digest('hex');
    }
  } finally {
    await fh.close();
  }
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    h.update(chunk as Buffer);
  }
  return h.digest('hex');
}

/** Run `fn` over items with at most `limit` in flight; results keep input order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
