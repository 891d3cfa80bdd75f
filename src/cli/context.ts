/** Global options, resolved once: which config, which state dir, how to print. */
import { DEFAULT_CONFIG_PATH, loadConfig, selectTrees, type Config } from '../config/load.js';
import { Tree } from '../lifecycle/tree.js';
import { makeReporter } from './reporter.js';
import { SquashtreeError } from '../errors.js';
import type { CommandSpec } from './spec.js';
import { isAbsolute, resolve } from 'node:path';

export const DEFAULT_STATE_DIR = '/run/squashtree';

export interface GlobalOptions {
  config?: string;
  stateDir?: string;
  json?: boolean;
  quiet?: boolean;
  wait?: string;
}

export interface CliContext {
  configPath: string;
  stateDir: string;
  json: boolean;
  quiet: boolean;
  waitSeconds: number;
  loadConfig(): Promise<Config>;
  trees(names: readonly string[]): Promise<Tree[]>;
  /** Every command (for help-derived output: the man page, completions). */
  commands?: readonly CommandSpec[];
}

export function resolveGlobals(g: GlobalOptions, env: NodeJS.ProcessEnv = process.env): CliContext {
  const configPath = resolve(g.config ?? env.SQUASHTREE_CONFIG ?? DEFAULT_CONFIG_PATH);
  const stateRaw = g.stateDir ?? env.SQUASHTREE_STATE_DIR ?? DEFAULT_STATE_DIR;
  if (!isAbsolute(stateRaw) && g.stateDir === undefined) {
    throw new SquashtreeError(
      'E_USAGE',
      `SQUASHTREE_STATE_DIR must be an absolute path, not ${stateRaw}`,
    );
  }
  const stateDir = resolve(stateRaw);
  const wait = g.wait === undefined ? 300 : Number(g.wait);
  if (!Number.isFinite(wait) || wait < 0) {
    throw new SquashtreeError('E_USAGE', `--wait takes a number of seconds, not ${g.wait ?? ''}`);
  }
  const json = Boolean(g.json);
  const quiet = Boolean(g.quiet) || json;
  let cached: Config | undefined;
  const ctx: CliContext = {
    configPath,
    stateDir,
    json,
    quiet,
    waitSeconds: wait,
    async loadConfig() {
      cached ??= await loadConfig(configPath);
      return cached;
    },
    async trees(names) {
      const config = await ctx.loadConfig();
      return selectTrees(config, names).map(
        (t) => new Tree(t, stateDir, makeReporter({ quiet, tree: t.name }), wait),
      );
    },
  };
  return ctx;
}
