/**
 * The shape every command has: names, help, arguments, options and a
 * handler that returns data. Printing is done by the command's render
 * function (text) or by main (JSON), never by the handler.
 */
import type { CliContext } from './context.js';

export interface OptionSpec {
  flags: string;
  description: string;
  default?: string | boolean;
}

export interface CommandOutput<T = unknown> {
  data: T;
  /** False makes the process exit 1 (some tree failed). */
  ok: boolean;
}

export interface CommandSpec<T = unknown> {
  name: string;
  summary: string;
  /** commander argument syntax, such as "[trees...]" or "<name>". */
  args?: string;
  options?: OptionSpec[];
  /** Needs root (mounts, loop devices). */
  root?: boolean;
  run(ctx: CliContext, args: string[], opts: Record<string, unknown>): Promise<CommandOutput<T>>;
  render(data: T): string;
}

export function defineCommand<T>(spec: CommandSpec<T>): CommandSpec {
  return spec;
}
