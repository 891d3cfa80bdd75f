/** doctor's checks of one configured tree: its dir, free space, engine, upper and state dir. */
import { existsSync, promises as fsp } from 'node:fs';
import type { TreeConfig } from '../config/schema.js';
import { SquashtreeError } from '../errors.js';
import { checkOwnedDir } from '../fs/secure.js';
import { chooseEngine, isRoot } from '../mount/engine.js';
import { readMounts, topMountAt } from '../mount/mountinfo.js';
import { engineFix } from './engine-fix.js';
import { layoutFor } from '../lifecycle/layout.js';
import { bad, ok, type Check } from './verdict.js';

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

/** A tmpfs is mounted on the upper (root), or a user's upper dir exists in its runtime dir. */
async function upperInUse(upperRoot: string, upperData: string): Promise<boolean> {
  if (topMountAt(await readMounts(), upperRoot)?.fstype === 'tmpfs') return true;
  return !isRoot() && existsSync(upperData);
}

export async function treeChecks(tree: TreeConfig, stateDir: string | undefined): Promise<Check[]> {
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
          `${await engineFix(engine.engine)}; or set engine = "auto" in [tree.${tree.name}]`,
        ),
  );
  // Without a state dir (see the "state dir" check) nothing below can be looked at.
  if (stateDir === undefined) return out;
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
  } else if (!(await upperInUse(layout.upperRoot, layout.upperData))) {
    // statfs of the bare mount point would describe the disk below it.
    out.push(ok(`${t}: tmpfs upper`, `size ${tree.upper.size} (not mounted now)`));
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
