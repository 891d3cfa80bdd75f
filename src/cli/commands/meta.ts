/** completion, man and the tree-name lister completions call. */
import { SquashtreeError } from '../../errors.js';
import { bashCompletion, manPage, zshCompletion } from '../help-text.js';
import { defineCommand } from '../spec.js';
import { VERSION } from '../version.js';

export const completionCommand = defineCommand<{ script: string }>({
  name: 'completion',
  summary: 'print a shell completion script: completion bash | completion zsh',
  args: '<shell>',
  run: (ctx, [shell]) => {
    const cmds = ctx.commands ?? [];
    if (shell === 'bash')
      return Promise.resolve({ data: { script: bashCompletion(cmds) }, ok: true });
    if (shell === 'zsh')
      return Promise.resolve({ data: { script: zshCompletion(cmds) }, ok: true });
    throw new SquashtreeError('E_USAGE', `no completion for ${shell ?? '(none)'}`, {
      hint: 'squashtree completion bash, or completion zsh',
    });
  },
  render: (d) => d.script.trimEnd(),
});

export const manCommand = defineCommand<{ page: string }>({
  name: 'man',
  summary: 'show the squashtree(8) man page (through a pipe: its roff source)',
  roff: true,
  run: (ctx) => Promise.resolve({ data: { page: manPage(ctx.commands ?? [], VERSION) }, ok: true }),
  render: (d) => d.page.trimEnd(),
});

export const treesCommand = defineCommand<{ trees: string[] }>({
  name: '_trees',
  summary: 'list configured tree names (for completions)',
  hidden: true,
  run: async (ctx) => ({
    data: { trees: (await ctx.loadConfig()).trees.map((t) => t.name) },
    ok: true,
  }),
  render: (d) => d.trees.join('\n'),
});
