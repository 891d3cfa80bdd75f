/**
 * Build test trees from object literals, and compare two trees the way the
 * issue asks: types, modes, owners, sizes, content hashes, symlinks, hard
 * links, xattrs, empty dirs, odd names (through compareTrees plus an xattr
 * dump made by python3, since Node has no xattr API).
 */
import { promises as fsp } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { compareTrees } from '../../src/image/compare.js';

/** n bytes that do not compress (xorshift32 from seed): data blocks stored as they are. */
export function noise(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

export type Node =
  | string
  | Buffer
  | {
      file: string | Buffer;
      mode?: number;
      uid?: number;
      gid?: number;
      xattrs?: Record<string, string>;
    }
  | { symlink: string }
  | { hardlink: string }
  | { fifo: true }
  | { dir: Spec; mode?: number; xattrs?: Record<string, string> };

export type Spec = Record<string, Node>;

export function setXattr(path: string, name: string, value: string): void {
  execFileSync('python3', [
    '-c',
    'import os,sys; os.setxattr(os.fsencode(sys.argv[1]), sys.argv[2], sys.argv[3].encode(), follow_symlinks=False)',
    path,
    name,
    value,
  ]);
}

/** Write `spec` below `root` (names may be binary strings: one char per byte). */
export async function buildTree(root: string | Buffer, spec: Spec): Promise<void> {
  const base = typeof root === 'string' ? Buffer.from(root) : root;
  await fsp.mkdir(base, { recursive: true });
  const links: [Buffer, string][] = [];
  for (const [name, node] of Object.entries(spec)) {
    const p = Buffer.concat([base, Buffer.from('/'), Buffer.from(name, 'latin1')]);
    if (typeof node === 'string' || Buffer.isBuffer(node)) {
      await fsp.writeFile(p, node);
    } else if ('file' in node) {
      await fsp.writeFile(p, node.file);
      if (node.mode !== undefined) await fsp.chmod(p, node.mode);
      if (node.uid !== undefined) await fsp.lchown(p, node.uid, node.gid ?? node.uid);
      for (const [k, v] of Object.entries(node.xattrs ?? {})) setXattr(p.toString(), k, v);
    } else if ('symlink' in node) {
      await fsp.symlink(node.symlink, p);
    } else if ('hardlink' in node) {
      links.push([p, node.hardlink]);
    } else if ('fifo' in node) {
      execFileSync('mkfifo', [p.toString()]);
    } else {
      await buildTree(p, node.dir);
      if (node.mode !== undefined) await fsp.chmod(p, node.mode);
      for (const [k, v] of Object.entries(node.xattrs ?? {})) setXattr(p.toString(), k, v);
    }
  }
  for (const [p, target] of links) await fsp.link(join(base.toString(), target), p);
}

/** user.* and security.* xattrs of every entry, keyed by relative path. */
export function dumpXattrs(root: string): Record<string, string> {
  const script = `
import os, sys, json
root = os.fsencode(sys.argv[1]); out = {}
for d, dirs, files in os.walk(root):
    for n in [b''] + dirs + files:
        p = os.path.join(d, n) if n else d
        try:
            names = sorted(k for k in os.listxattr(p, follow_symlinks=False) if not k.startswith('trusted.overlay.'))
        except OSError as e:
            if e.errno != 95: raise  # an image without an xattr table answers EOPNOTSUPP
            names = []
        if names:
            rel = os.path.relpath(p, root).decode('latin1')
            out[rel] = ';'.join(k + '=' + os.getxattr(p, k, follow_symlinks=False).hex() for k in names)
print(json.dumps(out, sort_keys=True))
`;
  return JSON.parse(execFileSync('python3', ['-c', script, root], { encoding: 'utf8' })) as Record<
    string,
    string
  >;
}

/** Assert that two trees are the same in every way the tool promises to keep. */
export async function assertSameTree(
  expected: string,
  actual: string,
  what = '',
  opts: { mtime?: boolean; live?: boolean } = {},
): Promise<void> {
  const r = await compareTrees(expected, actual, {
    contents: true,
    limit: 10,
    ignoreMtime: opts.mtime !== true,
    ignoreHardlinks: opts.live === true,
  });
  assert.deepEqual(r.differences, [], `${what}: trees differ: ${JSON.stringify(r.differences)}`);
  assert.deepEqual(dumpXattrs(actual), dumpXattrs(expected), `${what}: xattrs differ`);
}
