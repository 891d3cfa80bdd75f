/**
 * Programs some tests need beyond what squashtree needs: a test without one
 * skips, saying which package to install (Debian's name), instead of
 * failing on a fresh machine.
 */
import { spawnSync } from 'node:child_process';
import type { TestContext } from 'node:test';

export function hasProgram(program: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${program}`], { stdio: 'ignore' }).status === 0;
}

/** The message a test without `program` skips (or notes a skipped part) with. */
export function missing(program: string, pkg: string): string {
  return `needs ${program} (apt-get install ${pkg})`;
}

/** True when `program` is on PATH; else the test is skipped, visibly, naming the package. */
export function needProgram(t: TestContext, program: string, pkg: string): boolean {
  if (hasProgram(program)) return true;
  process.stderr.write(`SKIPPED: ${t.name}: ${missing(program, pkg)}\n`);
  t.skip(missing(program, pkg));
  return false;
}
