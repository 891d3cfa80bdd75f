#!/usr/bin/env node
// Thin launcher: the CLI is bundled into dist/squashtree.mjs by `npm ci`
// (the prepare script) or `npm run build`.
import { main } from '../dist/squashtree.mjs';

process.exitCode = await main(process.argv.slice(2));
