/**
 * Hostile input: damaged images in the store, images adopted with init
 * --from-image that carry overlay whiteouts, setuid binaries or device
 * nodes, and a few hundred malformed configs. Nothing may be deleted,
 * nothing may stay mounted, every refusal names what is wrong and how to go
 * on, and no input makes the CLI print a stack trace.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp, readFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { mountsBelow, needRoot, sandbox } from '../helpers/env.js';
import { BIN, cli, sqOk, type CliResult } from '../helpers/cli.js';
import { assertSameTree, buildTree, type Spec } from '../helpers/tree.js';
import { initTree, leftovers, SMALL, type TreeFixture } from '../helpers/setup.js';
import { assertNoStack, loopsFor, treeStatus } from '../helpers/reliability.js';
import { parseConfig } from '../../src/config/load.js';
import { Random } from '../../src/corpus/random.js';

function textBlob(lines: number, tag: string): string {
  let s = '';
  for (let i = 0; i < lines; i++) s += `${tag} line ${i} ${'abcdefghij'.repeat(1 + (i % 7))}\n`;
  return s;
}

const BASE: Spec = {
  ...SMALL,
  'big.txt': textBlob(12_000, 'base'),
  docs: { dir: { 'notes.txt': textBlob(500, 'notes'), 'empty.txt': '' } },
};

interface Damage {
  name: string;
  /** Damage the image file in place (or replace/remove it). */
  apply: (path: string) => Promise<void>;
  /** Can the manifest's sha256 be updated to match (is there a file left)? */
  deep: boolean;
}

async function u64(path: string, offset: number): Promise<number> {
  const fh = await fsp.open(path, 'r');
  try {
    const b = Buffer.alloc(8);
    await fh.read(b, 0, 8, offset);
    return Number(b.readBigUInt64LE(0));
  } finally {
    await fh.close();
  }
}

async function flip(path: string, offset: number, len: number): Promise<void> {
  const fh = await fsp.open(path, 'r+');
  try {
    const b = Buffer.alloc(len);
    await fh.read(b, 0, len, offset);
    for (let i = 0; i < len; i++) b[i] = (b[i] ?? 0) ^ 0xff;
    await fh.write(b, 0, len, offset);
  } finally {
    await fh.close();
  }
}

// SquashFS 4.0 superblock: inode_table_start at 64, directory_table_start at 72; data blocks
// (compressed where that saves space) start right after the 96-byte superblock.
const DAMAGES: Damage[] = [
  {
    name: 'truncated to half',
    deep: true,
    apply: async (p) => {
      const st = await fsp.stat(p);
      await fsp.truncate(p, Math.floor(st.size / 2));
    },
  },
  {
    name: 'superblock zeroed',
    deep: true,
    apply: async (p) => {
      const fh = await fsp.open(p, 'r+');
      await fh.write(Buffer.alloc(96), 0, 96, 0);
      await fh.close();
    },
  },
  {
    name: 'bytes flipped in compressed data',
    deep: true,
    apply: async (p) => {
      const end = await u64(p, 64);
      for (const frac of [0.2, 0.5, 0.8]) await flip(p, 96 + Math.floor((end - 96) * frac), 16);
    },
  },
  {
    name: 'bytes flipped in metadata (inode and directory tables)',
    deep: true,
    apply: async (p) => {
      await flip(p, (await u64(p, 64)) + 6, 8);
      await flip(p, (await u64(p, 72)) + 6, 8);
    },
  },
  {
    name: 'not SquashFS at all',
    deep: true,
    apply: async (p) => {
      const st = await fsp.stat(p);
      await fsp.writeFile(p, randomBytes(st.size));
    },
  },
  {
    name: 'missing',
    deep: false,
    apply: (p) => fsp.rm(p),
  },
];

interface ManifestJson {
  images: Record<string, { sha256: string; bytes: number }>;
  generations: { generation: number; images: string[] }[];
  current: number;
}

async function readManifest(store: string): Promise<ManifestJson> {
  return JSON.parse(await fsp.readFile(join(store, 'manifest.json'), 'utf8')) as ManifestJson;
}

/** Make the manifest agree with the damaged file, so only unsquashfs, mount or a read can tell. */
async function blessInManifest(store: string, file: string): Promise<void> {
  const m = await readManifest(store);
  const data = await fsp.readFile(join(store, file));
  const rec = m.images[file];
  assert.ok(rec);
  rec.sha256 = createHash('sha256').update(data).digest('hex');
  rec.bytes = data.length;
  await fsp.writeFile(join(store, 'manifest.json'), `${JSON.stringify(m, null, 2)}\n`);
}

async function storeListing(store: string): Promise<string[]> {
  const out: string[] = [];
  for (const n of (await fsp.readdir(store)).sort()) out.push(n);
  return out;
}

interface VerifyJson {
  trees: {
    result?: { ok: boolean; images: { file: string; ok: boolean; problems: string[] }[] };
  }[];
}

/** Every file of the tree read back; the first error, or '' when all read and match the model. */
async function readEverything(tree: string, model: string): Promise<string> {
  try {
    const r = await assertSameTree(model, tree, 'read back').then(
      () => '',
      (e: unknown) => String(e).split('\n')[0] ?? 'differs',
    );
    return r;
  } catch (e) {
    return String(e);
  }
}

/** The module bin/squashtree.js takes main() from (the bundle, or dist/ before bundling). */
function mainModule(): string {
  const launcher = readFileSync(BIN, 'utf8');
  const m = /import\s*\{\s*main\s*\}\s*from\s*'([^']+)'/.exec(launcher);
  assert.ok(m?.[1], 'bin/squashtree.js imports main');
  return pathToFileURL(join(dirname(BIN), m[1])).href;
}

/** Runs main() once per argument list and records exit status and output, as the launcher would. */
const RUNNER = `
import fs from 'node:fs';
const [jobsFile, outFile, bundle] = process.argv.slice(1);
const { main } = await import(bundle);
const out = [];
const realOut = process.stdout.write.bind(process.stdout);
const realErr = process.stderr.write.bind(process.stderr);
for (const args of JSON.parse(fs.readFileSync(jobsFile, 'utf8'))) {
  let stdout = '';
  let stderr = '';
  process.stdout.write = (c) => { stdout += String(c); return true; };
  process.stderr.write = (c) => { stderr += String(c); return true; };
  let status;
  try {
    status = await main(args);
  } catch (e) {
    status = -1;
    stderr += 'internal error: main threw: ' + (e && e.stack ? e.stack : String(e));
  }
  process.stdout.write = realOut;
  process.stderr.write = realErr;
  out.push({ status, stdout, stderr });
}
fs.writeFileSync(outFile, JSON.stringify(out));
`;

describe('hostile input', { concurrency: false }, () => {
  it('corrupt images: start refuses naming the image, verify reports each, nothing is deleted', async (t) => {
    if (!needRoot(t)) return;
    const f: TreeFixture = await initTree(t, BASE);
    const gen1 = join(f.sb.dir, 'model-gen1');
    execFileSync('cp', ['-a', f.model, gen1]);
    await f.ok('start', 't');
    for (const root of [f.tree, f.model]) {
      await fsp.writeFile(join(root, 'layer.txt'), textBlob(6000, 'layer'));
      await fsp.rm(join(root, 'a.txt'));
    }
    await f.ok('stop', 't');
    const m = await readManifest(f.store);
    const cur = m.generations.find((g) => g.generation === m.current);
    const [base, layer] = cur?.images ?? [];
    assert.ok(base && layer, 'a base and a layer');
    const pristine = join(f.sb.dir, 'pristine');
    execFileSync('cp', ['-a', f.store, pristine]);
    const restore = async (): Promise<void> => {
      await fsp.rm(f.store, { recursive: true });
      execFileSync('cp', ['-a', pristine, f.store]);
    };
    const tried: string[] = [];
    const deepStarts: { what: string; r: CliResult }[] = [];
    const targets = [
      ...DAMAGES.map((d) => ({ d, file: layer })),
      { d: DAMAGES[0] as Damage, file: base },
      { d: DAMAGES[2] as Damage, file: base },
    ];
    for (const { d, file } of targets) {
      for (const deep of d.deep ? [false, true] : [false]) {
        const what = `${file}: ${d.name}${deep ? ' (manifest updated to match)' : ''}`;
        await restore();
        await d.apply(join(f.store, file));
        if (deep) await blessInManifest(f.store, file);
        const listing = await storeListing(f.store);

        const v = await f.run('verify', 't', '--json');
        assert.equal(v.status, 1, `${what}: verify exits 1\n${v.stdout}${v.stderr}`);
        assertNoStack(v, `${what}: verify`);
        const verdicts = (JSON.parse(v.stdout) as VerifyJson).trees[0]?.result?.images ?? [];
        const bad = verdicts.find((x) => x.file === file);
        assert.ok(
          bad && !bad.ok && bad.problems.length > 0,
          `${what}: verify names it: ${v.stdout}`,
        );
        const other = verdicts.find((x) => x.file !== file);
        assert.ok(other?.ok, `${what}: the intact image verifies`);

        const r = await f.run('start', 't');
        assertNoStack(r, `${what}: start`);
        let outcome: string;
        if (r.status === 0) {
          // Only the data can tell: reading it must fail, never hand out other bytes silently.
          const read = await readEverything(f.tree, f.model);
          outcome = `start mounted it; reading: ${read || 'all files intact'}`;
          assert.ok(deep, `${what}: start mounted an image whose sha256 does not match`);
          const stop = await f.run('stop', 't', '--on-stop', 'discard');
          assertNoStack(stop, `${what}: stop`);
          assert.equal(stop.status, 0, stop.stderr);
        } else {
          assert.equal(r.status, 1);
          assert.ok(r.stderr.includes(file), `${what}: the error names the image\n${r.stderr}`);
          outcome = `start refused: ${/^error .*$/m.exec(r.stderr)?.[0] ?? r.stderr}`;
          if (!deep) {
            assert.match(r.stderr, /E_IMAGE_(CORRUPT|MISSING)/, what);
            assert.match(r.stderr, /rollback/, `${what}: the hint says rollback`);
          } else deepStarts.push({ what, r });
        }
        assert.deepEqual(mountsBelow(f.sb.dir), [], `${what}: nothing stays mounted`);
        assert.deepEqual(loopsFor(f.sb.dir), [], `${what}: no loop stays attached`);
        assert.deepEqual(await storeListing(f.store), listing, `${what}: nothing was deleted`);
        tried.push(`${what}: verify: ${bad.problems[0] ?? ''}; ${outcome}`);
      }
    }
    // The way out that the errors name: roll back past a damaged layer.
    await restore();
    await DAMAGES[2]?.apply(join(f.store, layer));
    await f.ok('rollback', 't');
    await f.ok('start', 't');
    await assertSameTree(gen1, f.tree, 'rolled back past the damaged layer');
    await f.ok('stop', 't');
    assert.deepEqual(await leftovers(f.store), []);
    t.diagnostic(`${tried.length} corrupt images tried:\n${tried.join('\n')}`);
    t.diagnostic(`deep starts refused: ${deepStarts.length}`);
  });

  it('an image that passes its sha256 check but cannot be mounted: start names it and says rollback', async (t) => {
    if (!needRoot(t)) return;
    const f = await initTree(t, BASE);
    await f.ok('start', 't');
    await fsp.writeFile(join(f.tree, 'layer.txt'), textBlob(2000, 'layer'));
    await f.ok('stop', 't');
    const m = await readManifest(f.store);
    const layer = m.generations.find((g) => g.generation === m.current)?.images[1] ?? '';
    await DAMAGES[1]?.apply(join(f.store, layer));
    await blessInManifest(f.store, layer);
    const r = await f.run('start', 't');
    assert.equal(r.status, 1);
    assert.deepEqual(mountsBelow(f.sb.dir), []);
    assert.match(r.stderr, /^error E_IMAGE_CORRUPT: .*g\d+-layer\.sqfs/m, r.stderr);
    assert.match(r.stderr, /hint: .*rollback/, r.stderr);
  });

  it('init --from-image refuses an image with overlay whiteouts; nothing is created', async (t) => {
    if (!needRoot(t)) return;
    const sb = await sandbox(t);
    const ok = sqOk(sb);
    const run = (...a: string[]): Promise<CliResult> =>
      cli(['--config', sb.config, '--state-dir', sb.state, ...a]);
    const cases: [string, (src: string) => void][] = [
      [
        'a whiteout at the top',
        (src) => {
          execFileSync('mknod', [join(src, 'gone'), 'c', '0', '0']);
        },
      ],
      [
        'a whiteout deep down',
        (src) => {
          execFileSync('mkdir', ['-p', join(src, 'a', 'b', 'c')]);
          execFileSync('mknod', [join(src, 'a', 'b', 'c', 'gone'), 'c', '0', '0']);
        },
      ],
    ];
    await fsp.writeFile(sb.config, '# pre-existing\n');
    for (const [i, [what, make]] of cases.entries()) {
      const src = join(sb.dir, `src${i}`);
      await buildTree(src, { 'file.txt': 'content\n', sub: { dir: { x: 'x\n' } } });
      make(src);
      const img = join(sb.dir, `layer${i}.sqfs`);
      execFileSync('mksquashfs', [src, img, '-noappend', '-quiet', '-no-progress', '-xattrs']);
      const dir = join(sb.dir, `dir${i}`);
      await fsp.mkdir(dir);
      const store = join(sb.dir, `store${i}`);
      const r = await run('init', `w${i}`, '--dir', dir, '--from-image', img, '--store', store);
      assert.equal(r.status, 1, `${what}: ${r.stdout}${r.stderr}`);
      assertNoStack(r, what);
      assert.match(r.stderr, /E_IMAGE_UNSAFE/, what);
      assert.match(r.stderr, /whiteout/);
      assert.equal(
        await fsp.readFile(sb.config, 'utf8'),
        '# pre-existing\n',
        `${what}: config untouched`,
      );
      const left = await fsp.readdir(store).catch(() => [] as string[]);
      assert.deepEqual(left, [], `${what}: nothing in the store`);
      assert.deepEqual(await fsp.readdir(dir), [], `${what}: the dir is untouched`);
      assert.deepEqual(mountsBelow(sb.dir), []);
      assert.deepEqual(loopsFor(sb.dir), []);
    }
    // The same dir and name work with a clean image afterwards.
    const clean = join(sb.dir, 'clean');
    await buildTree(clean, { 'file.txt': 'content\n' });
    const img = join(sb.dir, 'clean.sqfs');
    execFileSync('mksquashfs', [clean, img, '-noappend', '-quiet', '-no-progress']);
    await ok(
      'init',
      'w0',
      '--dir',
      join(sb.dir, 'dir0'),
      '--from-image',
      img,
      '--store',
      join(sb.dir, 'store0'),
    );
  });

  it('init --from-image with a setuid binary and a device node: neither has any effect through the tree', async (t) => {
    if (!needRoot(t)) return;
    const sb = await sandbox(t);
    const ok = sqOk(sb);
    const src = join(sb.dir, 'src');
    await buildTree(src, { 'readme.txt': 'hostile image\n' });
    execFileSync('cp', ['/usr/bin/id', join(src, 'id-suid')]);
    await fsp.chmod(join(src, 'id-suid'), 0o4755);
    execFileSync('mknod', [join(src, 'null-dev'), 'c', '1', '3']);
    execFileSync('mknod', [join(src, 'disk-dev'), 'b', '7', '0']);
    const img = join(sb.dir, 'hostile.sqfs');
    execFileSync('mksquashfs', [src, img, '-noappend', '-quiet', '-no-progress']);
    const tree = join(sb.dir, 'tree');
    await fsp.mkdir(tree);
    await ok('init', 'h', '--dir', tree, '--from-image', img, '--store', sb.store('h'));
    await ok('start', 'h');
    await fsp.chmod(sb.dir, 0o755);
    const euid = execFileSync(
      'setpriv',
      ['--reuid=65534', '--regid=65534', '--clear-groups', join(tree, 'id-suid'), '-u'],
      { encoding: 'utf8' },
    ).trim();
    assert.equal(euid, '65534', 'the setuid bit must not take effect');
    await assert.rejects(fsp.open(join(tree, 'null-dev'), 'r'), /EACCES|EPERM/);
    await assert.rejects(fsp.open(join(tree, 'disk-dev'), 'r'), /EACCES|EPERM/);
    await ok('stop', 'h');
    assert.deepEqual(mountsBelow(sb.dir), []);
  });

  it('a few hundred malformed configs: exit 0 or 1 with a coded message, never a stack trace, nothing mounted', async (t) => {
    if (!needRoot(t)) return;
    const f = await initTree(t);
    const sbDir = f.sb.dir;
    const dirA = join(sbDir, 'cfg-a');
    const dirB = join(sbDir, 'cfg-b');
    await fsp.mkdir(dirA);
    await fsp.mkdir(dirB);
    const BASE_TOML = `# hostile config base
[defaults]
compression = "gzip"
keep = 2
exclude = ["distfiles", ".git"]

[tree.alpha]
dir = "${dirA}"
store = "${sbDir}/stores/alpha"
tmpfs-size = "16M"
block-size = "128K"

[tree.beta]
dir = "${dirB}"
store = "${sbDir}/stores/beta"
upper = "${sbDir}/upper-beta"
on-stop = "discard"
mount-options = ["noexec"]
compact-after = 4
`;
    const VALUES = [
      '""',
      '"/"',
      '"relative"',
      `"${sbDir}/../.."`,
      '"1X"',
      '"0"',
      '"-1M"',
      '"99999999999999999999T"',
      '"101%"',
      '"0%"',
      '"25%"',
      '"4K"',
      '"3K"',
      '-1',
      '0',
      '1e309',
      'inf',
      'nan',
      '1.5',
      'true',
      '2024-01-01',
      '[]',
      '[1, "a"]',
      '["suid"]',
      '["../x"]',
      '{}',
      '{ a = 1 }',
      '"\\u0000"',
      '"a,b:c"',
      `"${sbDir}/tree"`,
      `"${dirA}"`,
      `"${dirA}/sub"`,
      '"x"',
      "'''\nmulti\n'''",
      `"${'y'.repeat(5000)}"`,
      '"\\ud800"',
      '"é"',
      '9007199254740993',
      '-0',
      '0x10',
      '"zstd"',
      '"xz"',
      '"lzo"',
      '"keep"',
      '"tmpfs"',
    ];
    const KEYS = [
      'dir',
      'store',
      'compression',
      'compression-level',
      'block-size',
      'mksquashfs-args',
      'exclude',
      'upper',
      'tmpfs-size',
      'on-stop',
      'keep',
      'compact-after',
      'mount-options',
      'bogus',
      '"dir"',
      'dir.x',
      '__proto__',
      'constructor',
      'DIR',
      '',
    ];
    const HEADERS = [
      '[defaults]',
      '[tree.gamma]',
      '[tree.alpha]',
      '[tree."bad name"]',
      '[tree]',
      '[[tree]]',
      '[trees.a]',
      '[tree.a.b]',
      '[',
      '[tree.__proto__]',
      '[tree.constructor]',
      '[tree.' + 'n'.repeat(80) + ']',
    ];
    const rng = new Random(31337);
    const mutate = (text: string): string => {
      let lines = text.split('\n');
      const n = rng.int(1, 3);
      for (let k = 0; k < n; k++) {
        const i = rng.int(0, Math.max(0, lines.length - 1));
        const line = lines[i] ?? '';
        switch (rng.int(0, 11)) {
          case 0:
            lines.splice(i, 1);
            break;
          case 1:
            lines.splice(i, 0, line);
            break;
          case 2:
            if (line.includes('='))
              lines[i] = `${line.slice(0, line.indexOf('=') + 1)} ${rng.pick(VALUES)}`;
            break;
          case 3:
            lines.splice(i, 0, `${rng.pick(KEYS)} = ${rng.pick(VALUES)}`);
            break;
          case 4:
            lines.splice(i, 0, rng.pick(HEADERS));
            break;
          case 5: {
            const pos = rng.int(0, line.length);
            const junk = rng.pick([
              '"',
              "'",
              '[',
              ']',
              '=',
              '#',
              '\\',
              '\0',
              '\r',
              '{',
              '}',
              ',',
              '\u00ff',
              '\ufeff',
            ]);
            lines[i] = line.slice(0, pos) + junk + line.slice(pos);
            break;
          }
          case 6:
            lines[i] = line.slice(0, rng.int(0, line.length));
            break;
          case 7:
            lines = lines.slice(0, i);
            break;
          case 8: {
            const j = rng.int(0, lines.length - 1);
            [lines[i], lines[j]] = [lines[j] ?? '', line];
            break;
          }
          case 9:
            if (line.includes('=')) lines[i] = `${rng.pick(KEYS)} ${line.slice(line.indexOf('='))}`;
            break;
          case 10:
            lines.splice(i, 0, `${rng.pick(KEYS)} = ${rng.pick(VALUES)}`, rng.pick(HEADERS));
            break;
          default:
            lines[i] = line.replace(/"/g, rng.pick(["'", '', '"""']));
        }
      }
      return lines.join('\n');
    };
    const configs: { text: string | Buffer; label: string }[] = [
      { text: '', label: 'empty file' },
      { text: Buffer.from([0xff, 0xfe, 0x00, 0x41, 0x80, 0x0a]), label: 'invalid UTF-8' },
      { text: randomBytes(4096), label: 'random bytes' },
      { text: `${BASE_TOML}\n`.repeat(2), label: 'everything twice' },
      {
        text: `[tree.x]\ndir = "${dirA}"\n${'# comment\n'.repeat(50_000)}`,
        label: 'huge',
      },
      { text: '['.repeat(10_000), label: 'deep nesting' },
      { text: `a = ${'['.repeat(5000)}${']'.repeat(5000)}`, label: 'deep arrays' },
    ];
    for (let i = 0; configs.length < 400; i++)
      configs.push({ text: mutate(BASE_TOML), label: `mutation ${i}` });
    const counts = { configs: 0, spawned: 0, ok: 0, refused: 0, starts: 0 };
    const codes = new Map<string, number>();
    const failures: string[] = [];
    /** A config whose trees all live in the sandbox (or that does not parse) may go through start. */
    const startable = (text: string, file: string): boolean => {
      try {
        return parseConfig(text, file).every(
          (tr) =>
            tr.dir.startsWith(`${sbDir}/`) &&
            tr.store.startsWith(`${sbDir}/`) &&
            (tr.upper.kind === 'tmpfs' || tr.upper.path.startsWith(`${sbDir}/`)),
        );
      } catch {
        return true;
      }
    };
    const judge = (label: string, command: string, text: string | Buffer, r: CliResult): void => {
      counts.configs++;
      if (command === 'start') counts.starts++;
      // One tree failing: "error E_X:" on stderr; several: "NAME: error E_X:" per tree on stdout.
      const code = /\berror (E_[A-Z_]+):/.exec(`${r.stderr}\n${r.stdout}`)?.[1];
      const stack = /internal error/i.test(r.stderr) || /^\s+at .+:\d+:\d+\)?$/m.test(r.stderr);
      if (r.status === 0) counts.ok++;
      else counts.refused++;
      if (code) codes.set(code, (codes.get(code) ?? 0) + 1);
      if (stack || (r.status !== 0 && r.status !== 1) || (r.status === 1 && !code)) {
        failures.push(
          `${label} (${command}): exit ${r.status}\n--- config ---\n${text.toString().slice(0, 600)}\n--- stderr ---\n${r.stderr.slice(0, 600)}`,
        );
      }
    };
    const cfgDir = join(sbDir, 'configs');
    await fsp.mkdir(cfgDir);
    const jobs: { args: string[]; label: string; command: string; text: string | Buffer }[] = [];
    const spawned: typeof jobs = [];
    for (const [idx, c] of configs.entries()) {
      const cfg = join(cfgDir, `c${idx}.toml`);
      await fsp.writeFile(cfg, c.text);
      const command = idx % 4 === 0 && startable(c.text.toString(), cfg) ? 'start' : 'status';
      const job = {
        args: ['--config', cfg, '--state-dir', join(sbDir, 'state-hostile'), command],
        label: c.label,
        command,
        text: c.text,
      };
      // One in ten runs as its own process, exactly as a user runs it; the rest go through
      // the same main() in one process, which costs milliseconds instead of a Node start-up.
      if (idx % 10 === 0) spawned.push(job);
      else jobs.push(job);
    }
    for (const j of spawned) {
      judge(j.label, j.command, j.text, await cli(j.args));
      counts.spawned++;
    }
    const jobsFile = join(sbDir, 'jobs.json');
    const outFile = join(sbDir, 'results.json');
    await fsp.writeFile(jobsFile, JSON.stringify(jobs.map((j) => j.args)));
    const bundle = mainModule();
    execFileSync(
      process.execPath,
      ['--input-type=module', '-e', RUNNER, jobsFile, outFile, bundle],
      {
        stdio: 'inherit',
      },
    );
    const results = JSON.parse(await fsp.readFile(outFile, 'utf8')) as CliResult[];
    assert.equal(results.length, jobs.length);
    for (const [i, r] of results.entries()) {
      const j = jobs[i];
      if (j) judge(j.label, j.command, j.text, r);
    }
    t.diagnostic(
      `${counts.configs} configs (${counts.spawned} as their own process, ${counts.starts} through start): ${counts.ok} accepted, ${counts.refused} refused; codes ${JSON.stringify(Object.fromEntries(codes))}`,
    );
    assert.deepEqual(mountsBelow(sbDir), [], 'nothing mounted');
    assert.deepEqual(loopsFor(sbDir), []);
    assert.equal((await treeStatus(f)).state, 'stopped');
    assert.deepEqual(failures.slice(0, 5), [], `${failures.length} configs broke the CLI`);
  });
});
