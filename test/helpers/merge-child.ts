/** Run by tests in a process of its own: node --import tsx merge-child.ts OUT INPUT... */
import { writeMergedImage } from '../../src/squashfs/index.js';

const [out, ...inputs] = process.argv.slice(2);
if (!out || inputs.length === 0) throw new Error('usage: merge-child.ts OUT INPUT...');
await writeMergedImage(inputs, out, { verify: true });
