/**
 * Model-based stress test: seeded random filesystem operations applied both
 * to the mounted tree and to a plain model dir, interleaved with commit,
 * stop/start, compact, discard and rollback. After every step the tree must
 * equal the model. The model keeps a copy of itself for every generation, so
 * discard (back to the last commit) and rollback (back to an older
 * generation) have something exact to be compared with.
 *
 * A short run always; a long one with SQUASHTREE_STRESS_STEPS=N. A failure
 * prints its seed and the command that replays it (SQUASHTREE_STRESS_SEED=S);
 * SQUASHTREE_STRESS_LOG=FILE keeps every operation of a failed run, and
 * SQUASHTREE_STRESS_ALL=1 adds hard links and compaction while mounted.
 *
 * The model reproduces two documented overlay behaviours instead of hiding
 * them: a directory that is in a lower layer cannot be renamed (EXDEV with
 * redirect_dir=off), so mv moves it entry by entry; and with index=off a
 * hard link to a file that is still in a lower layer is broken when one of
 * its names is copied up.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp, lstatSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join, dirname } from 'node:path';
import { needRoot } from '../helpers/env.js';
import { assertSameTree, type Spec } from '../helpers/tree.js';
import { initTree, parseJson, type TreeFixture } from '../helpers/setup.js';
import {
  Xattrs,
  assertClean,
  assertSameTreeWith,
  loopsFor,
  runtimeOf,
  treeStatus,
} from '../helpers/reliability.js';
import { withGeneration } from '../helpers/generation.js';
import { Random } from '../../src/corpus/random.js';
import { walkSync, type Entry } from '../../src/fs/walk.js';
import { displayPath } from '../../src/fs/paths.js';

const SHORT_STEPS = 100;
const SHORT_SEED = 3;
const ALL_STEPS = 70;
const ALL_SEED = 20261126;

const START: Spec = {
  'README.md': 'top level\n',
  'metadata.xml': { file: '<pkg/>\n', mode: 0o600, xattrs: { 'user.kind': 'meta' } },
  'app-misc': {
    dir: {
      hello: {
        dir: {
          'hello-1.0.ebuild': 'EAPI=8\nSRC_URI="x"\n',
          Manifest: 'DIST hello-1.0.tar.gz 100 SHA512 aa\n',
          files: { dir: { 'fix.patch': '--- a\n+++ b\n'.repeat(40) } },
        },
      },
      'linked-a': 'shared content\n',
      'linked-b': { hardlink: 'linked-a' },
    },
  },
  'dev-lang': {
    dir: {
      'big.bin': Buffer.alloc(200_000, 0x5a),
      'link-to-readme': { symlink: '../README.md' },
      empty: { dir: {} },
    },
    xattrs: { 'user.dir': 'yes' },
  },
};

const FILE_NAMES = [
  ...Array.from({ length: 24 }, (_, i) => `f${i}`),
  'with space',
  'ünïcødé',
  'new\nline',
  '.hidden',
  'x'.repeat(200),
];
const DIR_NAMES = [...Array.from({ length: 8 }, (_, i) => `d${i}`), 'dir with space'];
const FILE_MODES = [0o644, 0o600, 0o755, 0o640, 0o444, 0o4755, 0o2750];
const DIR_MODES = [0o755, 0o700, 0o750, 0o1777];

/** Binary relative path (walk's form) to a text path below root; every name used is UTF-8. */
function p(root: string, rel: string): string {
  return rel === '' ? root : join(root, Buffer.from(rel, 'latin1').toString('utf8'));
}

function relOf(parent: string, name: string): string {
  const bin = Buffer.from(name, 'utf8').toString('latin1');
  return parent === '' ? bin : `${parent}/${bin}`;
}

function content(rng: Random, big: boolean): Buffer {
  const n = big ? rng.int(150_000, 600_000) : rng.int(0, 20_000);
  if (rng.chance(0.5)) {
    // Compressible text lines.
    const line = `line ${rng.hex(8)} ${'abc'.repeat(rng.int(1, 20))}\n`;
    return Buffer.from(line.repeat(Math.ceil(n / line.length)).slice(0, n));
  }
  const b = Buffer.alloc(n);
  let x = rng.int(1, 0x7fffffff);
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

interface Ctx {
  f: TreeFixture;
  /** Also compact while mounted, and make hard links (off by default: see the todo tests). */
  mountedCompact: boolean;
  hardlinks: boolean;
  rng: Random;
  x: Xattrs;
  snaps: string;
  /** Model copy per generation number. */
  gens: Map<number, string>;
  /** The generation whose content the mounted tree (minus pending changes) shows. */
  committed: string;
  mounted: boolean;
  log: string[];
}

async function copyTree(from: string, to: string): Promise<void> {
  await fsp.rm(to, { recursive: true, force: true });
  execFileSync('cp', ['-a', '--no-target-directory', from, to]);
}

async function snapshot(c: Ctx, gen: number, from: string): Promise<void> {
  const dir = join(c.snaps, `g${gen}`);
  if (from !== dir) await copyTree(from, dir);
  c.gens.set(gen, dir);
}

/** With index=off, copying up one name of a hard-linked lower file gives it an inode of its own. */
function breakIfLower(c: Ctx, rel: string): void {
  const m = lstatSync(p(c.f.model, rel));
  if (!m.isFile() || m.nlink < 2) return;
  let inUpper = false;
  try {
    inUpper = lstatSync(p(runtimeOf(c.f.sb).data, rel)).isFile();
  } catch {
    inUpper = false;
  }
  if (inUpper) return;
  const target = p(c.f.model, rel);
  const tmp = join(dirname(target), '.stress-break-tmp');
  execFileSync('cp', ['-a', target, tmp]);
  execFileSync('mv', ['-T', tmp, target]);
}

interface Pick {
  files: Entry[];
  dirs: Entry[];
  all: Entry[];
}

function survey(model: string): Pick {
  // walkSync lists the root first (path ''): it is a dir things can be created in.
  const everything = walkSync(model);
  const all = everything.filter((e) => e.path !== '');
  return {
    all,
    files: all.filter((e) => e.type === 'file'),
    dirs: everything.filter((e) => e.type === 'dir'),
  };
}

function depth(rel: string): number {
  return rel === '' ? 0 : rel.split('/').length;
}

function fresh(c: Ctx, s: Pick, names: readonly string[], maxDepth = 4): string | undefined {
  const parents = s.dirs.filter((d) => depth(d.path) < maxDepth);
  for (let i = 0; i < 20; i++) {
    const parent = c.rng.pick(parents);
    const rel = relOf(parent.path, c.rng.pick(names));
    if (!s.all.some((e) => e.path === rel)) return rel;
  }
  return undefined;
}

async function both(c: Ctx, fn: (root: string) => Promise<void> | void): Promise<void> {
  await fn(c.f.tree);
  await fn(c.f.model);
}

/** One random filesystem operation on tree and model; returns its description. */
async function fileOp(c: Ctx): Promise<string> {
  const { rng } = c;
  const s = survey(c.f.model);
  const kind = rng.pick([
    'create',
    'create',
    'overwrite',
    'append',
    'truncate',
    'chmod',
    'rename-file',
    'rename-dir',
    'rm',
    'flash',
    'rm-r-recreate',
    'symlink',
    c.hardlinks ? 'hardlink' : 'create',
    'xattr',
    'mkdir',
  ] as const);
  const anyFile = s.files.length > 0 ? rng.pick(s.files) : undefined;
  switch (kind) {
    case 'create': {
      const rel = fresh(c, s, FILE_NAMES);
      if (!rel) return 'create: no free name';
      const data = content(rng, rng.chance(0.05));
      await both(c, (r) => fsp.writeFile(p(r, rel), data));
      return `create ${rel} (${data.length} bytes)`;
    }
    case 'overwrite':
    case 'append':
    case 'truncate': {
      if (!anyFile) return `${kind}: no file`;
      breakIfLower(c, anyFile.path);
      if (kind === 'truncate') {
        const len = rng.chance(0.3) ? anyFile.size + rng.int(1, 5000) : rng.int(0, anyFile.size);
        await both(c, (r) => fsp.truncate(p(r, anyFile.path), len));
        return `truncate ${anyFile.path} to ${len}`;
      }
      const data = content(rng, false);
      await both(c, (r) =>
        kind === 'append'
          ? fsp.appendFile(p(r, anyFile.path), data)
          : fsp.writeFile(p(r, anyFile.path), data),
      );
      return `${kind} ${anyFile.path} (${data.length} bytes)`;
    }
    case 'chmod': {
      const dirs = s.dirs.filter((d) => d.path !== '');
      if (rng.chance(0.3) && dirs.length > 0) {
        const d = rng.pick(dirs);
        const mode = rng.pick(DIR_MODES);
        await both(c, (r) => fsp.chmod(p(r, d.path), mode));
        return `chmod ${mode.toString(8)} dir ${d.path}`;
      }
      if (!anyFile) return 'chmod: no file';
      breakIfLower(c, anyFile.path);
      const mode = rng.pick(FILE_MODES);
      await both(c, (r) => fsp.chmod(p(r, anyFile.path), mode));
      return `chmod ${mode.toString(8)} ${anyFile.path}`;
    }
    case 'rename-file': {
      if (!anyFile) return 'rename-file: no file';
      const over = s.all.filter(
        (e) => e.type !== 'dir' && e.ino !== anyFile.ino && e.path !== anyFile.path,
      );
      const to =
        rng.chance(0.25) && over.length > 0 ? rng.pick(over).path : fresh(c, s, FILE_NAMES);
      if (!to) return 'rename-file: no free name';
      breakIfLower(c, anyFile.path);
      await both(c, (r) => fsp.rename(p(r, anyFile.path), p(r, to)));
      return `rename ${anyFile.path} -> ${to}`;
    }
    case 'rename-dir': {
      const dirs = s.dirs.filter((d) => d.path !== '');
      if (dirs.length === 0) return 'rename-dir: no dir';
      const d = rng.pick(dirs);
      const parents = s.dirs.filter(
        (x) => x.path !== d.path && !x.path.startsWith(`${d.path}/`) && depth(x.path) < 3,
      );
      let to: string | undefined;
      for (let i = 0; i < 20 && !to; i++) {
        const rel = relOf(rng.pick(parents).path, rng.pick(DIR_NAMES));
        if (!s.all.some((e) => e.path === rel)) to = rel;
      }
      if (!to) return 'rename-dir: no free name';
      const dest = to;
      // With redirect_dir=off the overlay answers EXDEV for a dir that is in a lower layer; mv then
      // renames entry by entry, and each lower file it renames is copied up on its own.
      for (const e of walkSync(c.f.model, { under: d.path }))
        if (e.type === 'file') breakIfLower(c, e.path);
      let copied = false;
      try {
        await fsp.rename(p(c.f.tree, d.path), p(c.f.tree, dest));
      } catch (e) {
        if ((e as { code?: string }).code !== 'EXDEV') throw e;
        copied = true;
        execFileSync('mv', ['-T', p(c.f.tree, d.path), p(c.f.tree, dest)]);
      }
      await fsp.rename(p(c.f.model, d.path), p(c.f.model, dest));
      return `mv -T ${d.path} ${dest}${copied ? ' (EXDEV: mv moved it entry by entry)' : ''}`;
    }
    case 'rm': {
      const victims = s.all.filter((e) => e.type !== 'dir');
      if (victims.length === 0) return 'rm: nothing';
      const v = rng.pick(victims);
      await both(c, (r) => fsp.rm(p(r, v.path)));
      return `rm ${v.path}`;
    }
    case 'flash': {
      // Created and deleted between two commits: no layer may bring it back.
      const rel = fresh(c, s, FILE_NAMES);
      if (!rel) return 'flash: no free name';
      await both(c, async (r) => {
        await fsp.writeFile(p(r, rel), 'gone again\n');
        await fsp.rm(p(r, rel));
      });
      return `create and rm ${rel}`;
    }
    case 'rm-r-recreate': {
      const dirs = s.dirs.filter((d) => d.path !== '');
      if (dirs.length === 0) return 'rm-r: no dir';
      const d = rng.pick(dirs);
      const data = content(rng, false);
      const name = relOf(d.path, rng.pick(FILE_NAMES));
      await both(c, async (r) => {
        await fsp.rm(p(r, d.path), { recursive: true });
        await fsp.mkdir(p(r, d.path));
        await fsp.writeFile(p(r, name), data);
      });
      return `rm -r ${d.path}, mkdir, create ${name}`;
    }
    case 'symlink': {
      const rel = fresh(c, s, FILE_NAMES);
      if (!rel) return 'symlink: no free name';
      const target = rng.chance(0.3)
        ? `dangling/${rng.hex(6)}`
        : Buffer.from(rng.pick(s.all).path, 'latin1').toString('utf8');
      await both(c, (r) => fsp.symlink(target, p(r, rel)));
      return `symlink ${rel} -> ${target}`;
    }
    case 'hardlink': {
      if (!anyFile) return 'hardlink: no file';
      const rel = fresh(c, s, FILE_NAMES);
      if (!rel) return 'hardlink: no free name';
      breakIfLower(c, anyFile.path);
      await both(c, (r) => fsp.link(p(r, anyFile.path), p(r, rel)));
      return `ln ${anyFile.path} ${rel}`;
    }
    case 'xattr': {
      const targets = [...s.files, ...s.dirs.filter((d) => d.path !== '')];
      if (targets.length === 0) return 'xattr: nothing';
      const e = rng.pick(targets);
      if (e.type === 'file') breakIfLower(c, e.path);
      const name = `user.k${rng.int(0, 3)}`;
      const remove = rng.chance(0.2);
      if (remove) {
        if ((await c.x.get(p(c.f.model, e.path), name)) === null)
          return `xattr: ${e.path} has no ${name}`;
        await both(c, (r) => c.x.remove(p(r, e.path), name));
        return `removexattr ${name} ${e.path}`;
      }
      const value = rng.hex(rng.int(0, 40));
      await both(c, (r) => c.x.set(p(r, e.path), name, value));
      return `setxattr ${name}=${value} ${e.path}`;
    }
    case 'mkdir': {
      const rel = fresh(c, s, DIR_NAMES, 3);
      if (!rel) return 'mkdir: no free name';
      await both(c, (r) => fsp.mkdir(p(r, rel)));
      return `mkdir ${rel}`;
    }
  }
}

interface CommitJson {
  trees: { result: { committed: boolean; generation: number; mode?: string } }[];
}
interface StopJson {
  trees: {
    result: {
      wasMounted: boolean;
      commit?: { committed: boolean; generation: number };
      compact?: { compacted: boolean; generation: number };
    };
  }[];
}
interface CompactJson {
  trees: { result: { compacted: boolean; generation: number } }[];
}
interface DiscardJson {
  trees: { result: { discarded: boolean } }[];
}

/** One lifecycle operation; returns its description and how to compare afterwards. */
async function lifecycleOp(c: Ctx): Promise<[string, 'live' | 'strict' | 'none']> {
  const { f, rng } = c;
  if (c.mounted) {
    const kind = rng.pick([
      'commit',
      'commit',
      'commit',
      'stop',
      'stop',
      c.mountedCompact ? 'compact' : 'commit',
      'discard',
    ] as const);
    if (kind === 'commit') {
      const r = parseJson<CommitJson>(await f.ok('commit', 't', '--json')).trees[0]?.result;
      assert.ok(r);
      if (r.committed) {
        // Commits stack within a session, and the new generation alone shows the tree.
        assert.equal(r.mode, 'stacked', 'the commit stacked on the session');
        await withGeneration(f.store, join(f.sb.dir, 'gen-view'), (view) =>
          assertSameTreeWith(c.x, c.f.model, view, `generation ${r.generation}, mounted alone`),
        );
        await snapshot(c, r.generation, c.f.model);
        c.committed = c.gens.get(r.generation) ?? '';
      }
      return [`commit -> ${r.committed ? `generation ${r.generation}` : 'nothing'}`, 'live'];
    }
    if (kind === 'stop') {
      const r = parseJson<StopJson>(await f.ok('stop', 't', '--json')).trees[0]?.result;
      assert.ok(r?.wasMounted);
      if (r.commit?.committed) await snapshot(c, r.commit.generation, c.f.model);
      if (r.compact?.compacted) await snapshot(c, r.compact.generation, c.f.model);
      const gen = (await treeStatus(f)).generation;
      if (!c.gens.has(gen)) await snapshot(c, gen, c.f.model);
      c.committed = c.gens.get(gen) ?? '';
      c.mounted = false;
      await assertClean(f.sb, f.store, 'after stop');
      return [
        `stop (commit: ${r.commit?.committed ? r.commit.generation : '-'}, auto-compact: ${r.compact?.compacted ? r.compact.generation : '-'})`,
        'none',
      ];
    }
    if (kind === 'compact') {
      const r = parseJson<CompactJson>(await f.ok('compact', 't', '--json')).trees[0]?.result;
      assert.ok(r);
      // A mounted compaction packs the committed images: the pending changes are not in it.
      if (r.compacted) await snapshot(c, r.generation, c.committed);
      return [`compact (mounted) -> ${r.compacted ? r.generation : 'nothing'}`, 'live'];
    }
    const r = parseJson<DiscardJson>(await f.ok('discard', '--yes', 't', '--json')).trees[0]
      ?.result;
    assert.ok(r);
    if (r.discarded) await copyTree(c.committed, c.f.model);
    return [
      `discard -> ${r.discarded ? 'discarded' : 'nothing pending'}`,
      r.discarded ? 'strict' : 'live',
    ];
  }
  const kind = rng.pick(['start', 'start', 'start', 'rollback', 'compact'] as const);
  if (kind === 'start') {
    await f.ok('start', 't');
    c.mounted = true;
    return ['start', 'strict'];
  }
  if (kind === 'compact') {
    const r = parseJson<CompactJson>(await f.ok('compact', 't', '--json')).trees[0]?.result;
    assert.ok(r);
    if (r.compacted) {
      await snapshot(c, r.generation, c.committed);
      c.committed = c.gens.get(r.generation) ?? '';
    }
    await assertClean(f.sb, f.store, 'after a stopped compact');
    return [`compact (stopped) -> ${r.compacted ? r.generation : 'nothing'}`, 'none'];
  }
  const st = await treeStatus(f);
  const listed = st.generations.map((g) => g.generation);
  const older = listed.filter((g) => g < st.generation);
  const newest = Math.max(...listed);
  if (newest > st.generation && rng.chance(0.3)) {
    await f.ok('rollback', '--to', String(newest), 't');
    await copyTree(
      c.gens.get(newest) ?? assert.fail(`no model for generation ${newest}`),
      c.f.model,
    );
    c.committed = c.gens.get(newest) ?? '';
    return [`rollback --to ${newest} (forward)`, 'none'];
  }
  if (older.length === 0) {
    const r = await f.run('rollback', 't');
    assert.equal(r.status, 1, 'rollback without an older generation fails');
    assert.match(r.stderr, /E_NO_GENERATION/);
    return ['rollback: no older generation (E_NO_GENERATION)', 'none'];
  }
  const target = Math.max(...older);
  await f.ok('rollback', 't');
  const after = (await treeStatus(f)).generation;
  assert.equal(after, target, 'rollback goes to the newest older generation');
  const snap = c.gens.get(target);
  assert.ok(snap, `no model for generation ${target}`);
  await copyTree(snap, c.f.model);
  c.committed = snap;
  return [`rollback ${st.generation} -> ${target}`, 'none'];
}

async function runStress(
  t: Parameters<typeof needRoot>[0],
  steps: number,
  seed: number,
  opts: { mountedCompact: boolean; hardlinks: boolean },
): Promise<void> {
  const { mountedCompact, hardlinks } = opts;
  const started = performance.now();
  t.diagnostic(
    `stress: seed ${seed}, ${steps} steps${mountedCompact ? ', compact while mounted' : ''}${hardlinks ? ', hard links' : ''}`,
  );
  const f = await initTree(t, START, [], '[defaults]\nkeep = 3\ncompact-after = 3\n');
  const snaps = join(f.sb.dir, 'snaps');
  await fsp.mkdir(snaps);
  const c: Ctx = {
    f,
    mountedCompact,
    hardlinks,
    rng: new Random(seed),
    x: new Xattrs(),
    snaps,
    gens: new Map(),
    committed: '',
    mounted: false,
    log: [],
  };
  t.after(() => {
    c.x.close();
  });
  await snapshot(c, 1, f.model);
  c.committed = c.gens.get(1) ?? '';
  await f.ok('start', 't');
  c.mounted = true;
  const counts: Record<string, number> = {};
  const ms: Record<string, number> = { lifecycle: 0, fileops: 0, compare: 0 };
  const timed = async <T>(key: string, fn: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      ms[key] = (ms[key] ?? 0) + performance.now() - t0;
    }
  };
  const fail = (i: number, what: string, e: unknown): never => {
    const msg = e instanceof Error ? e.message : String(e);
    const logFile = process.env.SQUASHTREE_STRESS_LOG;
    if (logFile) writeFileSync(logFile, `${c.log.join('\n')}\n${msg}\n`);
    throw new Error(
      `stress failed: seed ${seed}, step ${i} of ${steps}: ${what}\n` +
        `replay: SQUASHTREE_STRESS_SEED=${seed} SQUASHTREE_STRESS_STEPS=${steps}${mountedCompact && hardlinks ? ' SQUASHTREE_STRESS_ALL=1' : ''} node scripts/run-tests.mjs test/e2e/stress.test.ts\n` +
        (logFile
          ? `every operation: ${logFile}\n`
          : 'to keep every operation, set SQUASHTREE_STRESS_LOG=FILE\n') +
        `last operations:\n  ${c.log.slice(-15).join('\n  ')}\n${msg}`,
    );
  };
  for (let i = 1; i <= steps; i++) {
    let what = '?';
    try {
      let check: 'live' | 'strict' | 'none';
      if (!c.mounted || c.rng.chance(0.2)) {
        what = c.mounted ? 'a lifecycle operation (mounted)' : 'a lifecycle operation (stopped)';
        [what, check] = await timed('lifecycle', () => lifecycleOp(c));
        const key = what.split(' ')[0] ?? what;
        counts[key] = (counts[key] ?? 0) + 1;
        if (/auto-compact: \d/.test(what))
          counts['auto-compact'] = (counts['auto-compact'] ?? 0) + 1;
      } else {
        what = 'a file operation';
        what = await timed('fileops', () => fileOp(c));
        check = 'live';
        counts.fileops = (counts.fileops ?? 0) + 1;
      }
      c.log.push(`${i}: ${displayPath(what)}`);
      if (check !== 'none') {
        const live = check === 'live';
        const msg = `seed ${seed} step ${i} (${displayPath(what)})`;
        await timed('compare', () =>
          live
            ? assertSameTreeWith(c.x, c.f.model, c.f.tree, msg, { live })
            : assertSameTree(c.f.model, c.f.tree, msg),
        );
      }
    } catch (e) {
      fail(i, what, e);
    }
  }
  try {
    if (c.mounted) {
      await f.ok('stop', 't');
      c.mounted = false;
    }
    await assertClean(f.sb, f.store, 'after the last stop');
    const v = await f.run('verify', 't');
    assert.equal(v.status, 0, `verify after the run: ${v.stdout}${v.stderr}`);
    await f.ok('start', 't');
    await assertSameTree(c.f.model, c.f.tree, `seed ${seed}: final start`);
    await f.ok('stop', 't');
    assert.deepEqual(loopsFor(f.sb.dir), []);
  } catch (e) {
    fail(steps + 1, 'final check', e);
  }
  const secs = ((performance.now() - started) / 1000).toFixed(1);
  const spent = Object.entries(ms).map(([k, v]) => `${k} ${(v / 1000).toFixed(1)} s`);
  t.diagnostic(
    `stress: seed ${seed}, ${steps} steps in ${secs} s (${spent.join(', ')}): ${JSON.stringify(counts)}`,
  );
}

const envFlag = (name: string): boolean => /^(1|yes|true)$/i.test(process.env[name] ?? '');

describe('model-based stress', { concurrency: false }, () => {
  const seedEnv = Number(process.env.SQUASHTREE_STRESS_SEED ?? '');
  const all = envFlag('SQUASHTREE_STRESS_ALL');
  const opts = { mountedCompact: all, hardlinks: all };

  it(`${SHORT_STEPS} seeded random steps keep the tree equal to its model`, async (t) => {
    if (!needRoot(t)) return;
    await runStress(t, SHORT_STEPS, seedEnv || SHORT_SEED, opts);
  });

  // Every operation, hard links and compaction while mounted included: this seed is the run
  // that found the first bug below (at step 60); it is the main test again once both are fixed.
  it(`${ALL_STEPS} seeded random steps with hard links and compaction while mounted`, async (t) => {
    if (!needRoot(t)) return;
    await runStress(t, ALL_STEPS, seedEnv || ALL_SEED, {
      mountedCompact: true,
      hardlinks: true,
    });
  });

  it('found by the stress run: compact while mounted, then delete what a layer deleted', async (t) => {
    if (!needRoot(t)) return;
    const f = await initTree(t, {
      D: { dir: { big: Buffer.alloc(1_000_000, 1) } },
      keep: 'small\n',
    });
    await f.ok('start', 't');
    await fsp.rm(join(f.tree, 'D', 'big'));
    await f.ok('stop', 't');
    await f.ok('start', 't');
    await f.ok('compact', 't');
    await fsp.rm(join(f.tree, 'D'), { recursive: true });
    await fsp.rm(join(f.model, 'D'), { recursive: true });
    const r = await f.run('stop', 't');
    try {
      assert.equal(r.status, 0, `stop after a mounted compact: ${r.stderr}`);
      await f.ok('start', 't');
      await assertSameTree(f.model, f.tree, 'after the stop');
    } finally {
      // Leave the sandbox clean whatever happened.
      await f.run('stop', 't', '--on-stop', 'discard');
    }
  });

  it('found by the stress run: hard links in two layers, then compact', async (t) => {
    if (!needRoot(t)) return;
    const f = await initTree(t, { a1: 'one\n', a2: { hardlink: 'a1' } });
    await f.ok('start', 't');
    for (const root of [f.tree, f.model]) {
      await fsp.writeFile(join(root, 'b1'), 'two\n');
      await fsp.link(join(root, 'b1'), join(root, 'b2'));
    }
    await f.ok('stop', 't');
    const r = await f.run('compact', 't');
    assert.equal(r.status, 0, `compact: ${r.stderr}`);
    await f.ok('start', 't');
    await assertSameTree(f.model, f.tree, 'after the compaction');
    await f.ok('stop', 't');
  });

  const long = Number(process.env.SQUASHTREE_STRESS_STEPS ?? '');
  it(
    `long run (SQUASHTREE_STRESS_STEPS=${long || 'unset'})`,
    { skip: long > 0 ? false : 'set SQUASHTREE_STRESS_STEPS to run it' },
    async (t) => {
      if (!needRoot(t)) return;
      const seed = seedEnv || (Date.now() % 2_000_000_000) + 1;
      await runStress(t, long, seed, opts);
    },
  );
});
