/** Shared test environment: root check, temp dirs that always clean up their mounts. */
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import type { TestContext } from 'node:test';

export const isRoot = process.geteuid?.() === 0;

export function needRoot(t: TestContext): boolean {
  if (!isRoot) {
    t.skip('needs root: mounts real SquashFS images and overlays');
    return false;
  }
  return true;
}

/** Mount points below `dir`, deepest first. */
export function mountsBelow(dir: string): string[] {
  const text = execFileSync('cat', ['/proc/self/mountinfo'], { encoding: 'utf8' });
  const points = text
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .map((p) => p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((p) => p === dir || p.startsWith(`${dir}/`));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

/** Unmount everything below dir (lazily if busy) and detach its loops. */
export function unmountAllBelow(dir: string): void {
  for (let round = 0; round < 5; round++) {
    const points = mountsBelow(dir);
    if (points.length === 0) break;
    for (const p of points) {
      try {
        execFileSync('umount', [p], { stdio: 'ignore' });
      } catch {
        try {
          execFileSync('umount', ['-l', p], { stdio: 'ignore' });
        } catch {
          // already gone
        }
      }
    }
  }
  const loops = execFileSync('losetup', ['-a'], { encoding: 'utf8' });
  for (const line of loops.split('\n')) {
    // Lazy up to the first "(": a deleted backing file reads "(PATH (deleted))".
    const m = /^(\/dev\/loop\d+): .*?\((.*)\)$/.exec(line);
    if (m && (m[2] ?? '').startsWith(dir)) {
      try {
        execFileSync('losetup', ['-d', m[1] ?? ''], { stdio: 'ignore' });
      } catch {
        // busy or gone
      }
    }
  }
}

export interface Sandbox {
  dir: string;
  config: string;
  state: string;
  store: (name: string) => string;
  cleanup(): Promise<void>;
}

/** A temp dir with its own config and state dir; cleanup unmounts and deletes all of it. */
export async function sandbox(t: TestContext, prefix = 'st-test-'): Promise<Sandbox> {
  const dir = await fsp.mkdtemp(join(tmpdir(), prefix));
  const sb: Sandbox = {
    dir,
    config: join(dir, 'squashtree.toml'),
    state: join(dir, 'state'),
    store: (name) => join(dir, 'store', name),
    async cleanup() {
      unmountAllBelow(dir);
      await fsp.rm(dir, { recursive: true, force: true });
    },
  };
  t.after(() => sb.cleanup());
  return sb;
}
