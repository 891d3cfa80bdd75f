/**
 * Named fault points for the crash tests: at a named point the process kills
 * itself with SIGKILL. It takes two environment variables, one naming the
 * point and one a fixed acknowledgement, so no production setting can turn
 * it on by accident.
 */
const ACK = 'kill-me-i-am-a-test';

export type FaultPoint =
  | 'init:after-image'
  | 'init:after-manifest'
  | 'start:after-images'
  | 'start:after-upper'
  | 'start:after-overlay'
  | 'commit:after-capture'
  | 'commit:after-pack'
  | 'commit:after-publish'
  | 'commit:after-manifest'
  | 'commit:after-session'
  | 'compact:after-pack'
  | 'compact:after-manifest'
  | 'stop:after-commit'
  | 'stop:after-overlay-umount'
  | 'stop:after-upper-umount'
  | 'rollback:before-manifest'
  | 'gc:after-manifest';

export function fault(point: FaultPoint): void {
  if (process.env.SQUASHTREE_TEST_FAULT !== point) return;
  if (process.env.SQUASHTREE_TEST_FAULT_ACK !== ACK) return;
  process.kill(process.pid, 'SIGKILL');
}
