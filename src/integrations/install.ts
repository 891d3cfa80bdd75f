/** install / uninstall TARGET: which files each target writes, and the portage setting offer. */
import { realpathSync } from 'node:fs';
import { SquashtreeError } from '../errors.js';
import { launchWords } from '../exec/launch-env.js';
import type { TreeConfig } from '../config/schema.js';
import { cronFiles, CRON_PATH } from './cron.js';
import {
  removeGenerated,
  writeGenerated,
  type FileOutcome,
  type GeneratedFile,
  type Invocation,
} from './files.js';
import { openrcFiles, OPENRC_PATH } from './openrc.js';
import {
  applyHardlinkFix,
  checkHardlinkFixRemovable,
  hardlinkFix,
  hookFiles,
  HOOK_PATH,
  removeHardlinkFix,
  type HardlinkFix,
} from './portage.js';
import { COMMIT_SERVICE, COMMIT_TIMER, SERVICE, systemdFiles } from './systemd.js';

export const TARGETS = ['openrc', 'systemd', 'portage', 'cron'] as const;
export type Target = (typeof TARGETS)[number];

export function checkTarget(t: string): Target {
  if ((TARGETS as readonly string[]).includes(t)) return t as Target;
  throw new SquashtreeError('E_USAGE', `unknown install target ${t}`, {
    hint: `choose one of ${TARGETS.join(', ')}`,
  });
}

/**
 * How generated files call squashtree: `exec` as given (packagers), else
 * this node and script, with the environment the launcher sets.
 */
export function thisInvocation(configPath: string, stateDir: string, exec?: string): Invocation {
  if (exec) return { exec: exec.split(/\s+/).filter(Boolean), config: configPath, stateDir };
  const bin = process.argv[1] ?? 'squashtree';
  let real = bin;
  try {
    real = realpathSync(bin);
  } catch {
    // keep what we were started as
  }
  return { exec: launchWords(process.execPath, real), config: configPath, stateDir };
}

function filesFor(target: Target, inv: Invocation, trees: readonly TreeConfig[]): GeneratedFile[] {
  switch (target) {
    case 'openrc':
      return openrcFiles(inv);
    case 'systemd':
      return systemdFiles(inv, trees);
    case 'portage':
      return hookFiles(inv);
    case 'cron':
      return cronFiles(inv);
  }
}

const PATHS: Record<Target, string[]> = {
  openrc: [OPENRC_PATH],
  systemd: [SERVICE, COMMIT_SERVICE, COMMIT_TIMER],
  portage: [HOOK_PATH],
  cron: [CRON_PATH],
};

export interface InstallOptions {
  root: string;
  force: boolean;
  /** Accept the portage setting without asking. */
  yes: boolean;
  /** Ask the user (a terminal); undefined: no one to ask. */
  ask?: (question: string) => Promise<boolean>;
}

export interface InstallResult {
  target: Target;
  files: FileOutcome[];
  /** The repos.conf change install portage offers, and whether it was written. */
  setting?: { fix: HardlinkFix; written: boolean; why: string };
  next: string[];
}

export async function install(
  target: Target,
  inv: Invocation,
  trees: readonly TreeConfig[],
  opts: InstallOptions,
): Promise<InstallResult> {
  const files = await writeGenerated(opts.root, filesFor(target, inv, trees), opts.force);
  const result: InstallResult = { target, files, next: [] };
  if (target === 'portage') {
    const fix = await hardlinkFix(opts.root, trees);
    if (fix) {
      let written = false;
      let why: string;
      if (opts.yes) {
        written = true;
        why = 'accepted with --yes';
      } else if (opts.ask) {
        written = await opts.ask(
          `Write sync-allow-hardlinks = no for ${fix.repos.join(', ')} to ${fix.file}?`,
        );
        why = written ? 'accepted' : 'declined';
      } else {
        why = 'not written: no terminal to ask; run again with --yes to write it';
      }
      if (written) await applyHardlinkFix(fix);
      result.setting = { fix, written, why };
    }
  }
  if (target === 'openrc')
    result.next.push('rc-update add squashtree boot', 'rc-service squashtree start');
  if (target === 'systemd')
    result.next.push(
      'systemctl daemon-reload',
      'systemctl enable --now squashtree.service squashtree-commit.timer',
    );
  return result;
}

export interface UninstallResult {
  target: Target;
  files: FileOutcome[];
  settings: string[];
}

export async function uninstall(
  target: Target,
  root: string,
  force = false,
): Promise<UninstallResult> {
  if (target === 'portage') await checkHardlinkFixRemovable(root, force);
  const files = await removeGenerated(root, PATHS[target], force);
  const settings = target === 'portage' ? await removeHardlinkFix(root) : [];
  return { target, files, settings };
}
