/**
 * The command line: parse, run one command's handler, print its data (text
 * or --json), turn errors into a message with code and hint. Exit status: 0
 * success, 1 failure, 2 usage error. main() returns the status instead of
 * exiting, so tests can import and call it.
 */
import { Command, CommanderError, Option } from 'commander';
import { errColors as pc } from './colors.js';
import { SquashtreeError, errorMessage, fromSystemError } from '../errors.js';
import { forgetLaunchEnv } from '../exec/launch-env.js';
import { killRunningChildren } from '../exec/run.js';
import { resolveGlobals, type GlobalOptions } from './context.js';
import { errorRecord } from './per-tree.js';
import { GLOBAL_OPTIONS, type CommandOutput, type CommandSpec } from './spec.js';
import { COMMANDS } from './commands/index.js';

import { VERSION } from './version.js';
import { showWithMan } from './pager.js';
import { isRoot, preferUserEngines } from '../mount/engine.js';

export { VERSION };

function printError(err: unknown, json: boolean): void {
  const e = fromSystemError(err) ?? err;
  if (json) {
    process.stdout.write(`${JSON.stringify({ error: errorRecord(e) }, null, 2)}\n`);
  }
  if (e instanceof SquashtreeError) {
    const lines = [`${pc.red('error')} ${e.code}: ${e.message}`];
    if (e.command) lines.push(`  command: ${e.command}`);
    if (e.stderr && !e.message.includes(e.stderr.trim())) {
      lines.push(
        ...e.stderr
          .trim()
          .split('\n')
          .slice(-8)
          .map((l) => `  | ${l}`),
      );
    }
    if (e.hint) lines.push(`  ${pc.cyan('hint:')} ${e.hint}`);
    process.stderr.write(`${lines.join('\n')}\n`);
  } else {
    process.stderr.write(
      `${pc.red('internal error')}: ${e instanceof Error ? (e.stack ?? e.message) : errorMessage(e)}\n`,
    );
  }
}

const HELP_FOOTER = `
--json prints the result (or the error) as JSON on stdout; progress and messages go to stderr.
Exit status: 0 success, 1 failure, 2 usage error. A failure names its code (E_BUSY, ...) and a hint.
The whole manual: squashtree man.`;

export function buildProgram(
  onRun: (
    spec: CommandSpec,
    args: string[],
    opts: Record<string, unknown>,
    globals: GlobalOptions,
  ) => void,
): Command {
  const program = new Command('squashtree')
    .description(
      'Keep large trees of small files in SquashFS images, writable through OverlayFS, committed in layers.',
    )
    .version(VERSION)
    .showHelpAfterError('(run squashtree --help for usage)')
    // Subcommands copy these settings when they are made: every --help lists --json and the rest.
    .configureHelp({ showGlobalOptions: true })
    .addHelpText('afterAll', HELP_FOOTER)
    .exitOverride();
  for (const o of GLOBAL_OPTIONS) {
    const opt = new Option(o.flags, o.description);
    if (o.default !== undefined) opt.default(o.default);
    program.addOption(opt);
  }
  for (const spec of COMMANDS) {
    const cmd = program
      .command(spec.name, { hidden: spec.hidden === true })
      .description(spec.summary)
      .exitOverride();
    if (spec.args) cmd.arguments(spec.args);
    for (const o of spec.options ?? []) {
      const opt = new Option(o.flags, o.description);
      if (o.default !== undefined) opt.default(o.default);
      cmd.addOption(opt);
    }
    cmd.action((...all: unknown[]) => {
      const command = all[all.length - 1] as Command;
      const opts = command.opts();
      const positional = all
        .slice(0, -2)
        .flatMap((a) => (Array.isArray(a) ? (a as string[]) : typeof a === 'string' ? [a] : []));
      onRun(spec, positional, opts, program.opts<GlobalOptions>());
    });
  }
  return program;
}

export async function main(argv: readonly string[]): Promise<number> {
  forgetLaunchEnv();
  let chosen:
    | { spec: CommandSpec; args: string[]; opts: Record<string, unknown>; globals: GlobalOptions }
    | undefined;
  const program = buildProgram((spec, args, opts, globals) => {
    chosen = { spec, args, opts, globals };
  });
  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      if (
        e.code === 'commander.helpDisplayed' ||
        e.code === 'commander.version' ||
        e.code === 'commander.help'
      )
        return 0;
      return 2;
    }
    throw e;
  }
  if (!chosen) {
    program.outputHelp();
    return 2;
  }
  const { spec, args, opts, globals } = chosen;
  const json = Boolean(globals.json);
  const onSignal = (sig: NodeJS.Signals): void => {
    // Let children (mksquashfs, cp) stop; the handler's finally blocks remove temp files.
    process.stderr.write(`squashtree: ${sig} received, stopping and cleaning up\n`);
    killRunningChildren('SIGTERM', sig);
    process.exitCode = 1;
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const ctx = Object.assign(resolveGlobals(globals), { commands: COMMANDS });
    if (ctx.userMode) preferUserEngines();
    const needsRoot = typeof spec.root === 'function' ? spec.root(opts) : spec.root === true;
    if (needsRoot && !isRoot() && !ctx.userMode) {
      throw new SquashtreeError(
        'E_NOT_ROOT',
        `${spec.name} needs root: it mounts filesystems and attaches loop devices`,
        {
          hint: `run it as root (sudo squashtree ${spec.name} ...)`,
        },
      );
    }
    const out: CommandOutput = await spec.run(ctx, args, opts);
    if (json) process.stdout.write(`${JSON.stringify(out.data, null, 2)}\n`);
    else {
      const text = spec.render(out.data);
      const shown = spec.roff === true && process.stdout.isTTY && (await showWithMan(`${text}\n`));
      if (spec.roff === true && process.stdout.isTTY && !shown)
        process.stderr.write(
          'squashtree: man(1) could not show the page; this is its roff source\n',
        );
      if (text && !shown) process.stdout.write(`${text}\n`);
    }
    return out.exitCode ?? (out.ok ? 0 : 1);
  } catch (e) {
    printError(e, json);
    return e instanceof SquashtreeError ? e.exitCode : 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
