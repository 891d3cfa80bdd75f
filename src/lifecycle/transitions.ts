/**
 * The state machine of a tree as one table: for each operation and each
 * observed state (and the session's engine, or a foreign mount on the dir,
 * where that matters), whether the operation runs, is a no-op with a reason,
 * or is refused with a code and a hint. Transitions ask `admit` before they
 * act; docs/architecture.md's state table is generated from ROWS
 * (scripts/gen-architecture.mjs), and test/unit/lifecycle-transitions.test.ts
 * checks every cell.
 *
 * A "run" verdict only lets an operation start: what it then finds in the
 * data (nothing to commit, a single image to compact, pending changes a
 * pull would hide) is its own outcome, not a state.
 */
import { SquashtreeError, type ErrorCode } from '../errors.js';
import type { EngineName } from '../config/schema.js';

export const OPERATIONS = [
  'init',
  'start',
  'stop',
  'stop-keep',
  'restart',
  'commit',
  'discard',
  'compact',
  'rollback',
  'switch',
  'switch-discard',
  'run',
  'diff',
  'status',
  'verify',
] as const;
export type Operation = (typeof OPERATIONS)[number];

/** A tree's state as observe() reads it (observe.ts says how). */
export type TreeState = 'uninitialized' | 'stopped' | 'mounted' | 'interrupted';
export const STATES: readonly TreeState[] = ['uninitialized', 'stopped', 'mounted', 'interrupted'];

/** The session's engine; "none" when no session record exists. */
export type SessionEngine = EngineName | 'none';
export const SESSION_ENGINES: readonly SessionEngine[] = ['none', 'kernel', 'fuse', 'readonly'];

/** What the table is looked up by: a reading of observe(). */
export interface Facts {
  state: TreeState;
  engine: SessionEngine;
  /** Something squashtree did not make is mounted on the tree's dir. */
  foreign: boolean;
}

/** What refusal texts name: the tree's settings, never its data. */
export interface Subject {
  name: string;
  dir: string;
  store: string;
  upperData: string;
  /** The configured engine setting ("auto", "kernel", "fuse", "readonly"). */
  engineSetting: string;
  /** The fstype of the foreign mount, when there is one. */
  foreignFstype?: string;
}

export type Verdict =
  | { kind: 'run'; note?: string }
  | { kind: 'noop'; reason: string }
  | {
      kind: 'refuse';
      code: ErrorCode;
      message: (s: Subject) => string;
      hint: (s: Subject) => string;
      /** The error names the tree's dir (as these refusals always did). */
      path?: boolean;
    };

export interface Row {
  op: Operation;
  state: TreeState;
  /** Matches any engine when absent. */
  engine?: SessionEngine;
  /** Matches either when absent. */
  foreign?: boolean;
  verdict: Verdict;
}

const run = (note?: string): Verdict => (note ? { kind: 'run', note } : { kind: 'run' });
const noop = (reason: string): Verdict => ({ kind: 'noop', reason });

const NOT_INITIALIZED: Verdict = {
  kind: 'refuse',
  code: 'E_NOT_INITIALIZED',
  message: (s) => `tree "${s.name}" has no images in ${s.store}`,
  hint: (s) => `create them with: squashtree init ${s.name} --dir ${s.dir}`,
};

const TREE_EXISTS: Verdict = {
  kind: 'refuse',
  code: 'E_TREE_EXISTS',
  message: (s) => `tree "${s.name}" already has images in ${s.store}`,
  hint: (s) => `use it: squashtree start ${s.name} (or choose another name for a new tree)`,
};

const MOUNTED_ELSEWHERE: Verdict = {
  kind: 'refuse',
  path: true,
  code: 'E_MOUNTED_ELSEWHERE',
  message: (s) =>
    `${s.dir} already has a ${s.foreignFstype ?? 'file system'} mounted on it that squashtree did not make`,
  hint: (s) =>
    `unmount it first (umount ${s.dir}); if it is an old squash_portage setup, see squashtree doctor`,
};

const READONLY: Verdict = {
  kind: 'refuse',
  path: true,
  code: 'E_READONLY',
  message: (s) =>
    `tree "${s.name}" is mounted read-only (engine readonly): there is no upper to commit`,
  hint: (s) =>
    s.engineSetting === 'readonly'
      ? `engine = "readonly" is set for it in the config; to change it, stop it, set engine = "auto" and start it again`
      : 'no writable overlay works on this machine (see squashtree doctor: kernel overlay as root, or squashfuse and fuse-overlayfs)',
};

/** A FUSE upper is brought into the layer form against its mounted tree: it must be mounted. */
const FUSE_NEEDS_MOUNT: Verdict = {
  kind: 'refuse',
  path: true,
  code: 'E_ENGINE',
  message: (s) =>
    `tree "${s.name}" has an interrupted fuse session: its changes can be committed only while it is mounted`,
  hint: (s) => `run squashtree start ${s.name} (it resumes the pending changes), then commit`,
};

const ROLLBACK_MOUNTED: Verdict = {
  kind: 'refuse',
  code: 'E_MOUNTED',
  message: (s) => `tree "${s.name}" is mounted`,
  hint: (s) => `stop it first (squashtree stop ${s.name}), then roll back and start it again`,
};

const ROLLBACK_PENDING: Verdict = {
  kind: 'refuse',
  code: 'E_PENDING',
  message: (s) =>
    `tree "${s.name}" has pending changes from an interrupted session in ${s.upperData}`,
  hint: () => `start the tree and commit or discard them first`,
};

/** Also the hint of a mounted tree's pending changes, which the switch finds in the data. */
export const SWITCH_PENDING = {
  kind: 'refuse',
  code: 'E_PENDING',
  message: (s) =>
    `tree "${s.name}" has pending changes from an interrupted session; pulling would hide them`,
  hint: (s) =>
    `commit them (squashtree commit ${s.name}) and publish them from here, or drop them: squashtree pull ${s.name} REF --discard`,
} satisfies Verdict;

/**
 * The table. The first row that matches wins, so rows that name an engine
 * or a foreign mount come before the row for the whole state.
 */
export const ROWS: readonly Row[] = [
  { op: 'init', state: 'uninitialized', verdict: run() },
  { op: 'init', state: 'stopped', verdict: TREE_EXISTS },
  { op: 'init', state: 'mounted', verdict: TREE_EXISTS },
  { op: 'init', state: 'interrupted', verdict: TREE_EXISTS },

  { op: 'start', state: 'uninitialized', verdict: NOT_INITIALIZED },
  { op: 'start', state: 'stopped', foreign: true, verdict: MOUNTED_ELSEWHERE },
  { op: 'start', state: 'stopped', verdict: run() },
  { op: 'start', state: 'mounted', verdict: noop('already mounted') },
  { op: 'start', state: 'interrupted', foreign: true, verdict: MOUNTED_ELSEWHERE },
  {
    op: 'start',
    state: 'interrupted',
    verdict: run('resumes the surviving upper on the images it was written against'),
  },

  { op: 'stop', state: 'uninitialized', verdict: NOT_INITIALIZED },
  {
    op: 'stop',
    state: 'stopped',
    verdict: noop('not mounted (what an earlier mount left is taken down)'),
  },
  { op: 'stop', state: 'mounted', verdict: run('on-stop, then unmount') },
  { op: 'stop', state: 'interrupted', foreign: true, verdict: MOUNTED_ELSEWHERE },
  {
    op: 'stop',
    state: 'interrupted',
    verdict: run('mounts it again (as start), then stops, so on-stop applies to the changes'),
  },

  { op: 'stop-keep', state: 'uninitialized', verdict: NOT_INITIALIZED },
  {
    op: 'stop-keep',
    state: 'stopped',
    verdict: noop('not mounted (what an earlier mount left is taken down)'),
  },
  { op: 'stop-keep', state: 'mounted', verdict: run('unmount; the upper stays') },
  { op: 'stop-keep', state: 'interrupted', verdict: noop('not mounted (the upper stays)') },

  { op: 'restart', state: 'uninitialized', verdict: NOT_INITIALIZED },
  { op: 'restart', state: 'stopped', verdict: run('stop, then start: each by its own row') },
  { op: 'restart', state: 'mounted', verdict: run('stop, then start: each by its own row') },
  { op: 'restart', state: 'interrupted', verdict: run('stop, then start: each by its own row') },

  { op: 'commit', state: 'uninitialized', verdict: NOT_INITIALIZED },
  { op: 'commit', state: 'stopped', verdict: noop('not mounted') },
  { op: 'commit', state: 'mounted', engine: 'readonly', verdict: READONLY },
  { op: 'commit', state: 'mounted', engine: 'none', verdict: noop('not mounted') },
  {
    op: 'commit',
    state: 'mounted',
    verdict: run('stacked on the current generation, or the whole upper'),
  },
  { op: 'commit', state: 'interrupted', engine: 'fuse', verdict: FUSE_NEEDS_MOUNT },
  { op: 'commit', state: 'interrupted', verdict: run('the upper packed as it is (raw)') },

  { op: 'discard', state: 'uninitialized', verdict: NOT_INITIALIZED },
  { op: 'discard', state: 'stopped', verdict: noop('no pending changes') },
  { op: 'discard', state: 'mounted', verdict: run('unmount, empty the upper, mount again') },
  { op: 'discard', state: 'interrupted', verdict: run('empty the upper') },

  { op: 'compact', state: 'uninitialized', verdict: NOT_INITIALIZED },
  { op: 'compact', state: 'stopped', verdict: run() },
  { op: 'compact', state: 'mounted', verdict: run('the overlay stays on what it mounted') },
  {
    op: 'compact',
    state: 'interrupted',
    verdict: noop('an interrupted session is pending; start the tree first'),
  },

  { op: 'rollback', state: 'uninitialized', verdict: NOT_INITIALIZED },
  { op: 'rollback', state: 'stopped', verdict: run() },
  { op: 'rollback', state: 'mounted', verdict: ROLLBACK_MOUNTED },
  { op: 'rollback', state: 'interrupted', verdict: ROLLBACK_PENDING },

  { op: 'switch', state: 'uninitialized', verdict: run('the first pull makes the store') },
  { op: 'switch', state: 'stopped', verdict: run() },
  {
    op: 'switch',
    state: 'mounted',
    verdict: run(
      'refused (E_PENDING) if it has pending changes, unless --discard; remounts with --restart',
    ),
  },
  { op: 'switch', state: 'interrupted', verdict: SWITCH_PENDING },
  {
    op: 'switch-discard',
    state: 'uninitialized',
    verdict: run('the first pull makes the store'),
  },
  { op: 'switch-discard', state: 'stopped', verdict: run() },
  {
    op: 'switch-discard',
    state: 'mounted',
    verdict: run('pending changes are dropped and the tree remounted'),
  },
  { op: 'switch-discard', state: 'interrupted', verdict: run('the pending changes are dropped') },

  { op: 'run', state: 'uninitialized', verdict: NOT_INITIALIZED },
  { op: 'run', state: 'stopped', foreign: true, verdict: MOUNTED_ELSEWHERE },
  { op: 'run', state: 'stopped', verdict: run('start, the command, commit if it succeeds') },
  { op: 'run', state: 'mounted', verdict: run('the command, commit if it succeeds') },
  { op: 'run', state: 'interrupted', foreign: true, verdict: MOUNTED_ELSEWHERE },
  {
    op: 'run',
    state: 'interrupted',
    verdict: run('start (resumes), the command, commit if it succeeds'),
  },

  { op: 'diff', state: 'uninitialized', verdict: NOT_INITIALIZED },
  { op: 'diff', state: 'stopped', verdict: run('nothing pending') },
  { op: 'diff', state: 'mounted', verdict: run() },
  { op: 'diff', state: 'interrupted', verdict: run() },

  { op: 'status', state: 'uninitialized', verdict: run() },
  { op: 'status', state: 'stopped', verdict: run() },
  { op: 'status', state: 'mounted', verdict: run() },
  { op: 'status', state: 'interrupted', verdict: run() },

  { op: 'verify', state: 'uninitialized', verdict: NOT_INITIALIZED },
  { op: 'verify', state: 'stopped', verdict: run() },
  { op: 'verify', state: 'mounted', verdict: run() },
  { op: 'verify', state: 'interrupted', verdict: run() },
];

/** The table's verdict for an operation in a state. */
export function decide(op: Operation, facts: Facts): Verdict {
  const row = ROWS.find(
    (r) =>
      r.op === op &&
      r.state === facts.state &&
      (r.engine === undefined || r.engine === facts.engine) &&
      (r.foreign === undefined || r.foreign === facts.foreign),
  );
  // The table covers every operation in every state (the unit test checks it).
  if (!row) throw new SquashtreeError('E_INTERNAL', `no transition for ${op} in ${facts.state}`);
  return row.verdict;
}

/** The refusal as an error: every operation's refusal has this one shape. */
export function refusal(v: Verdict & { kind: 'refuse' }, s: Subject): SquashtreeError {
  return new SquashtreeError(v.code, v.message(s), {
    ...(v.path ? { path: s.dir } : {}),
    hint: v.hint(s),
  });
}

/** The error for a cell the table refuses (a caller that knows it refuses). */
export function refusalFor(op: Operation, facts: Facts, s: Subject): SquashtreeError {
  const v = decide(op, facts);
  if (v.kind !== 'refuse')
    throw new SquashtreeError('E_INTERNAL', `the table does not refuse ${op} in ${facts.state}`);
  return refusal(v, s);
}

/** Look the operation up and throw its refusal; otherwise say whether it runs or is a no-op. */
export function admit(
  op: Operation,
  facts: Facts,
  s: Subject,
): { kind: 'run' } | { kind: 'noop'; reason: string } {
  const v = decide(op, facts);
  if (v.kind === 'refuse') throw refusal(v, s);
  return v.kind === 'noop' ? { kind: 'noop', reason: v.reason } : { kind: 'run' };
}
