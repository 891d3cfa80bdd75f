#!/usr/bin/env -S MALLOC_MMAP_THRESHOLD_=262144 node
// Thin launcher: the CLI is bundled into dist/squashtree.mjs by `npm ci`
// (the prepare script) or `npm run build`. The first import holds V8's
// young generation before the bundle loads (src/pack/heap.ts says why). The
// first line sets glibc's malloc policy, read only at start
// (src/exec/launch-env.ts says why and keeps the line's text).
import '../dist/pack/hold-at-launch.js';
import { main } from '../dist/squashtree.mjs';

process.exitCode = await main(process.argv.slice(2));
