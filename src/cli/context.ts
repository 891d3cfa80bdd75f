/** Global options, resolved once: which config, which state dir, how to print. */
import { DEFAULT_CONFIG_PATH, loadConfig, selectTrees, type Config } from '../config/load.js';
import { Tree } from '../lifecycle/tree.js';
import { makeReporter } from './reporter.js';
import { SquashtreeError } from '../errors.js';
import type { CliContext, GlobalOptions } from './spec.js';
import { isAbsolute, resolve } from 'node:path';
import { userPaths } from '../config/user-paths.js';
import { missingConfig, type ConfigSource } from '../config/source.js';
import { secureStore } from '../store/store.js';
import { isRoot } from '../mount/engine.js';

export const DEFAULT_STATE_DIR = '/run/squashtree';

export type { CliContext, GlobalOptions } from './spec.js';

export function resolveGlobals(
  g: GlobalOptions,
  env: NodeJS.ProcessEnv = process.env,
  root: boolean = isRoot(),
): CliContext {
  const userMode = Boolean(g.user) || !root;
  // User paths are worked out only when a default is needed (no --config, no --state-dir).
  const user = (() => {
    let cached: ReturnType<typeof userPaths> | undefined;
    return () => (cached ??= userPaths(env));
  })();
  // An empty SQUASHTREE_CONFIG counts as unset, as an empty Environment= line means in a unit.
  const fromEnv = env.SQUASHTREE_CONFIG === '' ? undefined : env.SQUASHTREE_CONFIG;
  const configSource: ConfigSource =
    g.config !== undefined ? '--config' : fromEnv !== undefined ? 'SQUASHTREE_CONFIG' : 'default';
  const configPath = resolve(
    g.config ?? fromEnv ?? (userMode ? userConfigPath(env) : DEFAULT_CONFIG_PATH),
  );
  const stateRaw =
    g.stateDir ?? env.SQUASHTREE_STATE_DIR ?? (userMode ? undefined : DEFAULT_STATE_DIR);
  if (stateRaw !== undefined && !isAbsolute(stateRaw) && g.stateDir === undefined) {
    throw new SquashtreeError(
      'E_USAGE',
      `SQUASHTREE_STATE_DIR must be an absolute path, not ${stateRaw}`,
    );
  }
  const fixedState = stateRaw === undefined ? undefined : resolve(stateRaw);
  const stateDirOf = (): string => fixedState ?? user().stateDir;
  const storeRoot = userMode ? userStoreRoot(env) : undefined;
  const wait = g.wait === undefined ? 300 : Number(g.wait);
  if (!Number.isFinite(wait) || wait < 0) {
    throw new SquashtreeError('E_USAGE', `--wait takes a number of seconds, not ${g.wait ?? ''}`);
  }
  const json = Boolean(g.json);
  const quiet = Boolean(g.quiet) || json;
  let cached: Config | undefined;
  const ctx: CliContext = {
    configPath,
    configSource,
    get stateDir() {
      return stateDirOf();
    },
    userMode,
    storeRoot,
    json,
    quiet,
    waitSeconds: wait,
    async loadConfig(opts = {}) {
      cached ??= await loadConfig(configPath, storeRoot);
      if (!cached.exists && configSource !== 'default' && opts.create !== true)
        throw missingConfig(configPath, configSource);
      return cached;
    },
    async trees(names, opts = {}) {
      const config = await ctx.loadConfig();
      if (names.length === 0 && config.trees.length === 0 && opts.allowNone !== true)
        throw noTrees(config);
      const selected = selectTrees(config, names);
      // Stores of an older version were world-readable: any command naming the tree fixes that.
      for (const t of selected) await secureStore(t.store);
      return selected.map(
        (t) => new Tree(t, stateDirOf(), makeReporter({ quiet, tree: t.name }), wait),
      );
    },
  };
  return ctx;
}

function noTrees(config: Config): SquashtreeError {
  return new SquashtreeError(
    'E_NO_TREE',
    `no trees configured in ${config.path}${config.exists ? '' : ' (it does not exist)'}: nothing to act on`,
    {
      path: config.path,
      hint: 'add one with squashtree init NAME --dir DIR, or name the config with --config FILE',
    },
  );
}

function userConfigPath(env: NodeJS.ProcessEnv): string {
  // The config path does not need $XDG_RUNTIME_DIR: compute it without failing on its absence.
  try {
    return userPaths(env).config;
  } catch {
    return userPaths({ ...env, XDG_RUNTIME_DIR: '/' }).config;
  }
}

function userStoreRoot(env: NodeJS.ProcessEnv): string {
  try {
    return userPaths(env).storeRoot;
  } catch {
    return userPaths({ ...env, XDG_RUNTIME_DIR: '/' }).storeRoot;
  }
}
