/**
 * The shape every command has: names, help, arguments, options and a
 * handler that returns data. Printing is done by the command's render
 * function (text) or by main (JSON), never by the handler.
 */
import type { Config } from '../config/load.js';
import type { ConfigSource } from '../config/source.js';
import type { Tree } from '../lifecycle/tree.js';

export interface GlobalOptions {
  config?: string;
  stateDir?: string;
  json?: boolean;
  quiet?: boolean;
  wait?: string;
  user?: boolean;
}

/** What a command runs with: the global options resolved (cli/context.ts resolveGlobals). */
export interface CliContext {
  configPath: string;
  configSource: ConfigSource;
  stateDir: string;
  /** --user, or not root: XDG paths and the fuse engine. */
  userMode: boolean;
  /** Default parent of the trees' stores (user mode: under $XDG_DATA_HOME). */
  storeRoot: string | undefined;
  json: boolean;
  quiet: boolean;
  waitSeconds: number;
  /** The config; a missing one given explicitly is E_CONFIG_MISSING unless `create` (init writes it). */
  loadConfig(opts?: { create?: boolean }): Promise<Config>;
  /**
   * The named trees, or all configured ones. None named and none configured
   * is E_NO_TREE (a script must not pass doing nothing), unless `allowNone`.
   */
  trees(names: readonly string[], opts?: { allowNone?: boolean }): Promise<Tree[]>;
  /** Every command (for help-derived output: the man page, completions). */
  commands?: readonly CommandSpec[];
}

export interface OptionSpec {
  flags: string;
  description: string;
  default?: string | boolean;
}

export interface CommandOutput<T = unknown> {
  data: T;
  /** False makes the process exit 1 (some tree failed). */
  ok: boolean;
  /** Exit with this status instead (squashtree run passes on its command's). */
  exitCode?: number;
}

export interface CommandSpec<T = unknown> {
  name: string;
  summary: string;
  /** commander argument syntax, such as "[trees...]" or "<name>". */
  args?: string;
  options?: OptionSpec[];
  /** Needs root (mounts, loop devices); a function when that depends on the options. */
  root?: boolean | ((opts: Record<string, unknown>) => boolean);
  /** Left out of --help (internal entry points such as the portage hook). */
  hidden?: boolean;
  /** The rendered text is a roff page: on a terminal it is shown with man(1). */
  roff?: boolean;
  run(ctx: CliContext, args: string[], opts: Record<string, unknown>): Promise<CommandOutput<T>>;
  render(data: T): string;
}

/** Options every command takes; --help, the man page and completions list them from here. */
export const GLOBAL_OPTIONS: OptionSpec[] = [
  {
    flags: '-c, --config <file>',
    description: 'config file (default $SQUASHTREE_CONFIG or /etc/squashtree/squashtree.toml)',
  },
  {
    flags: '-s, --state-dir <dir>',
    description: 'runtime state dir (default $SQUASHTREE_STATE_DIR or /run/squashtree)',
  },
  {
    flags: '--user',
    description:
      'user mode (the default without root): config, state and images under the XDG dirs, fuse engine',
  },
  { flags: '--json', description: 'print data as JSON on stdout' },
  { flags: '-q, --quiet', description: 'print no progress' },
  {
    flags: '--wait <seconds>',
    description: 'how long to wait for another squashtree working on the same tree',
    default: '300',
  },
];

export function defineCommand<T>(spec: CommandSpec<T>): CommandSpec {
  return spec;
}
