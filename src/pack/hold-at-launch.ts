/**
 * Imported first by the launcher (bin/squashtree.js), so that V8's young
 * generation is held before the CLI's bundle loads (heap.ts says why). An
 * import, not a call before `await import()`: static imports run in order
 * and load the bundle 10 ms sooner.
 */
import { holdYoungGeneration } from './heap.js';

holdYoungGeneration();
