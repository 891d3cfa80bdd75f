/** One finding of doctor: passes, warns or fails, and a failure says how to fix it. */
export type Verdict = 'ok' | 'warn' | 'fail';

export interface Check {
  check: string;
  verdict: Verdict;
  detail: string;
  fix?: string;
}

export interface DoctorReport {
  ok: boolean;
  checks: Check[];
}

export const ok = (check: string, detail: string): Check => ({ check, verdict: 'ok', detail });
export const bad = (
  check: string,
  detail: string,
  fix: string,
  verdict: Verdict = 'fail',
): Check => ({
  check,
  verdict,
  detail,
  fix,
});
