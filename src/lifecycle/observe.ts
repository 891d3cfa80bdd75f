/**
 * The state of a tree, observed. It is never stored: it is read off the
 * store (manifest), the runtime session record and the kernel's mount table
 * every time, so a crash can never leave a stale "state" field behind. What
 * each operation does in each state is the table in transitions.ts (drawn
 * in docs/architecture.md). Tree observes once per invocation, under the
 * lock, and hands the observation to the transition.
 *
 * "interrupted" is a session whose upper survived (a disk upper across a
 * reboot, or a tmpfs upper after a crash mid-stop) without its overlay.
 *
 * What counts as "our" mount on the tree's dir depends on the session's
 * engine: the kernel overlay names its upperdir in mountinfo; fuse-overlayfs
 * shows only its type (fuse.fuse-overlayfs), so with the fuse engine the
 * session record vouches for it; the readonly engine's mount has no upper at
 * all. Without root there is no tmpfs: the "tmpfs" upper is a plain
 * directory in the runtime dir ($XDG_RUNTIME_DIR is a tmpfs on most systems).
 */
import { promises as fsp } from 'node:fs';
import { errnoCode } from '../errors.js';
import { readMounts, topMountAt, superOption, type MountEntry } from '../mount/mountinfo.js';
import { readManifest, type Manifest } from '../store/manifest.js';
import type { TreeContext } from './context.js';
import { readSession, sessionEngine, type Session } from './session.js';
import { isImageFstype, isOverlayFstype } from '../mount/engine.js';
import { canMountTmpfs } from '../mount/mount.js';
import type { Layout } from './layout.js';
import {
  admit,
  refusalFor,
  type Facts,
  type Operation,
  type Subject,
  type TreeState,
} from './transitions.js';

export type { TreeState } from './transitions.js';

export interface Observation {
  state: TreeState;
  manifest: Manifest | null;
  session: Session | null;
  overlay: MountEntry | undefined;
  /** Something that is not our overlay is mounted on the tree's dir. */
  foreignMount: MountEntry | undefined;
  /** The tmpfs upper is still mounted. */
  upperMounted: boolean;
  /** The upper holds entries. */
  upperHasData: boolean;
}

async function hasEntries(dir: string): Promise<boolean> {
  try {
    return (await fsp.readdir(dir)).length > 0;
  } catch (e) {
    if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') return false;
    throw e;
  }
}

function isOurs(top: MountEntry, session: Session | null, layout: Layout): boolean {
  if (top.fstype === 'overlay' && superOption(top, 'upperdir') === layout.upperData) return true;
  if (!session) return false;
  const engine = sessionEngine(session);
  if (engine === 'fuse') return top.fstype === 'fuse.fuse-overlayfs';
  if (engine === 'readonly') return isOverlayFstype(top.fstype) || isImageFstype(top.fstype);
  return false;
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await fsp.lstat(p)).isDirectory();
  } catch {
    return false;
  }
}

export async function observe(ctx: TreeContext): Promise<Observation> {
  const { layout, tree } = ctx;
  const [manifest, mounts] = await Promise.all([readManifest(tree.store), readMounts()]);
  const top = topMountAt(mounts, tree.dir);
  const session = await readSession(layout.sessionFile);
  const ours = top !== undefined && isOurs(top, session, layout);
  const overlay = ours ? top : undefined;
  const foreignMount = top && !ours ? top : undefined;
  const upperMounted =
    layout.upperIsTmpfs &&
    (canMountTmpfs()
      ? topMountAt(mounts, layout.upperRoot)?.fstype === 'tmpfs'
      : await isDir(layout.upperRoot));
  const upperReachable = layout.upperIsTmpfs ? upperMounted : true;
  const upperHasData = upperReachable && (await hasEntries(layout.upperData));
  let state: TreeState;
  if (!manifest) state = 'uninitialized';
  else if (overlay) state = 'mounted';
  else if (session && upperHasData) state = 'interrupted';
  else state = 'stopped';
  return { state, manifest, session, overlay, foreignMount, upperMounted, upperHasData };
}

/**
 * Whether a session record still speaks for something: a mount on the
 * tree's dir or an upper holding changes. Decided here only; the engine a
 * tree is handled with (tree-engine.ts) follows it.
 */
export function sessionIsLive(o: Observation): boolean {
  return (
    o.session !== null &&
    (o.overlay !== undefined || o.foreignMount !== undefined || o.upperHasData)
  );
}

/** What the transition table is looked up by. */
export function factsOf(o: Observation): Facts {
  return {
    state: o.state,
    engine: o.session ? sessionEngine(o.session) : 'none',
    foreign: o.foreignMount !== undefined,
  };
}

export function subjectOf(ctx: TreeContext, o?: Observation): Subject {
  return {
    name: ctx.tree.name,
    dir: ctx.tree.dir,
    store: ctx.tree.store,
    upperData: ctx.layout.upperData,
    engineSetting: ctx.tree.engine,
    ...(o?.foreignMount ? { foreignFstype: o.foreignMount.fstype } : {}),
  };
}

export interface Admission {
  /** False: the table makes the operation a no-op, for `reason`. */
  run: boolean;
  reason: string;
  manifest: Manifest;
}

/**
 * Ask the table whether `op` may act on the observed tree: throws its
 * refusal, or says whether it runs (on the tree's manifest) or is a no-op.
 */
export function admitObserved(ctx: TreeContext, op: Operation, o: Observation): Admission {
  const v = admit(op, factsOf(o), subjectOf(ctx, o));
  const manifest = requireManifest(ctx, o);
  return v.kind === 'noop'
    ? { run: false, reason: v.reason, manifest }
    : { run: true, reason: '', manifest };
}

/** The table's refusal for an operation on a tree that has no images. */
export function requireManifest(ctx: TreeContext, o: Observation): Manifest {
  if (o.manifest) return o.manifest;
  throw refusalFor('start', { ...factsOf(o), state: 'uninitialized' }, subjectOf(ctx, o));
}
