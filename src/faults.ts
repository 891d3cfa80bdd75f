/**
 * Named fault points for the crash tests: at a named point the process kills
 * itself with SIGKILL. It takes two environment variables, one naming the
 * point and one a fixed acknowledgement, so no production setting can turn
 * it on by accident.
 *
 * Hold points are their test-side siblings: a test that must act while a
 * command is at a known step (send a signal while mksquashfs runs) holds the
 * command there instead of sleeping and hoping. The command announces the
 * hold on stderr and waits until the release file appears or a signal
 * interrupts it. Mutations make a named mistake on purpose, so a test can
 * see the check that must catch it do so.
 */
import { existsSync } from 'node:fs';
import { interruptSignal } from './exec/run.js';

const ACK = 'kill-me-i-am-a-test';

export type FaultPoint =
  | 'init:after-image'
  | 'init:after-manifest'
  | 'start:after-images'
  | 'start:after-upper'
  | 'start:after-overlay'
  | 'commit:after-capture'
  | 'commit:after-pack'
  | 'commit:after-verify'
  | 'commit:after-publish'
  | 'commit:after-snapshot'
  | 'commit:after-manifest'
  | 'commit:after-session'
  | 'compact:after-pack'
  | 'compact:after-snapshot'
  | 'compact:after-manifest'
  | 'stop:after-commit'
  | 'stop:after-overlay-umount'
  | 'stop:after-upper-umount'
  | 'rollback:before-manifest'
  | 'gc:after-manifest';

export type HoldPoint = 'commit:packing';

/** Deliberate mistakes, for tests of the checks that must catch them. */
export type Mutation = 'plan:drop-whiteout';

export function fault(point: FaultPoint): void {
  if (process.env.SQUASHTREE_TEST_FAULT !== point) return;
  if (process.env.SQUASHTREE_TEST_FAULT_ACK !== ACK) return;
  process.kill(process.pid, 'SIGKILL');
}

/** The line a held command prints, for tests to wait for. */
export function holdMessage(point: HoldPoint): string {
  return `squashtree test hold: ${point}`;
}

/**
 * At SQUASHTREE_TEST_HOLD=point (with the acknowledgement): print the hold
 * message and wait until SQUASHTREE_TEST_HOLD_RELEASE names a file that
 * exists, or SIGINT/SIGTERM arrives. The wait polls; only how soon it ends
 * depends on the clock, never what happens next.
 */
export async function hold(point: HoldPoint): Promise<void> {
  if (process.env.SQUASHTREE_TEST_HOLD !== point) return;
  if (process.env.SQUASHTREE_TEST_FAULT_ACK !== ACK) return;
  const release = process.env.SQUASHTREE_TEST_HOLD_RELEASE;
  const signal = interruptSignal();
  process.stderr.write(`${holdMessage(point)}\n`);
  await new Promise<void>((resolve) => {
    const done = (): void => {
      clearInterval(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setInterval(() => {
      if (release !== undefined && existsSync(release)) done();
    }, 20);
    if (signal.aborted) done();
    else signal.addEventListener('abort', done);
  });
}

/** At SQUASHTREE_TEST_MUTATION=name (with the acknowledgement): make the named mistake. */
export function mutation(name: Mutation): boolean {
  return (
    process.env.SQUASHTREE_TEST_MUTATION === name && process.env.SQUASHTREE_TEST_FAULT_ACK === ACK
  );
}
