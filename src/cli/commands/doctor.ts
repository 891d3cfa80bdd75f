/** doctor: check the kernel, the programs, the config and each tree's space and state. */
import { outColors as pc } from '../colors.js';
import { runDoctor, type DoctorReport } from '../../doctor/checks.js';
import { defineCommand } from '../spec.js';

const MARK = { ok: pc.green('ok  '), warn: pc.yellow('warn'), fail: pc.red('FAIL') };

export const doctorCommand = defineCommand<DoctorReport>({
  name: 'doctor',
  summary: 'check kernel support, programs, the config and free space; each failure names its fix',
  run: async (ctx) => {
    const report = await runDoctor(ctx.configPath, ctx.stateDir, ctx.storeRoot, ctx.configSource);
    return { data: report, ok: report.ok };
  },
  render: (r) =>
    [
      ...r.checks.map(
        (c) =>
          `${MARK[c.verdict]} ${c.check}: ${c.detail}${c.fix && c.verdict !== 'ok' ? `\n      fix: ${c.fix}` : ''}`,
      ),
      r.ok ? 'all checks passed' : 'some checks failed',
    ].join('\n'),
});
