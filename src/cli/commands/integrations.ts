/** install, uninstall, run and the portage hook entry point. */
import { createInterface } from 'node:readline/promises';
import { SquashtreeError } from '../../errors.js';
import { portageHook, type HookResult } from '../../integrations/hook.js';
import {
  checkTarget,
  install,
  thisInvocation,
  uninstall,
  TARGETS,
  type InstallResult,
  type UninstallResult,
} from '../../integrations/install.js';
import type { RunResult } from '../../lifecycle/run-command.js';
import { Tree } from '../../lifecycle/tree.js';
import { publishAfterCommit, renderAutoPublish, type AutoPublish } from '../publish-after.js';
import { makeReporter } from '../reporter.js';
import { renderCommit } from './lifecycle.js';
import { defineCommand } from '../spec.js';

async function ask(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
  } finally {
    rl.close();
  }
}

const indent = (text: string): string =>
  text
    .trimEnd()
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');

export const installCommand = defineCommand<InstallResult>({
  name: 'install',
  summary: `write integration files: ${TARGETS.join(', ')} (shows what it writes)`,
  args: '<target>',
  options: [
    {
      flags: '--root <dir>',
      description: 'install below this directory instead of / (packaging, tests)',
      default: '/',
    },
    { flags: '--force', description: 'replace a file that squashtree did not write' },
    {
      flags: '-y, --yes',
      description: 'accept the portage setting (sync-allow-hardlinks = no) without asking',
    },
    {
      flags: '--exec <command>',
      description:
        'how generated files call squashtree (default: this node and script; packagers: /usr/bin/squashtree)',
    },
  ],
  run: async (ctx, [target], o) => {
    const t = checkTarget(target ?? '');
    const config = await ctx.loadConfig();
    const result = await install(
      t,
      thisInvocation(ctx.configPath, ctx.stateDir, o.exec as string | undefined),
      config.trees,
      {
        root: o.root as string,
        force: Boolean(o.force),
        yes: Boolean(o.yes),
        ...(process.stdin.isTTY && process.stderr.isTTY ? { ask } : {}),
      },
    );
    return { data: result, ok: true };
  },
  render: (r) => {
    const lines: string[] = [];
    for (const f of r.files) {
      lines.push(`${f.action} ${f.path}`);
      if (f.content && f.action !== 'unchanged') lines.push(indent(f.content));
    }
    if (r.setting) {
      lines.push(
        `${r.setting.written ? 'wrote' : 'would write'} ${r.setting.fix.append ? 'to the end of ' : ''}${r.setting.fix.file} (${r.setting.why}):`,
      );
      lines.push(indent(r.setting.fix.text));
    }
    if (r.next.length) lines.push('next:', ...r.next.map((n) => `  ${n}`));
    return lines.join('\n');
  },
});

export const uninstallCommand = defineCommand<UninstallResult>({
  name: 'uninstall',
  summary: 'remove the files install wrote (never a file squashtree did not write)',
  args: '<target>',
  options: [{ flags: '--root <dir>', description: 'the root install used', default: '/' }],
  run: async (_ctx, [target], o) => {
    const result = await uninstall(checkTarget(target ?? ''), o.root as string);
    return { data: result, ok: true };
  },
  render: (r) =>
    [
      ...r.files.map((f) =>
        f.action === 'kept-foreign'
          ? `kept ${f.path} (not written by squashtree)`
          : `${f.action} ${f.path}`,
      ),
      ...r.settings.map((s) => `removed ${s}`),
    ].join('\n'),
});

export const runCommand = defineCommand<RunResult & { publish?: AutoPublish }>({
  name: 'run',
  summary:
    "run NAME -- COMMAND...: run a command (emerge --sync) holding the tree's lock; commit when it succeeds",
  args: '<name> <command...>',
  root: true,
  run: async (ctx, [name, ...command]) => {
    if (!name || command.length === 0) {
      throw new SquashtreeError('E_USAGE', 'run needs a tree and a command', {
        hint: 'squashtree run gentoo -- emerge --sync',
      });
    }
    const [tree] = await ctx.trees([name]);
    if (!tree) throw new SquashtreeError('E_NO_TREE', `no tree named ${name}`);
    const r = await tree.run(command);
    const publish = await publishAfterCommit(tree, r.commit?.committed === true);
    // The command's status; a failed publish after it (the commit stands) is exit 1.
    const exitCode = r.exitCode !== 0 ? r.exitCode : publish?.ok === false ? 1 : 0;
    return { data: publish ? { ...r, publish } : r, ok: exitCode === 0, exitCode };
  },
  render: (r) =>
    [
      ...(r.started ? [`${r.tree}: started the tree for the command`] : []),
      r.exitCode === 0
        ? r.commit
          ? renderCommit(r.commit)
          : ''
        : `${r.tree}: ${r.command.join(' ')} exited with status ${r.exitCode}; nothing committed`,
      renderAutoPublish(r.tree, r.publish),
    ]
      .filter(Boolean)
      .join('\n'),
});

export const hookCommand = defineCommand<HookResult & { publish?: AutoPublish }>({
  name: 'hook',
  summary: 'entry point of generated hooks: hook portage NAME SYNC-URI LOCATION',
  args: '<kind> [args...]',
  hidden: true,
  root: true,
  run: async (ctx, [kind, repository, , location]) => {
    if (kind !== 'portage' || !repository || !location) {
      throw new SquashtreeError('E_USAGE', 'usage: squashtree hook portage NAME SYNC-URI LOCATION');
    }
    const config = await ctx.loadConfig();
    let opened: Tree | undefined;
    const r = await portageHook(repository, location, config.trees, (t) => {
      opened = new Tree(
        t,
        ctx.stateDir,
        makeReporter({ quiet: true, tree: t.name }),
        ctx.waitSeconds,
      );
      return opened;
    });
    const publish = opened ? await publishAfterCommit(opened, r.action === 'committed') : undefined;
    return { data: publish ? { ...r, publish } : r, ok: publish?.ok !== false };
  },
  render: (r) => {
    switch (r.action) {
      case 'ignored':
        return '';
      case 'deferred':
        return `squashtree: ${r.tree ?? ''}: squashtree run commits when the sync is done`;
      case 'not-mounted':
        return `squashtree: warning: tree ${r.tree ?? ''} is not mounted, so this sync wrote into the plain directory ${r.location}; run squashtree start ${r.tree ?? ''}`;
      default:
        return [
          r.commit ? `squashtree: ${renderCommit(r.commit)}` : '',
          r.tree ? renderAutoPublish(`squashtree: ${r.tree}`, r.publish) : '',
        ]
          .filter(Boolean)
          .join('\n');
    }
  },
});
