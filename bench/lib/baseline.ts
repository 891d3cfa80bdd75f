/**
 * --baseline REV: another revision of squashtree, built once into the cache
 * (CACHE/builds/SHA: `git archive` of that commit, this checkout's
 * node_modules linked in, its own `npm run build`), so the same run can
 * measure every figure with it too: before and after, side by side.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { cached } from './cache.js';
import { BenchError, run, shell, shellQuote } from './exec.js';
import { ROOT, type Build } from './squashtree.js';

export async function baselineBuild(cacheDir: string, rev: string): Promise<Build> {
  let sha: string;
  try {
    sha = (
      await run('git', ['-C', ROOT, 'rev-parse', '--verify', `${rev}^{commit}`])
    ).stdout.trim();
  } catch {
    throw new BenchError(
      `--baseline ${rev}: not a revision of ${ROOT} (try a commit hash, a branch or HEAD~N)`,
    );
  }
  const entry = await cached<{ rev: string; sha: string }>(
    join(cacheDir, 'builds'),
    sha,
    async (dir) => {
      await shell(`git -C ${shellQuote(ROOT)} archive ${sha} | tar -x -C ${shellQuote(dir)}`);
      await fsp.symlink(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
      await run('npm', ['run', '--silent', 'build'], { cwd: dir });
      return { rev, sha };
    },
  );
  return { label: `baseline ${sha.slice(0, 8)}`, bin: join(entry.dir, 'bin', 'squashtree.js') };
}
