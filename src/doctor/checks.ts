/**
 * doctor: each check passes, warns or fails, and a failure says how to fix
 * it. Kernel support is tested for real: a tiny image made with the tree's
 * compressor is mounted through a loop device and an overlay is stacked on
 * it, because /proc/filesystems cannot tell which compressors squashfs has.
 */
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../config/load.js';
import type { Compressor, TreeConfig } from '../config/schema.js';
import { SquashtreeError, errorMessage } from '../errors.js';
import { run } from '../exec/run.js';
import { mountOverlay, mountSquashfs, unmount } from '../mount/mount.js';
import {
  ENGINES,
  chooseEngine,
  fuseUnusable,
  isRoot,
  kernelUnusable,
  withMounter,
} from '../mount/engine.js';
import { mountsUnder, readMounts } from '../mount/mountinfo.js';
import { portageAdvice } from '../integrations/portage.js';
import type { ConfigSource } from '../config/source.js';
import { engineFix } from './engine-fix.js';
import { oldRecipe } from './old-recipe.js';
import { treeChecks } from './tree-checks.js';
import { bad, ok, type Check, type DoctorReport } from './verdict.js';

export type { Check, DoctorReport, Verdict } from './verdict.js';

async function fsSupported(name: string): Promise<boolean> {
  const text = await fsp.readFile('/proc/filesystems', 'utf8');
  return text.split('\n').some((l) => l.split('\t').pop()?.trim() === name);
}

async function kernelFs(name: string): Promise<Check> {
  if (!(await fsSupported(name))) {
    await run('modprobe', [name]).catch(() => undefined);
  }
  return (await fsSupported(name))
    ? ok(`kernel: ${name}`, 'supported')
    : bad(
        `kernel: ${name}`,
        `the running kernel has no ${name} filesystem`,
        `load it (modprobe ${name}) or build the kernel with CONFIG_${name === 'overlay' ? 'OVERLAY_FS' : 'SQUASHFS'}`,
      );
}

async function tool(name: string, args: string[], pkg: string): Promise<Check> {
  try {
    const r = await run(name, args, { okCodes: [0, 1] });
    const version = /(\d+\.\d+(?:\.\d+)?)/.exec(r.stdout + r.stderr)?.[1] ?? 'present';
    return ok(`program: ${name}`, version);
  } catch (e) {
    return bad(`program: ${name}`, errorMessage(e), `install ${pkg}`);
  }
}

/** Build a tiny image with `comp`, mount it, stack an overlay on it: the whole path a tree takes. */
async function mountProbe(comp: Compressor, kind: 'kernel' | 'fuse' = 'kernel'): Promise<Check> {
  return withMounter({ kind, privileged: isRoot() }, () => mountProbeWith(comp, kind));
}

async function mountProbeWith(comp: Compressor, kind: 'kernel' | 'fuse'): Promise<Check> {
  const name =
    kind === 'kernel'
      ? `kernel: mount a ${comp} image with an overlay`
      : `fuse: mount a ${comp} image with squashfuse and fuse-overlayfs`;
  const dir = await fsp.mkdtemp(join(tmpdir(), 'squashtree-doctor-'));
  try {
    await fsp.mkdir(join(dir, 'src'));
    await fsp.writeFile(join(dir, 'src', 'probe'), 'squashtree doctor\n');
    for (const d of ['img', 'upper', 'work', 'merged']) await fsp.mkdir(join(dir, d));
    try {
      await run('mksquashfs', [
        join(dir, 'src'),
        join(dir, 'probe.sqfs'),
        '-noappend',
        '-quiet',
        '-no-progress',
        '-comp',
        comp,
      ]);
    } catch (e) {
      return bad(
        name,
        `mksquashfs cannot write ${comp}: ${errorMessage(e)}`,
        'choose another compression, or a squashfs-tools built with it',
      );
    }
    try {
      await mountSquashfs(join(dir, 'probe.sqfs'), join(dir, 'img'));
    } catch (e) {
      return bad(
        name,
        `${kind === 'kernel' ? 'the kernel' : 'squashfuse'} cannot mount a ${comp} SquashFS image: ${errorMessage(e)}`,
        kind === 'kernel'
          ? `enable CONFIG_SQUASHFS_${comp.toUpperCase()} in the kernel, or choose another compression`
          : 'install a squashfuse built with that compressor, or choose another compression',
      );
    }
    try {
      await mountOverlay(join(dir, 'merged'), {
        lower: [join(dir, 'img')],
        upper: join(dir, 'upper'),
        work: join(dir, 'work'),
      });
      const text = await fsp.readFile(join(dir, 'merged', 'probe'), 'utf8');
      if (text !== 'squashtree doctor\n')
        return bad(name, 'read back wrong content', 'report this as a bug');
    } catch (e) {
      return bad(
        name,
        `overlay on a squashfs image failed: ${errorMessage(e)}`,
        kind === 'kernel' ? 'enable CONFIG_OVERLAY_FS' : 'check fuse-overlayfs and /dev/fuse',
      );
    }
    return ok(name, 'works');
  } finally {
    for (const m of mountsUnder(await readMounts(), dir))
      await unmount(m.mountPoint, { lazy: kind === 'kernel' }).catch(() => undefined);
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

/** Each engine: usable here or why not; the first usable one is what "auto" picks. */
async function engineChecks(): Promise<Check[]> {
  const out: Check[] = [];
  const auto = await chooseEngine('auto');
  for (const e of ENGINES) {
    const why = (await chooseEngine(e)).rejected[e];
    const picked = auto.engine === e && auto.rejected[e] === undefined;
    out.push(
      why === undefined
        ? ok(`engine: ${e}`, picked ? 'works; engine = "auto" uses it' : 'works')
        : bad(
            `engine: ${e}`,
            why,
            await engineFix(e),
            auto.rejected[auto.engine] === undefined ? 'warn' : 'fail',
          ),
    );
  }
  return out;
}

export async function runDoctor(
  configPath: string,
  /** The state dir, or why there is none (a user without $XDG_RUNTIME_DIR): a finding, not a refusal. */
  state: string | Error,
  storeRoot?: string,
  configSource: ConfigSource = 'default',
): Promise<DoctorReport> {
  const checks: Check[] = [];
  const stateDir = typeof state === 'string' ? state : undefined;
  if (typeof state !== 'string')
    checks.push(
      bad(
        'state dir',
        errorMessage(state),
        state instanceof SquashtreeError && state.hint ? state.hint : 'give --state-dir DIR',
      ),
    );
  checks.push(
    isRoot()
      ? ok('running as root', 'yes')
      : bad(
          'running as root',
          'no: user mode (the fuse engine, config and state under XDG dirs)',
          'run squashtree as root (sudo) for the kernel engine',
          'warn',
        ),
  );
  checks.push(...(await engineChecks()));
  const kernelFsChecks = [await kernelFs('squashfs'), await kernelFs('overlay')];
  // Without the kernel's filesystems the FUSE engine still works: a warning, not a failure.
  const fuseWorks = (await fuseUnusable(true)) === undefined;
  for (const c of kernelFsChecks)
    checks.push(fuseWorks && c.verdict === 'fail' ? { ...c, verdict: 'warn' } : c);
  try {
    await fsp.access('/dev/loop-control');
    checks.push(ok('kernel: loop devices', '/dev/loop-control'));
  } catch {
    checks.push(
      bad(
        'kernel: loop devices',
        'no /dev/loop-control',
        'modprobe loop, or enable CONFIG_BLK_DEV_LOOP',
      ),
    );
  }
  checks.push(
    await tool('mksquashfs', ['-version'], 'squashfs-tools'),
    await tool('unsquashfs', ['-version'], 'squashfs-tools'),
    await tool('flock', ['--version'], 'util-linux'),
    // A commit copies what changed out of the upper with it (xattrs, devices, sparse files).
    await tool('tar', ['--version'], 'GNU tar (Debian: tar; Gentoo: app-arch/tar)'),
  );
  // Only the kernel engine attaches loop devices, and only root runs it.
  if (isRoot()) checks.push(await tool('losetup', ['--version'], 'util-linux'));
  let trees: TreeConfig[] = [];
  try {
    const cfg = await loadConfig(configPath, storeRoot);
    trees = cfg.trees;
    if (cfg.exists)
      checks.push(
        ok('config', `${configPath}: ${trees.length} tree${trees.length === 1 ? '' : 's'}`),
      );
    else if (configSource === 'default')
      checks.push(ok('config', `${configPath} does not exist yet (squashtree init creates it)`));
    else
      // Given explicitly: a typo, or a config still to be written by init.
      checks.push(
        bad(
          'config',
          `${configPath} does not exist (given with ${configSource}); commands other than init refuse it`,
          `check the path; squashtree --config ${configPath} init NAME --dir DIR creates it`,
          'warn',
        ),
      );
  } catch (e) {
    checks.push(
      bad(
        'config',
        errorMessage(e),
        e instanceof SquashtreeError ? (e.hint ?? '') : 'fix the config',
      ),
    );
  }
  const comps = new Set<Compressor>(trees.map((t) => t.compression));
  if (comps.size === 0) comps.add('gzip');
  if (isRoot() && (await kernelUnusable()) === undefined)
    for (const c of comps) checks.push(await mountProbe(c));
  if (fuseWorks) for (const c of comps) checks.push(await mountProbe(c, 'fuse'));
  for (const t of trees) checks.push(...(await treeChecks(t, stateDir)));
  const configRoot = process.env.PORTAGE_CONFIGROOT ?? '/';
  for (const a of await portageAdvice(configRoot, trees))
    checks.push(bad(`tree ${a.tree}: portage`, a.problem, a.fix, 'warn'));
  checks.push(...(await oldRecipe(stateDir)));
  return { ok: checks.every((c) => c.verdict !== 'fail'), checks };
}
