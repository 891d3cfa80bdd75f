/**
 * Extended attributes of the files of a directory being packed. Node has
 * no API for them. Two readers, both without following symlinks:
 *
 *   - @napi-rs/xattr (prebuilt N-API binaries; 2.7 us a path measured
 *     here), for every path and name that is UTF-8: it takes both as
 *     JavaScript strings, and one attribute name that is not UTF-8 makes its
 *     listing fail;
 *   - python3, run once per pack for the paths the first cannot take (or
 *     all, where its binary does not load): given the paths as bytes on
 *     stdin, it answers with names and values as bytes. Its start-up costs
 *     60-120 ms here, which is most of packing a small layer, so it is the
 *     fallback, not the rule.
 *
 * With neither, the pack is refused (SquashfsWriteError 'unsupported') and
 * the caller uses mksquashfs.
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
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

interface NativeXattr {
  listAttributesSync(path: string): string[];
  getAttributeSync(path: string, name: string): Buffer | null;
}

let native: NativeXattr | null | undefined;

function loadNative(): NativeXattr | null {
  if (native === undefined) {
    try {
      // Required at run time (a native binary cannot be bundled; see scripts/bundle.mjs).
      native = createRequire(import.meta.url)('@napi-rs/xattr') as NativeXattr;
    } catch {
      native = null;
    }
  }
  return native;
}

export interface XattrListOptions {
  /** false: python3 for every path (tests of the fallback). */
  native?: boolean;
  /** The names whose values are wanted (default all): the others are not read. */
  want?: (name: Buffer) => boolean;
}

/** The xattrs of each path (as bytes), in the order given. */
export async function listXattrs(
  paths: readonly Buffer[],
  opts: XattrListOptions = {},
): Promise<Xattr[][]> {
  const lib = opts.native === false ? null : loadNative();
  const want = opts.want ?? ((): boolean => true);
  const res: Xattr[][] = [];
  const rest: number[] = [];
  for (let i = 0; i < paths.length; i++) {
    const p = paths[i] ?? Buffer.alloc(0);
    const text = p.toString('utf8');
    const xs = lib && Buffer.from(text, 'utf8').equals(p) ? nativeList(lib, text, want) : null;
    if (xs) res.push(xs);
    else {
      res.push([]);
      rest.push(i);
    }
  }
  if (rest.length > 0) {
    const got = await pythonList(rest.map((i) => paths[i] ?? Buffer.alloc(0)));
    rest.forEach((i, k) => {
      res[i] = (got[k] ?? []).filter((x) => want(x.name));
    });
  }
  return res;
}

/** A path's xattrs through the binary; null when it cannot say (a name not UTF-8, an error). */
function nativeList(
  lib: NativeXattr,
  path: string,
  want: (name: Buffer) => boolean,
): Xattr[] | null {
  try {
    const names = lib.listAttributesSync(path);
    const out: Xattr[] = [];
    for (const n of names) {
      const name = Buffer.from(n, 'utf8');
      if (!want(name)) continue;
      const value = lib.getAttributeSync(path, n);
      // Gone between the two calls: python3 reports it as it finds it.
      if (value === null) return null;
      out.push({ name, value: Buffer.from(value) });
    }
    return out;
  } catch {
    return null;
  }
}

async function pythonList(paths: readonly Buffer[]): Promise<Xattr[][]> {
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
