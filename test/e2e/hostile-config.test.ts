/**
 * Hostile input: a few hundred malformed configs. Every refusal is coded and
 * names what is wrong, no input makes the CLI print a stack trace, and nothing
 * stays mounted.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { mountsBelow, needRoot } from '../helpers/env.js';
import { BIN, cli, type CliResult } from '../helpers/cli.js';
import { initTree } from '../helpers/setup.js';
import { loopsFor, treeStatus } from '../helpers/reliability.js';
import { parseConfig } from '../../src/config/load.js';
import { Random } from '../../src/corpus/random.js';

/** The module bin/squashtree.js takes main() from (the bundle, or dist/ before bundling). */
function mainModule(): string {
  const launcher = readFileSync(BIN, 'utf8');
  const m = /import\s*\{\s*main\s*\}\s*from\s*'([^']+)'/.exec(launcher);
  assert.ok(m?.[1], 'bin/squashtree.js imports main');
  return pathToFileURL(join(dirname(BIN), m[1])).href;
}

/** Runs main() once per argument list and records exit status and output, as the launcher would. */
const RUNNER = `
import fs from 'node:fs';
const [jobsFile, outFile, bundle] = process.argv.slice(1);
const { main } = await import(bundle);
const out = [];
const realOut = process.stdout.write.bind(process.stdout);
const realErr = process.stderr.write.bind(process.stderr);
for (const args of JSON.parse(fs.readFileSync(jobsFile, 'utf8'))) {
  let stdout = '';
  let stderr = '';
  process.stdout.write = (c) => { stdout += String(c); return true; };
  process.stderr.write = (c) => { stderr += String(c); return true; };
  let status;
  try {
    status = await main(args);
  } catch (e) {
    status = -1;
    stderr += 'internal error: main threw: ' + (e && e.stack ? e.stack : String(e));
  }
  process.stdout.write = realOut;
  process.stderr.write = realErr;
  out.push({ status, stdout, stderr });
}
fs.writeFileSync(outFile, JSON.stringify(out));
`;

describe('hostile input: malformed configs', { concurrency: false }, () => {
  it('a few hundred malformed configs: exit 0 or 1 with a coded message, never a stack trace, nothing mounted', async (t) => {
    if (!needRoot(t)) return;
    const f = await initTree(t);
    const sbDir = f.sb.dir;
    const dirA = join(sbDir, 'cfg-a');
    const dirB = join(sbDir, 'cfg-b');
    await fsp.mkdir(dirA);
    await fsp.mkdir(dirB);
    const BASE_TOML = `# hostile config base
[defaults]
compression = "gzip"
keep = 2
exclude = ["distfiles", ".git"]

[tree.alpha]
dir = "${dirA}"
store = "${sbDir}/stores/alpha"
tmpfs-size = "16M"
block-size = "128K"

[tree.beta]
dir = "${dirB}"
store = "${sbDir}/stores/beta"
upper = "${sbDir}/upper-beta"
on-stop = "discard"
mount-options = ["noexec"]
compact-after = 4
`;
    const VALUES = [
      '""',
      '"/"',
      '"relative"',
      `"${sbDir}/../.."`,
      '"1X"',
      '"0"',
      '"-1M"',
      '"99999999999999999999T"',
      '"101%"',
      '"0%"',
      '"25%"',
      '"4K"',
      '"3K"',
      '-1',
      '0',
      '1e309',
      'inf',
      'nan',
      '1.5',
      'true',
      '2024-01-01',
      '[]',
      '[1, "a"]',
      '["suid"]',
      '["../x"]',
      '{}',
      '{ a = 1 }',
      '"\\u0000"',
      '"a,b:c"',
      `"${sbDir}/tree"`,
      `"${dirA}"`,
      `"${dirA}/sub"`,
      '"x"',
      "'''\nmulti\n'''",
      `"${'y'.repeat(5000)}"`,
      '"\\ud800"',
      '"é"',
      '9007199254740993',
      '-0',
      '0x10',
      '"zstd"',
      '"xz"',
      '"lzo"',
      '"keep"',
      '"tmpfs"',
    ];
    const KEYS = [
      'dir',
      'store',
      'compression',
      'compression-level',
      'block-size',
      'mksquashfs-args',
      'exclude',
      'upper',
      'tmpfs-size',
      'on-stop',
      'keep',
      'compact-after',
      'mount-options',
      'bogus',
      '"dir"',
      'dir.x',
      '__proto__',
      'constructor',
      'DIR',
      '',
    ];
    const HEADERS = [
      '[defaults]',
      '[tree.gamma]',
      '[tree.alpha]',
      '[tree."bad name"]',
      '[tree]',
      '[[tree]]',
      '[trees.a]',
      '[tree.a.b]',
      '[',
      '[tree.__proto__]',
      '[tree.constructor]',
      '[tree.' + 'n'.repeat(80) + ']',
    ];
    const rng = new Random(31337);
    const mutate = (text: string): string => {
      let lines = text.split('\n');
      const n = rng.int(1, 3);
      for (let k = 0; k < n; k++) {
        const i = rng.int(0, Math.max(0, lines.length - 1));
        const line = lines[i] ?? '';
        switch (rng.int(0, 11)) {
          case 0:
            lines.splice(i, 1);
            break;
          case 1:
            lines.splice(i, 0, line);
            break;
          case 2:
            if (line.includes('='))
              lines[i] = `${line.slice(0, line.indexOf('=') + 1)} ${rng.pick(VALUES)}`;
            break;
          case 3:
            lines.splice(i, 0, `${rng.pick(KEYS)} = ${rng.pick(VALUES)}`);
            break;
          case 4:
            lines.splice(i, 0, rng.pick(HEADERS));
            break;
          case 5: {
            const pos = rng.int(0, line.length);
            const junk = rng.pick([
              '"',
              "'",
              '[',
              ']',
              '=',
              '#',
              '\\',
              '\0',
              '\r',
              '{',
              '}',
              ',',
              '\u00ff',
              '\ufeff',
            ]);
            lines[i] = line.slice(0, pos) + junk + line.slice(pos);
            break;
          }
          case 6:
            lines[i] = line.slice(0, rng.int(0, line.length));
            break;
          case 7:
            lines = lines.slice(0, i);
            break;
          case 8: {
            const j = rng.int(0, lines.length - 1);
            [lines[i], lines[j]] = [lines[j] ?? '', line];
            break;
          }
          case 9:
            if (line.includes('=')) lines[i] = `${rng.pick(KEYS)} ${line.slice(line.indexOf('='))}`;
            break;
          case 10:
            lines.splice(i, 0, `${rng.pick(KEYS)} = ${rng.pick(VALUES)}`, rng.pick(HEADERS));
            break;
          default:
            lines[i] = line.replace(/"/g, rng.pick(["'", '', '"""']));
        }
      }
      return lines.join('\n');
    };
    const configs: { text: string | Buffer; label: string }[] = [
      { text: '', label: 'empty file' },
      { text: Buffer.from([0xff, 0xfe, 0x00, 0x41, 0x80, 0x0a]), label: 'invalid UTF-8' },
      { text: randomBytes(4096), label: 'random bytes' },
      { text: `${BASE_TOML}\n`.repeat(2), label: 'everything twice' },
      {
        text: `[tree.x]\ndir = "${dirA}"\n${'# comment\n'.repeat(50_000)}`,
        label: 'huge',
      },
      { text: '['.repeat(10_000), label: 'deep nesting' },
      { text: `a = ${'['.repeat(5000)}${']'.repeat(5000)}`, label: 'deep arrays' },
    ];
    for (let i = 0; configs.length < 400; i++)
      configs.push({ text: mutate(BASE_TOML), label: `mutation ${i}` });
    const counts = { configs: 0, spawned: 0, ok: 0, refused: 0, starts: 0 };
    const codes = new Map<string, number>();
    const failures: string[] = [];
    /** A config whose trees all live in the sandbox (or that does not parse) may go through start. */
    const startable = (text: string, file: string): boolean => {
      try {
        return parseConfig(text, file).every(
          (tr) =>
            tr.dir.startsWith(`${sbDir}/`) &&
            tr.store.startsWith(`${sbDir}/`) &&
            (tr.upper.kind === 'tmpfs' || tr.upper.path.startsWith(`${sbDir}/`)),
        );
      } catch {
        return true;
      }
    };
    const judge = (label: string, command: string, text: string | Buffer, r: CliResult): void => {
      counts.configs++;
      if (command === 'start') counts.starts++;
      // One tree failing: "error E_X:" on stderr; several: "NAME: error E_X:" per tree on stdout.
      const code = /\berror (E_[A-Z_]+):/.exec(`${r.stderr}\n${r.stdout}`)?.[1];
      const stack = /internal error/i.test(r.stderr) || /^\s+at .+:\d+:\d+\)?$/m.test(r.stderr);
      if (r.status === 0) counts.ok++;
      else counts.refused++;
      if (code) codes.set(code, (codes.get(code) ?? 0) + 1);
      if (stack || (r.status !== 0 && r.status !== 1) || (r.status === 1 && !code)) {
        failures.push(
          `${label} (${command}): exit ${r.status}\n--- config ---\n${text.toString().slice(0, 600)}\n--- stderr ---\n${r.stderr.slice(0, 600)}`,
        );
      }
    };
    const cfgDir = join(sbDir, 'configs');
    await fsp.mkdir(cfgDir);
    const jobs: { args: string[]; label: string; command: string; text: string | Buffer }[] = [];
    const spawned: typeof jobs = [];
    for (const [idx, c] of configs.entries()) {
      const cfg = join(cfgDir, `c${idx}.toml`);
      await fsp.writeFile(cfg, c.text);
      const command = idx % 4 === 0 && startable(c.text.toString(), cfg) ? 'start' : 'status';
      const job = {
        args: ['--config', cfg, '--state-dir', join(sbDir, 'state-hostile'), command],
        label: c.label,
        command,
        text: c.text,
      };
      // One in ten runs as its own process, exactly as a user runs it; the rest go through
      // the same main() in one process, which costs milliseconds instead of a Node start-up.
      if (idx % 10 === 0) spawned.push(job);
      else jobs.push(job);
    }
    for (const j of spawned) {
      judge(j.label, j.command, j.text, await cli(j.args));
      counts.spawned++;
    }
    const jobsFile = join(sbDir, 'jobs.json');
    const outFile = join(sbDir, 'results.json');
    await fsp.writeFile(jobsFile, JSON.stringify(jobs.map((j) => j.args)));
    const bundle = mainModule();
    execFileSync(
      process.execPath,
      ['--input-type=module', '-e', RUNNER, jobsFile, outFile, bundle],
      {
        stdio: 'inherit',
      },
    );
    const results = JSON.parse(await fsp.readFile(outFile, 'utf8')) as CliResult[];
    assert.equal(results.length, jobs.length);
    for (const [i, r] of results.entries()) {
      const j = jobs[i];
      if (j) judge(j.label, j.command, j.text, r);
    }
    t.diagnostic(
      `${counts.configs} configs (${counts.spawned} as their own process, ${counts.starts} through start): ${counts.ok} accepted, ${counts.refused} refused; codes ${JSON.stringify(Object.fromEntries(codes))}`,
    );
    assert.deepEqual(mountsBelow(sbDir), [], 'nothing mounted');
    assert.deepEqual(loopsFor(sbDir), []);
    assert.equal((await treeStatus(f)).state, 'stopped');
    assert.deepEqual(failures.slice(0, 5), [], `${failures.length} configs broke the CLI`);
  });
});
