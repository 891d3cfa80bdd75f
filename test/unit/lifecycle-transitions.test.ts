/**
 * The transition table (src/lifecycle/transitions.ts), cell by cell and
 * without root: every operation has a verdict in every state, for every
 * session engine and with or without a foreign mount on the dir, and each
 * verdict is the one the transitions have always given.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SquashtreeError } from '../../src/errors.js';
import {
  OPERATIONS,
  SESSION_ENGINES,
  STATES,
  admit,
  decide,
  refusal,
  type Facts,
  type Operation,
  type SessionEngine,
  type TreeState,
  type Verdict,
} from '../../src/lifecycle/transitions.js';

const subject = {
  name: 'gentoo',
  dir: '/var/db/repos/gentoo',
  store: '/var/lib/squashtree/gentoo',
  upperData: '/run/squashtree/gentoo/upper/data',
  engineSetting: 'auto',
};

function facts(state: TreeState, engine: SessionEngine = 'kernel', foreign = false): Facts {
  return { state, engine, foreign };
}

/** What a cell says, as a short string: run, noop: REASON, or refuse: CODE. */
function cell(op: Operation, f: Facts): string {
  const v: Verdict = decide(op, f);
  if (v.kind === 'run') return 'run';
  if (v.kind === 'noop') return `noop: ${v.reason}`;
  return `refuse: ${v.code}`;
}

/** Every combination the table may be asked about. */
function* everyFacts(): Generator<Facts> {
  for (const state of STATES)
    for (const engine of SESSION_ENGINES)
      for (const foreign of [false, true]) yield { state, engine, foreign };
}

describe('transition table', () => {
  it('has a verdict for every operation in every state, engine and mount', () => {
    for (const op of OPERATIONS) for (const f of everyFacts()) assert.ok(decide(op, f));
  });

  it('refuses every operation but init, status and switch on an uninitialized tree', () => {
    for (const op of OPERATIONS) {
      for (const f of everyFacts()) {
        if (f.state !== 'uninitialized') continue;
        const expected = ['init', 'status', 'switch', 'switch-discard'].includes(op)
          ? 'run'
          : 'refuse: E_NOT_INITIALIZED';
        assert.equal(cell(op, f), expected, `${op} on uninitialized`);
      }
    }
  });

  it('init: only on an uninitialized tree', () => {
    for (const s of ['stopped', 'mounted', 'interrupted'] as const)
      assert.equal(cell('init', facts(s)), 'refuse: E_TREE_EXISTS');
  });

  it('start', () => {
    assert.equal(cell('start', facts('stopped')), 'run');
    assert.equal(cell('start', facts('stopped', 'none', true)), 'refuse: E_MOUNTED_ELSEWHERE');
    for (const e of SESSION_ENGINES) {
      assert.equal(cell('start', facts('mounted', e)), 'noop: already mounted');
      assert.equal(cell('start', facts('interrupted', e)), 'run');
      assert.equal(cell('start', facts('interrupted', e, true)), 'refuse: E_MOUNTED_ELSEWHERE');
    }
  });

  it('stop, and stop with on-stop = keep', () => {
    const notMounted = 'noop: not mounted (what an earlier mount left is taken down)';
    for (const foreign of [false, true]) {
      assert.equal(cell('stop', facts('stopped', 'none', foreign)), notMounted);
      assert.equal(cell('stop-keep', facts('stopped', 'none', foreign)), notMounted);
      assert.equal(cell('stop', facts('mounted', 'readonly', foreign)), 'run');
      assert.equal(cell('stop-keep', facts('mounted', 'fuse', foreign)), 'run');
      assert.equal(
        cell('stop-keep', facts('interrupted', 'kernel', foreign)),
        'noop: not mounted (the upper stays)',
      );
    }
    assert.equal(cell('stop', facts('interrupted', 'fuse')), 'run');
    assert.equal(cell('stop', facts('interrupted', 'kernel', true)), 'refuse: E_MOUNTED_ELSEWHERE');
  });

  it('restart: stop then start, refused only without images', () => {
    for (const f of everyFacts())
      if (f.state !== 'uninitialized') assert.equal(cell('restart', f), 'run');
  });

  it('commit', () => {
    assert.equal(cell('commit', facts('stopped', 'none')), 'noop: not mounted');
    assert.equal(cell('commit', facts('stopped', 'kernel')), 'noop: not mounted');
    assert.equal(cell('commit', facts('mounted', 'kernel')), 'run');
    assert.equal(cell('commit', facts('mounted', 'fuse')), 'run');
    assert.equal(cell('commit', facts('mounted', 'readonly')), 'refuse: E_READONLY');
    assert.equal(cell('commit', facts('mounted', 'none')), 'noop: not mounted');
    assert.equal(cell('commit', facts('interrupted', 'kernel')), 'run');
    assert.equal(cell('commit', facts('interrupted', 'kernel', true)), 'run');
    assert.equal(cell('commit', facts('interrupted', 'fuse')), 'refuse: E_ENGINE');
  });

  it('discard', () => {
    assert.equal(cell('discard', facts('stopped')), 'noop: no pending changes');
    assert.equal(cell('discard', facts('mounted')), 'run');
    assert.equal(cell('discard', facts('interrupted', 'fuse')), 'run');
  });

  it('compact', () => {
    assert.equal(cell('compact', facts('stopped')), 'run');
    assert.equal(cell('compact', facts('mounted', 'readonly')), 'run');
    assert.equal(
      cell('compact', facts('interrupted')),
      'noop: an interrupted session is pending; start the tree first',
    );
  });

  it('rollback', () => {
    assert.equal(cell('rollback', facts('stopped')), 'run');
    for (const e of SESSION_ENGINES) {
      assert.equal(cell('rollback', facts('mounted', e)), 'refuse: E_MOUNTED');
      assert.equal(cell('rollback', facts('interrupted', e)), 'refuse: E_PENDING');
    }
  });

  it('switch (what pull does to a tree)', () => {
    assert.equal(cell('switch', facts('stopped')), 'run');
    assert.equal(cell('switch', facts('mounted')), 'run');
    assert.equal(cell('switch', facts('interrupted')), 'refuse: E_PENDING');
  });

  it('switch-discard (pull --discard): runs in every state, dropping what is pending', () => {
    for (const s of ['uninitialized', 'stopped', 'mounted', 'interrupted'] as const)
      assert.equal(cell('switch-discard', facts(s)), 'run');
  });

  it('run', () => {
    assert.equal(cell('run', facts('stopped')), 'run');
    assert.equal(cell('run', facts('mounted', 'readonly')), 'run');
    assert.equal(cell('run', facts('interrupted')), 'run');
    assert.equal(cell('run', facts('stopped', 'none', true)), 'refuse: E_MOUNTED_ELSEWHERE');
    assert.equal(cell('run', facts('interrupted', 'kernel', true)), 'refuse: E_MOUNTED_ELSEWHERE');
  });

  it('diff, status and verify run in every initialized state', () => {
    for (const op of ['diff', 'status', 'verify'] as const)
      for (const f of everyFacts())
        if (f.state !== 'uninitialized') assert.equal(cell(op, f), 'run', `${op} ${f.state}`);
  });

  it('every refusal is a SquashtreeError with a code, a message and a hint', () => {
    for (const op of OPERATIONS) {
      for (const f of everyFacts()) {
        const v = decide(op, f);
        if (v.kind !== 'refuse') continue;
        const e = refusal(v, { ...subject, foreignFstype: 'nfs' });
        assert.ok(e instanceof SquashtreeError);
        assert.equal(e.code, v.code);
        assert.ok(e.message.length > 0 && e.hint && e.hint.length > 0, `${op} ${f.state}`);
        assert.throws(
          () => admit(op, f, subject),
          (t: unknown) => t instanceof SquashtreeError,
        );
      }
    }
  });

  it('refusals name the tree and the fix', () => {
    const e = refusal(
      decide('commit', facts('mounted', 'readonly')) as Verdict & { kind: 'refuse' },
      { ...subject, engineSetting: 'readonly' },
    );
    assert.match(e.message, /"gentoo" is mounted read-only/);
    assert.match(e.hint ?? '', /engine = "readonly" is set/);
    assert.equal(e.path, subject.dir);
    const r = refusal(
      decide('rollback', facts('mounted')) as Verdict & { kind: 'refuse' },
      subject,
    );
    assert.match(r.hint ?? '', /squashtree stop gentoo/);
    assert.equal(r.path, undefined);
  });
});
