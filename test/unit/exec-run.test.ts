/** run(): results, failures as SquashtreeErrors, line callbacks, quoting. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { commandLine, quoteArg, run, runningChildren } from '../../src/exec/run.js';
import { SquashtreeError } from '../../src/errors.js';

const MISSING = 'squashtree-test-no-such-program';

async function failure(p: Promise<unknown>): Promise<SquashtreeError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof SquashtreeError, `expected a SquashtreeError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected the command to fail');
}

/** Lines a shell script writes to stderr, as onStderrLine sees them. */
async function stderrLines(script: string): Promise<string[]> {
  const lines: string[] = [];
  await run('sh', ['-c', script], { onStderrLine: (l) => lines.push(l) });
  return lines;
}

describe('run', () => {
  it('resolves for a command that succeeds', async () => {
    assert.deepEqual(await run('true', []), { code: 0, signal: null, stdout: '', stderr: '' });
  });

  it('keeps stdout and stderr', async () => {
    const r = await run('sh', ['-c', 'echo out; echo err >&2']);
    assert.equal(r.stdout, 'out\n');
    assert.equal(r.stderr, 'err\n');
  });

  it('passes arguments without a shell', async () => {
    const r = await run('printf', ['%s|', 'a b', '$HOME', "it's", '*']);
    assert.equal(r.stdout, "a b|$HOME|it's|*|");
  });

  it('throws E_COMMAND with the command line for a non-zero exit', async () => {
    const e = await failure(run('false', []));
    assert.equal(e.code, 'E_COMMAND');
    assert.equal(e.command, 'false');
    assert.match(e.message, /false exited with status 1/);
    assert.equal(e.exitCode, 1);
  });

  it('names the last line of stderr and keeps stderr and the hint', async () => {
    const e = await failure(
      run('sh', ['-c', 'echo first >&2; echo "the real reason" >&2; exit 3'], { hint: 'do X' }),
    );
    assert.equal(e.code, 'E_COMMAND');
    assert.equal(e.command, 'sh -c \'echo first >&2; echo "the real reason" >&2; exit 3\'');
    assert.match(e.message, /status 3: the real reason$/);
    assert.equal(e.stderr, 'first\nthe real reason');
    assert.equal(e.hint, 'do X');
  });

  it('falls back to stdout for the message when stderr is empty', async () => {
    const e = await failure(run('sh', ['-c', 'echo from-stdout; exit 2']));
    assert.match(e.message, /status 2: from-stdout$/);
  });

  it('accepts the exit codes given as ok', async () => {
    const r = await run('sh', ['-c', 'exit 3'], { okCodes: [0, 3] });
    assert.equal(r.code, 3);
    const e = await failure(run('true', [], { okCodes: [1] }));
    assert.match(e.message, /status 0/);
  });

  it('reports a command killed by a signal', async () => {
    const e = await failure(run('sh', ['-c', 'kill -TERM $$'], { okCodes: [0, 143] }));
    assert.equal(e.code, 'E_COMMAND');
    assert.match(e.message, /was killed by SIGTERM/);
  });

  it('kills a command that outlives its timeout', async () => {
    const t0 = Date.now();
    const e = await failure(run('sleep', ['10'], { timeoutMs: 100 }));
    assert.match(e.message, /killed by SIGKILL/);
    assert.ok(Date.now() - t0 < 5000);
  });

  it('throws E_COMMAND_MISSING with a hint for a program not in PATH', async () => {
    const e = await failure(run(MISSING, ['a b']));
    assert.equal(e.code, 'E_COMMAND_MISSING');
    assert.equal(e.command, `${MISSING} 'a b'`);
    assert.match(e.message, /command not found/);
    assert.match(e.hint ?? '', /PATH/);
  });

  it('names the package that provides a known program', async () => {
    const e = await failure(run('mksquashfs', ['-version'], { env: { PATH: '/nonexistent' } }));
    assert.equal(e.code, 'E_COMMAND_MISSING');
    assert.match(e.hint ?? '', /squashfs-tools/);
  });

  it('runs in the given directory with the given environment', async () => {
    const r = await run('sh', ['-c', 'pwd; echo "$SQ_TEST"'], {
      cwd: '/',
      env: { PATH: process.env.PATH, SQ_TEST: 'yes' },
    });
    assert.equal(r.stdout, '/\nyes\n');
  });

  it('forgets a child once it has finished', async () => {
    const before = runningChildren();
    await run('true', [], { interruptible: true });
    await failure(run('false', [], { interruptible: true }));
    assert.equal(runningChildren(), before);
  });

  it('forgets a child that could not be started', async () => {
    const before = runningChildren();
    await failure(run(MISSING, [], { interruptible: true }));
    assert.equal(runningChildren(), before);
  });
});

describe('run: line callbacks', () => {
  it('splits stderr on \\n and on \\r (progress bars)', async () => {
    assert.deepEqual(await stderrLines(String.raw`printf 'a\nb\rc\r\nd\n' >&2`), [
      'a',
      'b',
      'c',
      'd',
    ]);
  });

  it('skips empty lines', async () => {
    assert.deepEqual(await stderrLines(String.raw`printf '\n\n\r\rx\n\n' >&2`), ['x']);
  });

  it('joins a line written in pieces', async () => {
    assert.deepEqual(
      await stderrLines(
        String.raw`printf 'ab' >&2; sleep 0.05; printf 'c\nd' >&2; sleep 0.05; printf 'e\n' >&2`,
      ),
      ['abc', 'de'],
    );
  });

  it('feeds stdout and stderr to their own callbacks', async () => {
    const out: string[] = [];
    const err: string[] = [];
    await run('sh', ['-c', 'echo o1; echo e1 >&2; echo o2'], {
      onStdoutLine: (l) => out.push(l),
      onStderrLine: (l) => err.push(l),
    });
    assert.deepEqual(out, ['o1', 'o2']);
    assert.deepEqual(err, ['e1']);
  });

  it('keeps UTF-8 text intact', async () => {
    assert.deepEqual(await stderrLines(`printf 'caf\\303\\251 \\342\\234\\223\\n' >&2`), [
      'café ✓',
    ]);
  });

  it('passes a last line without a newline', async () => {
    assert.deepEqual(await stderrLines(String.raw`printf 'a\nlast' >&2`), ['a', 'last']);
  });
});

describe('quoteArg and commandLine', () => {
  it('leaves safe words alone', () => {
    for (const a of [
      'mksquashfs',
      '/var/lib/x.sqfs',
      '-Xcompression-level',
      'a=b,c:d',
      '50%',
      'x@y+z',
    ]) {
      assert.equal(quoteArg(a), a);
    }
  });

  it('single-quotes everything else, escaping single quotes', () => {
    assert.equal(quoteArg('a b'), "'a b'");
    assert.equal(quoteArg(''), "''");
    assert.equal(quoteArg('$HOME'), "'$HOME'");
    assert.equal(quoteArg("it's"), `'it'\\''s'`);
    assert.equal(quoteArg('new\nline'), "'new\nline'");
  });

  it('gives a line a shell runs as the same argv', async () => {
    const args = ['%s|', 'a b', "it's", '$x', '', '*', 'back\\slash'];
    const line = commandLine('printf', args);
    const direct = await run('printf', args);
    const viaShell = await run('sh', ['-c', line]);
    assert.equal(viaShell.stdout, direct.stdout);
  });
});
