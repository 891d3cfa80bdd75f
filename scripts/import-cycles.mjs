#!/usr/bin/env node
// Import cycles in src/, found by madge: every cycle, marked "type-only"
// when it vanishes once `import type` is left out (those cost nothing at
// run time, but still tangle the layout). Fails on a cycle at run time;
// with --strict (as `npm run cycles` runs it), on any cycle.
// Usage: node scripts/import-cycles.mjs [--strict]
import madge from 'madge';

const root = new URL('..', import.meta.url).pathname;
const strict = process.argv.includes('--strict');
const base = { fileExtensions: ['ts'], tsConfig: `${root}tsconfig.json`, baseDir: `${root}src` };

const graph = async (skipTypeImports) =>
  madge(`${root}src`, { ...base, detectiveOptions: { ts: { skipTypeImports } } });
const all = await graph(false);
const runtime = (await graph(true)).circular();
const key = (c) => [...c].sort().join(' ');
const atRuntime = new Set(runtime.map(key));
const cycles = all.circular();

const modules = Object.keys(all.obj()).length;
const skipped = all.warnings().skipped;
if (skipped.length > 0) console.log(`unresolved imports (not in the graph): ${skipped.join(', ')}`);
for (const c of cycles) {
  console.log(
    `${atRuntime.has(key(c)) ? 'cycle' : 'cycle (type-only)'}: ${[...c, c[0]].join(' -> ')}`,
  );
}
// A cycle through value imports that the full graph reports under another rotation.
for (const c of runtime) {
  if (!cycles.some((x) => key(x) === key(c))) console.log(`cycle: ${[...c, c[0]].join(' -> ')}`);
}
console.log(
  `import cycles in src/: ${cycles.length} (${runtime.length} at run time) among ${modules} modules`,
);
process.exit(runtime.length > 0 || (strict && cycles.length > 0) ? 1 : 0);
