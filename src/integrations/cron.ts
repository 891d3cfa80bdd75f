/** /etc/cron.d/squashtree: periodic commits where there are no systemd timers. */
import { commandLine, header, type GeneratedFile, type Invocation } from './files.js';

export const CRON_PATH = '/etc/cron.d/squashtree';

export function cronFiles(inv: Invocation): GeneratedFile[] {
  const content = `${header('cron')}SHELL=/bin/sh
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# minute hour day month weekday user command
17 * * * * root ${commandLine(inv)} --quiet commit
`;
  return [{ path: CRON_PATH, content, mode: 0o644 }];
}
