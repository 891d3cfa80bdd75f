/**
 * What squashtree's own process is started with, and taken back out of what
 * it starts. The launcher's first line (bin/squashtree.js, through `env -S`)
 * and the commands the integrations write both set it; the CLI removes it
 * from its environment before it runs anything else.
 *
 * glibc's malloc raises its mmap threshold to the size of each large block
 * that is freed (up to 32 MiB). After the first big buffer is freed, buffers
 * of that size come from the brk heap, where a freed one stays resident
 * behind live ones. A fixed threshold keeps each buffer from 256 KiB up in a
 * mapping of its own, returned to the kernel when it is freed. glibc reads
 * it only when the process starts, so it cannot be set from inside.
 * Measured on the 203k-file tree, /usr/bin/time: a compaction of base + one
 * day peaks at 131-133 MB instead of 147-151, a one-day commit at 157-159
 * instead of 170-175, at the same speed. mksquashfs is slower with it (sys
 * time 0.28 -> 0.50 s on GURU), so children get the user's environment.
 */
export const LAUNCH_ENV: Readonly<Record<string, string>> = {
  MALLOC_MMAP_THRESHOLD_: '262144',
};

const assignments = (): string[] => Object.entries(LAUNCH_ENV).map(([k, v]) => `${k}=${v}`);

/** The launcher's first line: coreutils env (8.30 and later) splits it and sets LAUNCH_ENV. */
export const LAUNCHER_SHEBANG = `#!/usr/bin/env -S ${assignments().join(' ')} node`;

/** The words that start `script` with `node` and LAUNCH_ENV, for generated files. */
export function launchWords(node: string, script: string): string[] {
  return ['/usr/bin/env', ...assignments(), node, script];
}

/**
 * Remove LAUNCH_ENV from `env` where it holds the launcher's value, so the
 * programs squashtree runs (mksquashfs, a `squashtree run` command) get the
 * environment the user gave.
 */
export function forgetLaunchEnv(env: NodeJS.ProcessEnv = process.env): void {
  for (const [k, v] of Object.entries(LAUNCH_ENV)) if (env[k] === v) Reflect.deleteProperty(env, k);
}
