/**
 * squashtree inspect, run from the built CLI as an unprivileged user
 * (setpriv to 65534:65534) on an image made by mksquashfs: listings, the
 * recursive listing, --stat, --cat (byte for byte), --json, names that are
 * not UTF-8, and the errors a user meets. Root builds the image (device
 * nodes, owners); everything after that runs as nobody.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { asNobody } from '../helpers/cli.js';

const isRoot = process.geteuid?.() === 0;

function sh(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
}

interface JsonEntry {
  path: string;
  pathBase64: string;
  type: string;
  modeString: string;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  target?: string;
  rdev?: { major: number; minor: number };
  xattrs: { name: string; value: string; valueBase64: string }[];
}

describe('squashtree inspect (as an unprivileged user)', { skip: !isRoot && 'needs root' }, () => {
  let dir = '';
  let image = '';
  let src = '';
  let binary = Buffer.alloc(0);

  before(async () => {
    dir = await fsp.mkdtemp(join(tmpdir(), 'squashtree-inspect-'));
    src = join(dir, 'src');
    await fsp.mkdir(join(src, 'sub/deeper'), { recursive: true });
    await fsp.writeFile(join(src, 'sub/deeper/file'), 'deep\n');
    await fsp.writeFile(join(src, 'sub/one'), '1\n');
    await fsp.writeFile(join(src, 'text'), 'hello, world\n');
    binary = Buffer.alloc(300_000);
    for (let i = 0; i < binary.length; i++) binary[i] = (i * 7919 + (i >> 8)) & 0xff;
    await fsp.writeFile(join(src, 'binary'), binary);
    await fsp.writeFile(join(src, 'name with spaces'), 'spaces\n');
    await fsp.writeFile(join(src, 'owned'), 'owned\n');
    await fsp.chown(join(src, 'owned'), 1234, 5678);
    await fsp.chmod(join(src, 'owned'), 0o640);
    await fsp.symlink('sub/one', join(src, 'link'));
    await fsp.link(join(src, 'text'), join(src, 'hardlink'));
    sh('python3', [
      '-c',
      `import os, sys
r = os.fsencode(sys.argv[1])
open(os.path.join(r, b'bad\\xffname'), 'wb').write(b'not utf-8\\n')
open(os.path.join(r, b'new\\nline'), 'wb').write(b'newline\\n')
os.mkfifo(os.path.join(r, b'fifo'))
os.mknod(os.path.join(r, b'null'), 0o20666, os.makedev(1, 3))
os.chmod(os.path.join(r, b'null'), 0o666)
os.setxattr(os.path.join(r, b'text'), 'user.note', b'hello')
os.setxattr(os.path.join(r, b'binary'), 'user.raw', b'\\xff\\x00')
`,
      src,
    ]);
    image = join(dir, 'image.sqfs');
    sh('mksquashfs', [src, image, '-noappend', '-quiet', '-no-progress']);
    await fsp.chmod(dir, 0o755);
    await fsp.chmod(image, 0o644);
  });
  after(async () => {
    if (dir) await fsp.rm(dir, { recursive: true, force: true });
  });

  it('lists the root like ls -l: modes, owners, sizes, targets, xattrs, escaped names', async () => {
    const r = await asNobody(['inspect', image], dir);
    assert.equal(r.status, 0, r.stderr);
    const text = r.stdout.toString('utf8');
    const lines = text.trimEnd().split('\n');
    const line = (name: string): string => {
      const l = lines.find((x) => x.endsWith(` ${name}`) || x.includes(` ${name} -> `));
      assert.ok(l, `no line for ${name} in\n${text}`);
      return l;
    };
    assert.match(line('text'), /^-rw-r--r-- 2 0\/0 +13 \d{4}-\d\d-\d\d \d\d:\d\d text$/);
    assert.match(line('owned'), /^-rw-r----- 1 1234\/5678 +6 /);
    assert.match(line('sub'), /^drwxr-xr-x 3 0\/0 /);
    assert.match(line('link'), /^lrwxrwxrwx 1 0\/0 +7 .* link -> sub\/one$/);
    assert.match(line('null'), /^crw-rw-rw- 1 0\/0 +1, 3 /);
    assert.match(line('fifo'), /^prw-r--r-- /);
    assert.match(line('name with spaces'), /^-rw-r--r-- /);
    line('bad\\xffname');
    line('new\\nline');
    const after = lines[lines.indexOf(line('text')) + 1];
    assert.equal(after, '    user.note=hello');
    assert.ok(lines.includes('    user.raw=\\xff\\x00'), text);
    // Not recursive: nothing below sub.
    assert.ok(!text.includes('deeper'));
  });

  it('lists a subtree recursively, with paths relative to PATH', async () => {
    const all = await asNobody(['inspect', image, '--recursive'], dir);
    assert.equal(all.status, 0, all.stderr);
    const names = all.stdout
      .toString()
      .trimEnd()
      .split('\n')
      .filter((l) => !l.startsWith('    '))
      .map((l) => l.replace(/ -> .*$/, '').replace(/^.* \d\d:\d\d /, ''));
    assert.ok(names.includes('sub/deeper/file'), names.join('\n'));
    assert.equal(names.length, 14);
    const sub = await asNobody(['inspect', image, '/sub', '-r'], dir);
    assert.equal(sub.status, 0, sub.stderr);
    const subNames = sub.stdout
      .toString()
      .trimEnd()
      .split('\n')
      .map((l) => l.replace(/^.* \d\d:\d\d /, ''));
    assert.deepEqual(subNames, ['deeper', 'deeper/file', 'one']);
  });

  it('gives data with --json, exact names in base64', async () => {
    const r = await asNobody(['--json', 'inspect', image, '--recursive'], dir);
    assert.equal(r.status, 0, r.stderr);
    const data = JSON.parse(r.stdout.toString()) as {
      action: string;
      info: { compression: string; blockSize: number };
      entries: JsonEntry[];
    };
    assert.equal(data.action, 'list');
    assert.equal(data.info.compression, 'gzip');
    assert.equal(data.info.blockSize, 131072);
    const raw = data.entries.map((e) => Buffer.from(e.pathBase64, 'base64').toString('latin1'));
    assert.ok(raw.includes('bad\xffname'));
    assert.ok(raw.includes('new\nline'));
    const bin = data.entries.find((e) => e.path === 'binary');
    assert.equal(bin?.size, binary.length);
    assert.deepEqual(bin?.xattrs, [{ name: 'user.raw', value: '\\xff\\x00', valueBase64: '/wA=' }]);
    const nul = data.entries.find((e) => e.path === 'null');
    assert.deepEqual(nul?.rdev, { major: 1, minor: 3 });
    const link = data.entries.find((e) => e.path === 'link');
    assert.equal(link?.target, 'sub/one');
    const hard = data.entries.find((e) => e.path === 'hardlink');
    assert.equal(hard?.nlink, 2);
  });

  it('describes one entry with --stat', async () => {
    const r = await asNobody(['inspect', image, 'binary', '--stat'], dir);
    assert.equal(r.status, 0, r.stderr);
    const text = r.stdout.toString();
    assert.match(text, /Type: regular file \(extended inode\)/);
    assert.match(text, /Mode: 0644 \(-rw-r--r--\)/);
    assert.match(text, /Size: 300000/);
    assert.match(text, /Blocks: 3 from byte \d+\n/); // tail ends stay out of fragments by default
    assert.match(text, /user\.raw=\\xff\\x00/);
    assert.match(text, /Image: .*gzip, block size 131072/);
    const root = await asNobody(['--json', 'inspect', image, '/', '--stat'], dir);
    const data = JSON.parse(root.stdout.toString()) as { stat: { type: string; entries: number } };
    assert.equal(data.stat.type, 'dir');
    assert.equal(data.stat.entries, 11);
    const dev = await asNobody(['inspect', image, 'null', '--stat'], dir);
    assert.match(dev.stdout.toString(), /Device: 1, 3/);
  });

  it('writes a file byte for byte with --cat, also for a name given with escapes', async () => {
    const r = await asNobody(['inspect', image, 'binary', '--cat'], dir);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(r.stdout.equals(binary), 'binary content differs');
    const bad = await asNobody(['inspect', image, 'bad\\xffname', '--cat'], dir);
    assert.equal(bad.stdout.toString(), 'not utf-8\n');
    const nl = await asNobody(['inspect', image, 'new\\nline', '--cat'], dir);
    assert.equal(nl.stdout.toString(), 'newline\n');
    const spaces = await asNobody(['inspect', image, '/name with spaces', '--cat'], dir);
    assert.equal(spaces.stdout.toString(), 'spaces\n');
  });

  it('fails with a code and a hint, never a stack trace', async () => {
    const expectError = async (
      args: string[],
      status: number,
      code: string,
      message: RegExp,
    ): Promise<void> => {
      const r = await asNobody(args, dir);
      assert.equal(r.status, status, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`error ${code}: `));
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stderr, /internal error|\n\s+at /);
    };
    await expectError(['inspect', image, '/nope'], 2, 'E_USAGE', /no such file or directory/);
    await expectError(['inspect', image, 'text/x'], 2, 'E_USAGE', /not a directory/);
    await expectError(['inspect', image, 'sub', '--cat'], 2, 'E_USAGE', /not a regular file/);
    await expectError(['--json', 'inspect', image, 'text', '--cat'], 2, 'E_USAGE', /--json/);
    await expectError(['inspect', image, '-r', '--stat'], 2, 'E_USAGE', /do not go together/);
    await expectError(['inspect', join(dir, 'missing.sqfs')], 1, 'E_IMAGE_MISSING', /ENOENT/);
    // A root-only image is unreadable to this user: the CLI really runs unprivileged.
    const secret = join(dir, 'secret.sqfs');
    await fsp.copyFile(image, secret);
    await fsp.chmod(secret, 0o600);
    await expectError(['inspect', secret], 1, 'E_IMAGE_MISSING', /EACCES/);
    const notImage = join(dir, 'not-an-image');
    await fsp.writeFile(notImage, 'just text\n'.repeat(100));
    await fsp.chmod(notImage, 0o644);
    await expectError(['inspect', notImage], 1, 'E_IMAGE_CORRUPT', /bad magic/);
    // Damage the inode table: a format error naming the structure.
    const bytes = await fsp.readFile(image);
    const inodeStart = Number(bytes.readBigUInt64LE(64));
    const dirStart = Number(bytes.readBigUInt64LE(72));
    bytes.fill(0xa5, inodeStart, dirStart);
    const damaged = join(dir, 'damaged.sqfs');
    await fsp.writeFile(damaged, bytes);
    await fsp.chmod(damaged, 0o644);
    await expectError(['inspect', damaged, '-r'], 1, 'E_IMAGE_CORRUPT', /not a valid SquashFS/);
  });
});
