import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { Buffer } from 'node:buffer';

const SMALL = 4 << 20;

export async function sha256File(path: string | Buffer): Promise<string> {
  const h = createHash('sha256');
  const fh = await fsp.open(path, 'r');
  try {
    const { size } = await fh.stat();
    // One read for small files; one reused buffer for large ones (a stream
    // allocates a buffer per chunk: 100 MiB of garbage for a 100 MiB image).
    if (size <= SMALL) {
      h.update(await fh.readFile());
      return h.digest('hex');
    }
    const buf = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      h.update(buf.subarray(0, bytesRead));
    }
    return h.digest('hex');
  } finally {
    await fh.close();
  }
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
