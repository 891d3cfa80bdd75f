/**
 * Extended attributes of the files of a directory being packed. Node has
 * no API for them, so one python3 process per pack lists them: it is given
 * every path (bytes, NUL-separated) on stdin and answers with every
 * attribute of each, names and values as bytes, without following
 * symlinks.
 *
 * Chosen over @napi-rs/xattr 1.0.3 (measured here, Node 20): it takes paths
 * and names as JavaScript strings, so a name that is not UTF-8 cannot be
 * passed at all (its l*xattr calls on /proc/self/fd/N read the magic link
 * itself, not the file), and one attribute name that is not UTF-8 makes
 * its listing fail; it would also put a native binary per platform into
 * the package. Without python3 the pack is refused (SquashfsWriteError
 * 'unsupported'), so the caller uses mksquashfs instead.
 */
import { spawn } from 'node:child_process';
import { SquashfsWriteError } from './errors.js';
import type { Xattr } from './xattr-read.js';

const SCRIPT = `
import os, sys, errno, struct
out = []
for p in sys.stdin.buffer.read().split(b'\\0')[:-1]:
    try:
        names = os.listxattr(p, follow_symlinks=False)
    except OSError as e:
        if e.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP):
            sys.stderr.write('%s: %s\\n' % (os.fsdecode(p), e.strerror)); sys.exit(3)
        names = []
    recs = []
    for n in names:
        try:
            v = os.getxattr(p, n, follow_symlinks=False)
        except OSError as e:
            sys.stderr.write('%s: %s: %s\\n' % (os.fsdecode(p), n, e.strerror)); sys.exit(3)
        k = os.fsencode(n)
        recs.append(struct.pack('<I', len(k)) + k + struct.pack('<I', len(v)) + v)
    out.append(struct.pack('<I', len(recs)))
    out.extend(recs)
sys.stdout.buffer.write(b''.join(out))
`;

/** The xattrs of each path (absolute, as bytes), in the order given. */
export async function listXattrs(paths: readonly Buffer[]): Promise<Xattr[][]> {
  const child = spawn('python3', ['-c', SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (b: Buffer) => out.push(b));
  child.stderr.on('data', (b: Buffer) => err.push(b));
  const done = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  // A failed write (python gone) shows as its exit status below.
  child.stdin.on('error', () => undefined);
  child.stdin.end(Buffer.concat(paths.flatMap((p) => [p, Buffer.alloc(1)])));
  let code: number | null;
  try {
    code = await done;
  } catch (e) {
    throw new SquashfsWriteError(
      'unsupported',
      `reading xattrs needs python3 (${(e as Error).message}): install it, or pack with mksquashfs`,
    );
  }
  if (code !== 0) {
    const msg = Buffer.concat(err).toString('utf8').trim();
    throw new SquashfsWriteError(
      code === 3 ? 'input-changed' : 'unsupported',
      `cannot read the xattrs of the directory being packed (python3 exit ${code}): ${msg}`,
    );
  }
  return parse(Buffer.concat(out), paths.length);
}

function parse(b: Buffer, count: number): Xattr[][] {
  const res: Xattr[][] = [];
  let pos = 0;
  const u32 = (): number => {
    if (pos + 4 > b.length) throw new SquashfsWriteError('unsupported', 'xattr listing cut short');
    const v = b.readUInt32LE(pos);
    pos += 4;
    return v;
  };
  const bytes = (n: number): Buffer => {
    if (pos + n > b.length) throw new SquashfsWriteError('unsupported', 'xattr listing cut short');
    const v = Buffer.from(b.subarray(pos, pos + n));
    pos += n;
    return v;
  };
  for (let i = 0; i < count; i++) {
    const n = u32();
    const xs: Xattr[] = [];
    for (let k = 0; k < n; k++) {
      const name = bytes(u32());
      xs.push({ name, value: bytes(u32()) });
    }
    res.push(xs);
  }
  return res;
}
