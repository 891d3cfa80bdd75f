/**
 * How long steps show themselves: a progress bar on a terminal, plain lines
 * elsewhere (logs, cron, portage hooks), nothing with --quiet. Everything
 * goes to stderr so stdout stays clean for data (--json).
 */
import cliProgress from 'cli-progress';
import { errColors as pc } from './colors.js';
import type { Reporter } from '../lifecycle/context.js';

export function makeReporter(opts: {
  quiet: boolean;
  tree?: string;
}): Reporter & { finish(): void } {
  const tty = process.stderr.isTTY;
  // SQUASHTREE_DEBUG=1 stamps each line with the milliseconds since start and
  // the resident memory (to see where time and memory go).
  const t0 = performance.now();
  const stamp = (): string =>
    process.env.SQUASHTREE_DEBUG
      ? `[${Math.round(performance.now() - t0)} ms, ${Math.round(process.memoryUsage.rss() / 2 ** 20)} MiB] `
      : '';
  const prefix = opts.tree ? `${opts.tree}: ` : '';
  let bar: cliProgress.SingleBar | undefined;
  let lastPlain = -1;
  const finish = (): void => {
    if (bar) {
      bar.stop();
      bar = undefined;
    }
    lastPlain = -1;
  };
  if (opts.quiet) {
    return {
      step: () => undefined,
      progress: () => undefined,
      warn: (m) => process.stderr.write(`${prefix}warning: ${m}\n`),
      finish,
    };
  }
  return {
    step(message) {
      finish();
      process.stderr.write(`${stamp()}${prefix}${message}\n`);
    },
    progress(label, fraction) {
      const pct = Math.round(fraction * 100);
      if (tty) {
        if (!bar) {
          bar = new cliProgress.SingleBar(
            {
              format: `${prefix}${label} [{bar}] {percentage}%`,
              hideCursor: true,
              stream: process.stderr,
              clearOnComplete: true,
            },
            cliProgress.Presets.shades_classic,
          );
          bar.start(100, 0);
        }
        bar.update(pct);
      } else if (pct >= lastPlain + 25 || (pct === 100 && lastPlain !== 100)) {
        // Plain logs get a line per quarter, not a line per percent.
        lastPlain = pct - (pct % 25);
        process.stderr.write(`${prefix}${label}: ${pct}%\n`);
      }
    },
    warn(message) {
      finish();
      process.stderr.write(`${prefix}${pc.yellow('warning:')} ${message}\n`);
    },
    finish,
  };
}
