/**
 * systemd units: a oneshot service that stays "active" while the trees are
 * mounted (stop commits and unmounts), in the host's mount namespace, and a
 * timer for periodic commits.
 */
import { commandLine, header, type GeneratedFile, type Invocation } from './files.js';
import type { TreeConfig } from '../config/schema.js';

export const UNIT_DIR = '/etc/systemd/system';
export const SERVICE = `${UNIT_DIR}/squashtree.service`;
export const COMMIT_SERVICE = `${UNIT_DIR}/squashtree-commit.service`;
export const COMMIT_TIMER = `${UNIT_DIR}/squashtree-commit.timer`;

/** systemd wants its own quoting: the command line is already shell-safe for simple paths. */
function exec(inv: Invocation, args: string): string {
  return `${commandLine(inv)} ${args}`;
}

export function systemdFiles(inv: Invocation, trees: readonly TreeConfig[]): GeneratedFile[] {
  const mountsFor = [
    ...new Set(trees.flatMap((t) => [t.store, ...(t.upper.kind === 'dir' ? [t.upper.path] : [])])),
  ];
  const service = `${header('systemd')}
[Unit]
Description=squashtree: SquashFS trees with a writable overlay
Documentation=man:squashtree(8)
After=local-fs.target
${mountsFor.length ? `RequiresMountsFor=${mountsFor.join(' ')}\n` : ''}Before=multi-user.target cron.service cronie.service
Wants=local-fs.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=${exec(inv, '--quiet start')}
ExecStop=${exec(inv, '--quiet stop')}
ExecReload=${exec(inv, '--quiet commit')}
# Mounts must land in the host's namespace, not a private one.
PrivateMounts=no
# A stop commits first; raise this with a drop-in (systemctl edit squashtree) for huge trees.
TimeoutStopSec=10min
TimeoutStartSec=10min

[Install]
WantedBy=multi-user.target
`;
  const commit = `${header('systemd')}
[Unit]
Description=squashtree: commit pending changes of every tree
Documentation=man:squashtree(8)
Requisite=squashtree.service
After=squashtree.service

[Service]
Type=oneshot
ExecStart=${exec(inv, '--quiet commit')}
PrivateMounts=no
Nice=10
IOSchedulingClass=idle
`;
  const timer = `${header('systemd')}
[Unit]
Description=squashtree: periodic commits
Documentation=man:squashtree(8)

[Timer]
OnCalendar=hourly
RandomizedDelaySec=10min
Persistent=true

[Install]
WantedBy=timers.target
`;
  return [
    { path: SERVICE, content: service, mode: 0o644 },
    { path: COMMIT_SERVICE, content: commit, mode: 0o644 },
    { path: COMMIT_TIMER, content: timer, mode: 0o644 },
  ];
}
