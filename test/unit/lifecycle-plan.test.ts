/**
 * planLayer on hand-built upper entries over a fake stack of images: what a
 * commit copies, which whiteouts it adds, and the A/M/D lines and counts,
 * for a first commit and for one that stacks on a snapshot.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Entry, EntryType } from '../../src/fs/walk.js';
import { planLayer, type PlanStack } from '../../src/layer/layer-plan.js';
import type { StackEntry } from '../../src/layer/stack-view.js';
import { snapshotOf } from '../../src/layer/upper-scan.js';
import type { Inode, Stat } from '../../src/squashfs/index.js';

let nextIno = 1000n;

function entry(path: string, type: Entry['type'], over: Partial<Entry> = {}): Entry {
  return {
    path,
    type,
    mode: type === 'dir' ? 0o755 : 0o644,
    uid: 0,
    gid: 0,
    size: type === 'dir' ? 4096 : 0,
    mtimeNs: 1_700_000_000_000_000_000n,
    ctimeNs: 1_700_000_000_000_000_000n,
    ino: nextIno++,
    dev: 1n,
    nlink: type === 'dir' ? 2 : 1,
    rdev: 0,
    ...over,
  };
}
const dir = (p: string, over: Partial<Entry> = {}): Entry => entry(p, 'dir', over);
const file = (p: string, size: number, over: Partial<Entry> = {}): Entry =>
  entry(p, 'file', { size, ...over });
const whiteout = (p: string): Entry => entry(p, 'char', { mode: 0, rdev: 0 });
/** The same entry, written again (a new ctime). */
const touched = (e: Entry): Entry => ({ ...e, ctimeNs: e.ctimeNs + 1n, mtimeNs: e.mtimeNs + 1n });

/** A stack of images as the merged tree it shows: path -> type and size ('' is the root). */
function fakeStack(tree: Record<string, { type: EntryType; size?: number }>): PlanStack {
  const all = new Map<string, { type: EntryType; size?: number }>(
    Object.entries({ '': { type: 'dir' }, ...tree }),
  );
  const at = (rel: string): StackEntry | undefined => {
    const t = all.get(rel);
    if (!t) return undefined;
    const inode = {
      kind: t.type === 'dir' ? 'dir' : 'file',
      size: t.size ?? 0,
    } as unknown as Inode;
    return { path: rel, type: t.type, layer: 0, inode, dirs: [] };
  };
  const children = (rel: string): string[] =>
    [...all.keys()].filter(
      (p) =>
        p !== '' &&
        (rel === ''
          ? !p.includes('/')
          : p.startsWith(`${rel}/`) && !p.slice(rel.length + 1).includes('/')),
    );
  return {
    // eslint-disable-next-line @typescript-eslint/require-await -- the real one reads images
    lookup: async (rel) => at(rel),
    // eslint-disable-next-line @typescript-eslint/require-await
    names: async (rel) => {
      if (all.get(rel)?.type !== 'dir') return undefined;
      return new Map(
        children(rel).map((c) => [c.slice(c.lastIndexOf('/') + 1), all.get(c)?.type ?? 'file']),
      );
    },
    // eslint-disable-next-line @typescript-eslint/require-await
    subtree: async (rel) =>
      [...all.keys()]
        .filter((p) => p === rel || (rel === '' ? p !== '' : p.startsWith(`${rel}/`)))
        .flatMap((p) => at(p) ?? []),
    // eslint-disable-next-line @typescript-eslint/require-await
    stat: async () => ({ permissions: 0o755, uid: 0, gid: 0 }) as Stat,
  };
}

const lines = (p: { changes: { kind: string; path: string }[] }): string[] =>
  p.changes.map((c) => `${c.kind} ${c.path}`);

describe('planLayer', () => {
  const base = fakeStack({
    cat: { type: 'dir' },
    'cat/pkg': { type: 'dir' },
    'cat/pkg/a.ebuild': { type: 'file', size: 10 },
    'cat/pkg/b.ebuild': { type: 'file', size: 20 },
    'cat/other': { type: 'dir' },
    'cat/other/o': { type: 'file', size: 5 },
    README: { type: 'file', size: 7 },
  });

  it('a first commit copies the whole upper and keeps only whiteouts over names the stack shows', async () => {
    const entries = [
      dir(''),
      dir('cat'),
      dir('cat/pkg'),
      file('cat/pkg/c.ebuild', 30),
      whiteout('cat/pkg/a.ebuild'),
      whiteout('cat/pkg/never-there'),
    ];
    const plan = await planLayer({ entries, snapshot: null, stack: base, fuse: false });
    assert.deepEqual(
      plan.copy.map((e) => e.path),
      ['', 'cat', 'cat/pkg', 'cat/pkg/c.ebuild'],
    );
    assert.deepEqual(plan.whiteouts, ['cat/pkg/a.ebuild']);
    assert.deepEqual(lines(plan), ['D cat/pkg/a.ebuild', 'A cat/pkg/c.ebuild']);
    assert.deepEqual([plan.filesDelta, plan.bytesDelta, plan.any], [0, 20, true]);
  });

  it('a stacked commit copies only what changed since the snapshot, with its parent dirs', async () => {
    const [r, cat, pkg, c] = [dir(''), dir('cat'), dir('cat/pkg'), file('cat/pkg/c.ebuild', 30)];
    const other = dir('cat/other');
    const o = file('cat/other/o', 6);
    const snapshot = snapshotOf([r, cat, pkg, c, other, o]);
    const now = [r, cat, pkg, c, touched(other), touched(o), file('cat/other/new', 3)];
    const plan = await planLayer({ entries: now, snapshot, stack: base, fuse: false });
    assert.deepEqual(
      plan.copy.map((e) => e.path),
      ['', 'cat', 'cat/other', 'cat/other/o', 'cat/other/new'],
    );
    assert.deepEqual(plan.whiteouts, []);
    assert.deepEqual(lines(plan), ['A cat/other/new', 'M cat/other/o']);
  });

  it('nothing changed since the snapshot: nothing to commit', async () => {
    const entries = [dir(''), dir('cat'), file('cat/x', 1)];
    const plan = await planLayer({
      entries,
      snapshot: snapshotOf(entries),
      stack: base,
      fuse: false,
    });
    assert.equal(plan.any, false);
    assert.deepEqual(plan.changes, []);
  });

  it('an entry committed and then deleted gets a whiteout; one created and deleted in between none', async () => {
    const stack = fakeStack({ cat: { type: 'dir' }, 'cat/committed': { type: 'file', size: 4 } });
    const [r, cat, committed] = [dir(''), dir('cat'), file('cat/committed', 4)];
    const snapshot = snapshotOf([r, cat, committed]);
    // 'cat/flash' came and went after the snapshot: no trace in the upper, nothing in the stack.
    const plan = await planLayer({ entries: [r, touched(cat)], snapshot, stack, fuse: false });
    assert.deepEqual(plan.whiteouts, ['cat/committed']);
    assert.deepEqual(
      plan.copy.map((e) => e.path),
      ['', 'cat'],
    );
    assert.deepEqual(lines(plan), ['D cat/committed']);
    assert.deepEqual([plan.filesDelta, plan.bytesDelta], [-1, -4]);
  });

  it('a dir recreated since the snapshot (fuse marker) hides what the base and earlier layers have', async () => {
    // The stack: the base's cat/pkg plus what an earlier commit of the session put there.
    const stack = fakeStack({
      cat: { type: 'dir' },
      'cat/pkg': { type: 'dir' },
      'cat/pkg/a.ebuild': { type: 'file', size: 10 },
      'cat/pkg/from-layer': { type: 'file', size: 3 },
      'cat/pkg/files': { type: 'dir' },
      'cat/pkg/files/p': { type: 'file', size: 2 },
    });
    const [r, cat, pkg] = [dir(''), dir('cat'), dir('cat/pkg')];
    const snapshot = snapshotOf([r, cat, pkg, file('cat/pkg/from-layer', 3)]);
    const again = dir('cat/pkg'); // a new inode: removed and made again
    const entries = [
      r,
      touched(cat),
      again,
      file('cat/pkg/.wh..wh..opq', 0),
      entry('cat/pkg/.wh..opq', 'char', { rdev: 0 }),
      dir('cat/pkg/files'),
      file('cat/pkg/files/q', 1),
    ];
    const plan = await planLayer({ entries, snapshot, stack, fuse: true });
    assert.deepEqual(plan.whiteouts.sort(), [
      'cat/pkg/a.ebuild',
      'cat/pkg/files/p',
      'cat/pkg/from-layer',
    ]);
    assert.ok(!plan.copy.some((e) => e.path.includes('.wh.')), 'no fuse bookkeeping is copied');
    assert.deepEqual(lines(plan), [
      'D cat/pkg/a.ebuild',
      'D cat/pkg/files/p',
      'A cat/pkg/files/q',
      'D cat/pkg/from-layer',
    ]);
  });

  it("fuse-overlayfs's .wh.NAME files are whiteouts of NAME", async () => {
    const entries = [dir(''), dir('cat'), dir('cat/pkg'), file('cat/pkg/.wh.b.ebuild', 0)];
    const plan = await planLayer({ entries, snapshot: null, stack: base, fuse: true });
    assert.deepEqual(plan.whiteouts, ['cat/pkg/b.ebuild']);
    assert.deepEqual(lines(plan), ['D cat/pkg/b.ebuild']);
  });

  it('a dir where a file was, and a file where a dir was', async () => {
    const entries = [dir(''), dir('README'), file('README/inside', 2), file('cat', 9)];
    const plan = await planLayer({ entries, snapshot: null, stack: base, fuse: false });
    assert.deepEqual(lines(plan), [
      'A README',
      'A README/inside',
      'A cat',
      'D cat/other',
      'D cat/other/o',
      'D cat/pkg',
      'D cat/pkg/a.ebuild',
      'D cat/pkg/b.ebuild',
    ]);
    // Four files (README, a, b, o) become two (README/inside, cat); bytes likewise.
    assert.deepEqual([plan.filesDelta, plan.bytesDelta], [-2, 2 + 9 - 7 - 5 - 10 - 20]);
  });
});
