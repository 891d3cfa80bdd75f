#!/usr/bin/env node
// Writes the man page and shell completions from the built CLI's own help
// text into dist/, where package.json's "man" field and packagers find them.
import { mkdirSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const cli = (args) => {
  const r = spawnSync(process.execPath, [`${root}bin/squashtree.js`, ...args], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`squashtree ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
};
mkdirSync(`${root}dist/man`, { recursive: true });
mkdirSync(`${root}dist/completions`, { recursive: true });
writeFileSync(`${root}dist/man/squashtree.8`, cli(['man']));
writeFileSync(`${root}dist/completions/squashtree.bash`, cli(['completion', 'bash']));
writeFileSync(`${root}dist/completions/_squashtree`, cli(['completion', 'zsh']));
