/** Portage's facts the tests reuse: its rsync options and where ../shared/corpus lives. */
import { fileURLToPath } from 'node:url';

/** PORTAGE_RSYNC_OPTS from portage's make.globals, minus the network ones. */
export const PORTAGE_RSYNC = [
  '--recursive',
  '--links',
  '--safe-links',
  '--perms',
  '--times',
  '--omit-dir-times',
  '--force',
  '--whole-file',
  '--delete',
  '--exclude=/distfiles',
  '--exclude=/local',
  '--exclude=/packages',
  '--exclude=/.git',
];

/** The real corpus beside the checkout (absent on a fresh clone: tests skip, saying so). */
export const CORPUS = fileURLToPath(new URL('../../../shared/corpus', import.meta.url));
