/** doctor: check the kernel, the programs, the config and each tree's space and state. */
import { outColors as pc } from '../colors.js';
import { runDoctor, type DoctorReport } from '../../doctor/checks.js';
import { defineCommand } from '../spec.js';

const MARK = { ok: pc.green('ok  '), warn: pc.yellow('warn'), fail: pc.red('FAIL') };

function summary(r: DoctorReport): string {
  const n = (v: string): number => r.checks.filter((c) => c.verdict === v).length;
  const warnings = n('warn');
  const w = `${warnings} warning${warnings === 1 ? '' : 's'}`;
  if (!r.ok)
    return `${n('fail')} check(s) FAILED${warnings ? `, ${w}` : ''} (above, each with its fix)`;
  return warnings ? `no check failed; ${w} (above)` : 'all checks passed';
}

export const doctorCommand = defineCommand<DoctorReport>({
  name: 'doctor',
  summary: 'check kernel support, programs, the config and free space; each failure names its fix',
  run: async (ctx) => {
    let state: string | Error;
    try {
      state = ctx.stateDir;
    } catch (e) {
      state = e instanceof Error ? e : new Error(String(e));
    }
    const report = await runDoctor(ctx.configPath, state, ctx.storeRoot, ctx.configSource);
    return { data: report, ok: report.ok };
  },
  render: (r) =>
    [
      ...r.checks.map(
        (c) =>
          `${MARK[c.verdict]} ${c.check}: ${c.detail}${c.fix && c.verdict !== 'ok' ? `\n      fix: ${c.fix}` : ''}`,
      ),
      summary(r),
    ].join('\n'),
});
