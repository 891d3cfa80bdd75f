#!/usr/bin/env node
// The folders of src/ import only downwards (docs/architecture.md, "Folders
// and what each may import"): each folder has a rank, and a module may
// import from its own folder or a folder of lower rank. A few leaf modules
// (pure parsers that import nothing of ours above errors.ts) may be
// imported from anywhere. Type-only imports count too: they tangle the
// layout as much. Fails listing every import that points up.
import madge from 'madge';

const root = new URL('..', import.meta.url).pathname;
const RANK = {
  'errors.ts': 0,
  'faults.ts': 2,
  squashfs: 0,
  exec: 1,
  fs: 1,
  corpus: 1,
  config: 2,
  store: 4,
  image: 3,
  mount: 5,
  layer: 6,
  pack: 6,
  lifecycle: 7,
  oci: 8,
  integrations: 8,
  doctor: 9,
  demo: 9,
  cli: 10,
  'index.ts': 11,
};
/** Leaves: they import nothing of ours but errors.ts, so anyone may use them. */
const LEAVES = new Set(['mount/mountinfo.ts', 'oci/reference.ts']);

const folder = (m) => (m.includes('/') ? m.slice(0, m.indexOf('/')) : m);
const graph = await madge(`${root}src`, {
  fileExtensions: ['ts'],
  tsConfig: `${root}tsconfig.json`,
  baseDir: `${root}src`,
  detectiveOptions: { ts: { skipTypeImports: false } },
});
const bad = [];
let edges = 0;
for (const [from, deps] of Object.entries(graph.obj())) {
  const rf = RANK[folder(from)];
  if (rf === undefined)
    bad.push(`${from}: its folder has no rank in scripts/import-directions.mjs`);
  for (const to of deps) {
    edges++;
    if (folder(to) === folder(from) || LEAVES.has(to)) continue;
    const rt = RANK[folder(to)];
    if (rt === undefined || rf === undefined || rt >= rf) bad.push(`${from} -> ${to} (points up)`);
  }
}
for (const b of bad) console.log(b);
console.log(`import directions in src/: ${bad.length} pointing up among ${edges} imports`);
process.exit(bad.length > 0 ? 1 : 0);
