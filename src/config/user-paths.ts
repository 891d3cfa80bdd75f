/**
 * Where squashtree keeps things for a user without root (--user, or any
 * non-root user): the XDG base directories, so a user's trees never touch
 * /etc, /run or /var.
 *
 *   config  $XDG_CONFIG_HOME/squashtree/squashtree.toml  (~/.config/...)
 *   state   $XDG_RUNTIME_DIR/squashtree                  (0700; /run/user/UID)
 *   images  $XDG_DATA_HOME/squashtree/NAME               (~/.local/share/...)
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { SquashtreeError } from '../errors.js';

export interface UserPaths {
  config: string;
  stateDir: string;
  storeRoot: string;
}

/** An XDG variable counts only when it holds an absolute path (the spec says to ignore others). */
function xdg(env: NodeJS.ProcessEnv, key: string): string | undefined {
  const v = env[key];
  return v && isAbsolute(v) ? v : undefined;
}

export function userPaths(env: NodeJS.ProcessEnv = process.env): UserPaths {
  const home = env.HOME && isAbsolute(env.HOME) ? env.HOME : homedir();
  const runtime =
    xdg(env, 'XDG_RUNTIME_DIR') ??
    (existsSync(`/run/user/${process.getuid?.() ?? 0}`)
      ? `/run/user/${process.getuid?.() ?? 0}`
      : undefined);
  if (!runtime) {
    throw new SquashtreeError(
      'E_USAGE',
      'user mode needs $XDG_RUNTIME_DIR (a private, per-login directory) for its runtime state',
      {
        hint: 'log in through a session that sets it (systemd-logind does), or give --state-dir DIR (a directory only you can write)',
      },
    );
  }
  return {
    config: join(
      xdg(env, 'XDG_CONFIG_HOME') ?? join(home, '.config'),
      'squashtree',
      'squashtree.toml',
    ),
    stateDir: join(runtime, 'squashtree'),
    storeRoot: join(xdg(env, 'XDG_DATA_HOME') ?? join(home, '.local', 'share'), 'squashtree'),
  };
}
