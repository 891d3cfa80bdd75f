/** Engine switches for tests: is FUSE here, and change a tree's engine in its config. */
import { promises as fsp } from 'node:fs';
import { execFileSync } from 'node:child_process';
import type { TestContext } from 'node:test';

function has(program: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${program}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export const fuseMissing = ['squashfuse', 'fuse-overlayfs', 'fusermount3'].filter((p) => !has(p));

/** Skip (visibly) without the FUSE programs; .ci/run installs them. */
export function needFuse(t: TestContext): boolean {
  if (fuseMissing.length > 0) {
    const msg = `needs ${fuseMissing.join(', ')} (apt-get install squashfuse fuse-overlayfs fuse3)`;
    process.stderr.write(`SKIPPED: ${t.name}: ${msg}\n`);
    t.skip(msg);
    return false;
  }
  return true;
}

/** Set `engine = "..."` in the config's only tree table (init wrote one, or none). */
export async function setEngine(config: string, engine: string): Promise<void> {
  const text = await fsp.readFile(config, 'utf8');
  const next = /^engine = .*$/m.test(text)
    ? text.replace(/^engine = .*$/m, `engine = "${engine}"`)
    : text.replace(/^(\[tree\.[^\]]+\]\n)/m, `$1engine = "${engine}"\n`);
  await fsp.writeFile(config, next);
}

/** The type of what is mounted on `dir` ('' when nothing is). */
export function fstypeAt(dir: string): string {
  try {
    return execFileSync('findmnt', ['-n', '-o', 'FSTYPE', '--mountpoint', dir], {
      encoding: 'utf8',
    }).trim();
  } catch {
    return '';
  }
}
