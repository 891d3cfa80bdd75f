/** Portage's facts the tests reuse: its rsync options and where ../shared/corpus lives. */
import { fileURLToPath } from 'node:url';

export { PORTAGE_RSYNC } from '../../src/corpus/portage.js';

/** The real corpus beside the checkout (absent on a fresh clone: tests skip, saying so). */
export const CORPUS = fileURLToPath(new URL('../../../shared/corpus', import.meta.url));
