/**
 * The awkward tree of squashfs-reader.test.ts (every inode type in basic and
 * extended form, sparse files, hard links, xattrs with out-of-line values,
 * odd names), built with python3 for what node cannot make, and mksquashfs.
 */
import { spawnSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { noise } from './tree.js';

export function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Buffer {
  const r = spawnSync(cmd, args, {
    env: { ...process.env, ...env },
    maxBuffer: 1 << 30,
  });
  if (r.status !== 0) {
    throw new Error(
      `${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr.toString()}${r.error ? String(r.error) : ''}`,
    );
  }
  return r.stdout;
}

export function mksquashfs(src: string, out: string, args: string[]): void {
  run('mksquashfs', [src, out, '-noappend', '-quiet', '-no-progress', ...args]);
}

/** Python builds what node:fs cannot: non-UTF-8 names, sockets, device nodes, xattrs. */
export const PY_BUILD = String.raw`
import os, socket, stat, sys
root = os.fsencode(sys.argv[1])
def p(*parts): return os.path.join(root, *parts)
def write(path, data):
    with open(path, 'wb') as f: f.write(data)
def sock(path):
    s = socket.socket(socket.AF_UNIX); s.bind(path); s.close()

write(p(b'bad\xff\xfename'), b'not utf-8')
os.mkdir(p(b'dir\xc3('))
write(p(b'dir\xc3(', b'inner'), b'inner file')
write(p(b'new\nline'), b'newline in the name')
write(p(b'name with spaces'), b'spaces')
write(p('\u00fcn\u00efc\u00f8d\u00e9'.encode()), b'utf-8 name')
write(p(b'n' * 255), b'longest name')

os.mkdir(p(b'special'))
os.mknod(p(b'special', b'chr'), stat.S_IFCHR | 0o644, os.makedev(1, 3))
os.mknod(p(b'special', b'blk'), stat.S_IFBLK | 0o660, os.makedev(259, 70000))
os.mknod(p(b'special', b'chrx'), stat.S_IFCHR | 0o600, os.makedev(4, 64))
os.mknod(p(b'special', b'blkx'), stat.S_IFBLK | 0o600, os.makedev(8, 1))
os.mkfifo(p(b'special', b'fifo'))
os.mkfifo(p(b'special', b'fifox'))
sock(p(b'special', b'sock'))
sock(p(b'special', b'sockx'))
for n in (b'chrx', b'blkx', b'fifox', b'sockx'):
    os.setxattr(p(b'special', n), 'trusted.kind', n, follow_symlinks=False)

os.mkdir(p(b'xattrs'))
big = b'v' * 3000
for n in (b'xa', b'xb'):
    write(p(b'xattrs', n), n)
    os.setxattr(p(b'xattrs', n), 'user.bin', b'\xff\x00bin\n')
    os.setxattr(p(b'xattrs', n), 'user.big', big)
    os.setxattr(p(b'xattrs', n), 'user.empty', b'')
    os.setxattr(p(b'xattrs', n), 'trusted.t', b'trusted')
write(p(b'xattrs', b'many'), b'many')
for i in range(25):
    os.setxattr(p(b'xattrs', b'many'), 'user.k%02d' % i, (b'value%02d-' % i) * 10)
for i in range(4):
    write(p(b'xattrs', b'big%d' % i), b'big')
    os.setxattr(p(b'xattrs', b'big%d' % i), 'user.big', (b'%d' % i) * 3000)
os.setxattr(p(b'xattrs'), 'user.dir', b'on a directory')
os.symlink(b'xa', p(b'xattrs', b'lx'))
os.setxattr(p(b'xattrs', b'lx'), 'trusted.link', b'on a symlink', follow_symlinks=False)
`;

/** Every entry's xattrs, sorted, base64: { path: [[name, value], ...] }. */
export const PY_XATTRS = String.raw`
import base64, json, os, sys
root = os.fsencode(sys.argv[1])
out = {}
def visit(rel):
    path = os.path.join(root, rel) if rel else root
    names = sorted(os.listxattr(path, follow_symlinks=False))
    if names:
        out[base64.b64encode(rel).decode()] = [
            [base64.b64encode(os.fsencode(n)).decode(),
             base64.b64encode(os.getxattr(path, n, follow_symlinks=False)).decode()]
            for n in names]
    if os.path.isdir(path) and not os.path.islink(path):
        for n in os.listdir(path):
            visit(os.path.join(rel, n) if rel else n)
visit(b'')
print(json.dumps(out))
`;

export async function buildTree(root: string): Promise<void> {
  await fsp.mkdir(root, { recursive: true });
  const w = (rel: string, data: string | Buffer): Promise<void> =>
    fsp.writeFile(join(root, rel), data);
  await fsp.mkdir(join(root, 'a/b/c/d/e'), { recursive: true });
  await w('a/b/c/d/e/deep', 'deep file\n');
  await w('a/top', 'top\n');
  await fsp.mkdir(join(root, 'a/empty-dir'));
  // Empty files.
  for (const n of ['empty1', 'empty2', 'a/empty3']) await w(n, '');
  // Sizes around every block size used here.
  await fsp.mkdir(join(root, 'sizes'));
  for (const size of [1, 4095, 4096, 4097, 8192, 131071, 131072, 131073, 1048576, 1048577]) {
    await w(`sizes/random-${size}`, noise(size, size));
    await w(`sizes/text-${size}`, Buffer.alloc(size, `line of text ${size}\n`));
  }
  await w('sizes/random-3M', noise(3 << 20, 7)); // incompressible: blocks stored uncompressed
  // Sparse: holes at the start, middle and end (truncate), and a wholly sparse file.
  const sparse = join(root, 'sparse');
  await fsp.mkdir(sparse);
  const fh = await fsp.open(join(sparse, 'holes'), 'w');
  await fh.write(Buffer.alloc(5000, 'data'), 0, 5000, 600_000);
  await fh.write(Buffer.alloc(100, 'more'), 0, 100, 1_500_000);
  await fh.truncate(2_500_000);
  await fh.close();
  run('truncate', ['-s', '3M', join(sparse, 'all-hole')]);
  // Many small files: fragments.
  await fsp.mkdir(join(root, 'small'));
  for (let i = 0; i < 200; i++) {
    await w(`small/f${String(i).padStart(3, '0')}`, noise((i * 37) % 3000, i + 1));
  }
  // A directory of 400 entries with long names: several directory headers and
  // metadata blocks, an extended directory inode with an index.
  await fsp.mkdir(join(root, 'bigdir'));
  for (let i = 0; i < 400; i++) {
    const name = `entry-with-a-fairly-long-name-to-fill-blocks-${String(i).padStart(4, '0')}`;
    if (i % 50 === 0) await fsp.mkdir(join(root, 'bigdir', name));
    else await w(`bigdir/${name}`, `${i}\n`);
  }
  // Symlinks, short and long (4000 bytes), dangling and absolute.
  await fsp.symlink('a/top', join(root, 'link-short'));
  await fsp.symlink(`${'x/'.repeat(1999)}yy`, join(root, 'link-long'));
  await fsp.symlink('/nonexistent/target', join(root, 'link-abs'));
  // Hard links, within one directory and across directories.
  await w('hard1', 'hard linked\n');
  await fsp.link(join(root, 'hard1'), join(root, 'hard2'));
  await fsp.link(join(root, 'hard1'), join(root, 'a/hard3'));
  // Modes and owners.
  await w('setuid', '#!/bin/sh\n');
  await fsp.chmod(join(root, 'setuid'), 0o4755);
  await fsp.mkdir(join(root, 'sticky'));
  await fsp.chmod(join(root, 'sticky'), 0o1777);
  await fsp.mkdir(join(root, 'setgid'));
  await fsp.chmod(join(root, 'setgid'), 0o2750);
  await w('owned', 'owned\n');
  await fsp.chown(join(root, 'owned'), 1000, 1001);
  await fsp.chown(join(root, 'a/top'), 65534, 100);
  await fsp.chown(join(root, 'setgid'), 4000000000, 4000000001);
  await fsp.lchown(join(root, 'link-short'), 123, 456);
  await w('noperm', 'no permissions\n');
  await fsp.chmod(join(root, 'noperm'), 0);
  run('python3', ['-c', PY_BUILD, root]);
  // Fixed mtimes on a few entries (the rest keep the current time).
  await fsp.utimes(join(root, 'a/top'), 86400, 1_000_000_000);
  await fsp.lutimes(join(root, 'link-short'), 86400, 1_500_000_000);
}
