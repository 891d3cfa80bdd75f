/** demo: the whole lifecycle on a throwaway tree, with timings. */
import { runDemo, type DemoResult } from '../../demo/demo.js';
import { makeReporter } from '../reporter.js';
import { defineCommand } from '../spec.js';

export const demoCommand = defineCommand<DemoResult>({
  name: 'demo',
  summary:
    'run init, start, a simulated sync, commit, stop, start and a content check on a throwaway tree',
  root: true,
  options: [
    {
      flags: '--packages <n>',
      description: 'packages per category (40 categories-worth by default)',
    },
    {
      flags: '--keep',
      description: 'keep the temp dir afterwards (everything is unmounted anyway)',
    },
  ],
  run: async (ctx, _args, o) => {
    const reporter = makeReporter({ quiet: ctx.quiet });
    const r = await runDemo({
      reporter,
      keep: Boolean(o.keep),
      ...(o.packages ? { packagesPerCategory: Number(o.packages) } : {}),
    });
    return { data: r, ok: r.identical };
  },
  render: (r) =>
    [
      '',
      'squashtree demo: summary',
      ...r.steps.map((s) => `  ${s.step.padEnd(66)} ${String(Math.round(s.ms)).padStart(6)} ms`),
      '',
      `  tree: ${r.treeFiles} files, ${(r.treeBytes / 1e6).toFixed(1)} MB on disk -> ${(r.imageBytes / 1e6).toFixed(2)} MB image`,
      `  commit after the sync: ${Math.round(r.commitMs)} ms (layer ${(r.layerBytes / 1024).toFixed(0)} KiB); full re-pack: ${Math.round(r.fullRepackMs)} ms`,
      `  content after stop/start: ${r.identical ? 'identical to the expected tree' : 'DIFFERENT (this is a bug)'}`,
      `  ${r.cleanedUp ? `removed ${r.workDir} and everything mounted below it` : `kept ${r.workDir}`}`,
    ].join('\n'),
});
