/**
 * Where the config path came from. A path the user gave (--config,
 * SQUASHTREE_CONFIG) must exist: a mistyped one in a cron job or a unit
 * must fail, not pass as "no trees configured" and do nothing forever.
 */
import { SquashtreeError } from '../errors.js';

export type ConfigSource = '--config' | 'SQUASHTREE_CONFIG' | 'default';

export function missingConfig(path: string, source: ConfigSource): SquashtreeError {
  return new SquashtreeError(
    'E_CONFIG_MISSING',
    `the config ${path} (given with ${source}) does not exist`,
    {
      path,
      hint: `check the path given with ${source}; squashtree --config ${path} init NAME --dir DIR creates it`,
    },
  );
}
