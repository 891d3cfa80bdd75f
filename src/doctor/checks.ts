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
import { checkOwnedDir } from '../fs/secure.js';
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
import { layoutFor } from '../lifecycle/layout.js';
import { superOption } from '../mount/mountinfo.js';
import { portageAdvice } from '../integrations/portage.js';
import { isWithin } from '../config/values.js';

export type Verdict = 'ok' | 'warn' | 'fail';

export interface Check {
  check: string;
  verdict: Verdict;
  detail: string;
  fix?: string;
}

export interface DoctorReport {
  ok: boolean;
  checks: Check[];
}

const ok = (check: string, detail: string): Check => ({ check, verdict: 'ok', detail });
const bad = (check: string, detail: string, fix: string, verdict: Verdict = 'fail'): Check => ({
  check,
  verdict,
  detail,
  fix,
});

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

async function freeSpace(
  label: string,
  path: string,
  wantBytes: number,
  fix: string,
): Promise<Check> {
  let p = path;
  for (;;) {
    try {
      const s = await fsp.statfs(p);
      const free = s.bavail * s.bsize;
      const detail = `${(free / 2 ** 30).toFixed(1)} GiB free at ${p}`;
      return free >= wantBytes
        ? ok(label, detail)
        : bad(
            label,
            `${detail}, want at least ${(wantBytes / 2 ** 20).toFixed(0)} MiB`,
            fix,
            'warn',
          );
    } catch {
      const parent = p.replace(/\/[^/]*$/, '') || '/';
      if (parent === p) return bad(label, `cannot stat ${path}`, fix, 'warn');
      p = parent;
    }
  }
}

async function treeChecks(tree: TreeConfig, stateDir: string): Promise<Check[]> {
  const out: Check[] = [];
  const t = `tree ${tree.name}`;
  try {
    const st = await fsp.stat(tree.dir);
    out.push(
      st.isDirectory()
        ? ok(`${t}: dir`, tree.dir)
        : bad(`${t}: dir`, `${tree.dir} is not a directory`, 'fix dir in the config'),
    );
  } catch {
    out.push(bad(`${t}: dir`, `${tree.dir} does not exist`, `mkdir -p ${tree.dir}`));
  }
  out.push(
    await freeSpace(
      `${t}: store space`,
      tree.store,
      256 << 20,
      `free space on the filesystem of ${tree.store}, or move the store`,
    ),
  );
  const engine = await chooseEngine(tree.engine);
  const engineWhy = engine.rejected[engine.engine];
  const passed = Object.entries(engine.rejected)
    .filter(([e]) => e !== engine.engine)
    .map(([e, why]) => `${e}: ${why}`);
  out.push(
    engineWhy === undefined
      ? ok(
          `${t}: engine`,
          `${engine.engine} (${engine.reason})${passed.length ? `; not ${passed.join('; not ')}` : ''}`,
        )
      : bad(
          `${t}: engine`,
          `engine = "${tree.engine}" cannot work here: ${engineWhy}`,
          'set engine = "auto" in the tree\'s table, or fix what the engine needs',
        ),
  );
  const layout = layoutFor(stateDir, tree);
  if (tree.upper.kind === 'dir') {
    out.push(
      await freeSpace(
        `${t}: upper space`,
        tree.upper.path,
        256 << 20,
        `free space on the filesystem of ${tree.upper.path}`,
      ),
    );
  } else {
    try {
      const s = await fsp.statfs(layout.upperRoot);
      const used = (s.blocks - s.bfree) * s.bsize;
      const full = s.bavail === 0 || s.ffree === 0;
      const detail = `${(used / 2 ** 20).toFixed(1)} of ${((s.blocks * s.bsize) / 2 ** 20).toFixed(0)} MiB, ${s.files - s.ffree}/${s.files} inodes used`;
      out.push(
        full
          ? bad(
              `${t}: tmpfs upper`,
              `FULL: ${detail}`,
              'commit, then restart the tree to empty the upper, or raise tmpfs-size',
            )
          : ok(`${t}: tmpfs upper`, detail),
      );
    } catch {
      out.push(ok(`${t}: tmpfs upper`, `size ${tree.upper.size} (not mounted now)`));
    }
  }
  try {
    await checkOwnedDir(layout.runtime, 0o700);
    out.push(ok(`${t}: state dir`, layout.runtime));
  } catch (e) {
    if (e instanceof SquashtreeError) out.push(bad(`${t}: state dir`, e.message, e.hint ?? ''));
    else out.push(ok(`${t}: state dir`, `${layout.runtime} (created on first start)`));
  }
  return out;
}

/**
 * The recipe squashtree replaces: a squashfs image mounted read-only and an
 * overlay on the repository whose upper lives in /dev/shm. Moving over must
 * not lose the changes pending in that upper, so the steps pack the merged
 * view first.
 */
async function oldRecipe(stateDir: string): Promise<Check[]> {
  const mounts = await readMounts();
  const out: Check[] = [];
  for (const m of mounts) {
    if (m.fstype !== 'overlay') continue;
    const upper = superOption(m, 'upperdir') ?? '';
    if (isWithin(upper, stateDir) || !upper) continue;
    const lowers = (superOption(m, 'lowerdir') ?? '').split(':');
    const onSquashfs = lowers.some((l) =>
      mounts.some((x) => x.fstype === 'squashfs' && x.mountPoint === l),
    );
    if (!onSquashfs && !upper.startsWith('/dev/shm')) continue;
    const dir = m.mountPoint;
    out.push(
      bad(
        'old squash_portage-style mount',
        `${dir} is an overlay on a SquashFS image with its upper in ${upper} (not managed by squashtree)`,
        [
          'to move over without losing its pending changes:',
          `1. stop writers (no emerge --sync now), then pack the merged view: mksquashfs ${dir} /var/tmp/squashtree-migrate.sqfs -noappend -xattrs`,
          '2. stop and disable the old service (its own re-squash is no longer needed), so the overlay and image are unmounted',
          `3. squashtree init NAME --dir ${dir} --from-image /var/tmp/squashtree-migrate.sqfs`,
          '4. squashtree install openrc (or systemd) and squashtree install portage, then squashtree start NAME',
        ].join('\n        '),
        'warn',
      ),
    );
  }
  return out;
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
            e === 'kernel'
              ? 'run as root on a kernel with squashfs, overlay and loop (or use the fuse engine)'
              : e === 'fuse'
                ? 'apt-get install squashfuse fuse-overlayfs fuse3 (Gentoo: sys-fs/squashfuse sys-fs/fuse-overlayfs); /dev/fuse must be mode 0666'
                : 'install squashfuse, or run as root',
            auto.rejected[auto.engine] === undefined ? 'warn' : 'fail',
          ),
    );
  }
  return out;
}

export async function runDoctor(
  configPath: string,
  stateDir: string,
  storeRoot?: string,
): Promise<DoctorReport> {
  const checks: Check[] = [];
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
    checks.push(
      ok(
        'config',
        cfg.exists
          ? `${configPath}: ${trees.length} tree(s)`
          : `${configPath} does not exist yet (squashtree init creates it)`,
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
