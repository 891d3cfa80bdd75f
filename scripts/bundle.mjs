#!/usr/bin/env node
// Bundles the CLI into one file: resolving ~150 ESM modules cost about half
// of every invocation's start-up (measured: 0.19 s -> 0.11 s for --version),
// and hooks and timers start squashtree often.
import { readFileSync, writeFileSync } from 'node:fs';
import { build } from 'esbuild';

// The SquashFS packer's worker threads load a script of their own: bundled
// beside the CLI, and named to the bundle through a define (pack-pool.ts).
const WORKER = 'squashtree-pack-worker.mjs';

const common = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  logLevel: 'warning',
  // zstd-codec picks its WebAssembly build where WebAssembly exists (always
  // on Node 20) and an asm.js fallback of 1.3 MB otherwise: leave that out.
  plugins: [
    {
      name: 'zstd-codec-without-asmjs',
      setup(b) {
        b.onResolve({ filter: /zstd-codec-binding\.js$/ }, () => ({
          path: 'zstd-codec-asmjs',
          namespace: 'stub',
        }));
        b.onLoad({ filter: /.*/, namespace: 'stub' }, () => ({
          contents: "throw new Error('zstd-codec: this Node.js has no WebAssembly');",
        }));
      },
    },
  ],
  // commander is CommonJS and requires node built-ins.
  banner: {
    // zstd-codec's WebAssembly loader (Emscripten) reads __dirname under Node.
    js: "import { createRequire as __squashtreeRequire } from 'node:module'; import { fileURLToPath as __squashtreePath } from 'node:url'; const require = __squashtreeRequire(import.meta.url); const __filename = __squashtreePath(import.meta.url); const __dirname = __filename.slice(0, __filename.lastIndexOf('/'));",
  },
  define: { __SQUASHTREE_PACK_WORKER__: JSON.stringify(`./${WORKER}`) },
};

/**
 * V8 keeps a module's source as it was read, and one character past Latin-1
 * stores all of it as UTF-16: 4.9 MB of heap for the 2.5 MB CLI. esbuild
 * escapes such characters in code (`charset: 'ascii'`) but keeps a few
 * dependencies' comments as written, which are all that is left to escape
 * here (test/unit/squashfs-pack-bundle.test.ts checks the result).
 */
async function bundle(entry, outfile) {
  await build({ ...common, charset: 'ascii', entryPoints: [entry], outfile });
  const text = readFileSync(outfile, 'utf8');
  const ascii = text.replace(/[^\0-\x7f]/gu, (c) => `\\u{${c.codePointAt(0).toString(16)}}`);
  if (ascii !== text) writeFileSync(outfile, ascii);
}

await bundle(
  new URL('../src/cli/main.ts', import.meta.url).pathname,
  new URL('../dist/squashtree.mjs', import.meta.url).pathname,
);
await bundle(
  new URL('../src/squashfs/pack-worker.ts', import.meta.url).pathname,
  new URL(`../dist/${WORKER}`, import.meta.url).pathname,
);
