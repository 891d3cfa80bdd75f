/** signature, snapshotOf and pendingChanges on hand-built upper entries. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pendingChanges, signature, snapshotOf } from '../../src/layer/upper-scan.js';
import type { Entry } from '../../src/fs/walk.js';

let nextIno = 100n;

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
    nlink: 1,
    rdev: 0,
    ...over,
  };
}

const root = (): Entry => entry('', 'dir');
const file = (path: string, size: number, over: Partial<Entry> = {}): Entry =>
  entry(path, 'file', { size, ...over });
const dir = (path: string, over: Partial<Entry> = {}): Entry => entry(path, 'dir', over);
/** An overlay whiteout: a char device 0/0. */
const whiteout = (path: string): Entry => entry(path, 'char', { mode: 0, rdev: 0 });

describe('signature', () => {
  const base = file('a', 10, { ino: 7n, target: undefined });

  it('is the same for the same metadata', () => {
    assert.equal(signature(base), signature({ ...base }));
  });

  it('ignores the path and the link count', () => {
    assert.equal(signature(base), signature({ ...base, path: 'elsewhere', nlink: 3 }));
  });

  for (const [field, value] of [
    ['type', 'symlink'],
    ['mode', 0o600],
    ['uid', 1000],
    ['gid', 1000],
    ['size', 11],
    ['mtimeNs', 1_700_000_000_000_000_001n],
    ['ctimeNs', 1_700_000_000_000_000_001n],
    ['ino', 8n],
    ['rdev', 259],
    ['target', 'x'],
  ] as const) {
    it(`changes with ${field}`, () => {
      assert.notEqual(signature(base), signature({ ...base, [field]: value }));
    });
  }

  it('keeps nanoseconds and 64-bit inode numbers exact', () => {
    const a = { ...base, ino: 2n ** 63n, mtimeNs: 2n ** 62n + 1n };
    const b = { ...base, ino: 2n ** 63n + 1n, mtimeNs: 2n ** 62n + 1n };
    const c = { ...base, ino: 2n ** 63n, mtimeNs: 2n ** 62n + 2n };
    assert.notEqual(signature(a), signature(b));
    assert.notEqual(signature(a), signature(c));
  });

  it('tells a symlink target that contains the separator apart', () => {
    const l1 = entry('l', 'symlink', { ino: 1n, target: 'a:b' });
    const l2 = entry('l', 'symlink', { ino: 1n, target: 'a:c' });
    assert.notEqual(signature(l1), signature(l2));
  });
});

describe('snapshotOf', () => {
  it('maps every path but the root to its signature', () => {
    const f = file('d/f', 3);
    const snap = snapshotOf([root(), dir('d'), f]);
    assert.deepEqual([...snap.keys()], ['d', 'd/f']);
    assert.equal(snap.get('d/f'), signature(f));
  });

  it('is empty for an empty upper', () => {
    assert.equal(snapshotOf([root()]).size, 0);
    assert.equal(snapshotOf([]).size, 0);
  });

  it('keeps binary names as they are', () => {
    const snap = snapshotOf([root(), file('caf\xe9\n', 1)]);
    assert.ok(snap.has('caf\xe9\n'));
  });
});

describe('pendingChanges', () => {
  it('reports nothing for an empty upper', () => {
    assert.deepEqual(pendingChanges([root()], null), { files: 0, bytes: 0, any: false });
    assert.deepEqual(pendingChanges([], null), { files: 0, bytes: 0, any: false });
    assert.deepEqual(pendingChanges([root()], new Map()), { files: 0, bytes: 0, any: false });
  });

  it('counts files, links and whiteouts, and the bytes of regular files only', () => {
    const entries = [
      root(),
      dir('cat'),
      dir('cat/pkg'),
      file('cat/pkg/pkg-1.ebuild', 120),
      file('cat/pkg/Manifest', 30),
      entry('cat/pkg/link', 'symlink', { size: 11, target: 'pkg-1.ebuild' }),
      whiteout('cat/pkg/pkg-0.ebuild'),
    ];
    assert.deepEqual(pendingChanges(entries, null), { files: 4, bytes: 150, any: true });
  });

  it('counts an empty directory itself but a directory with entries only through them', () => {
    const entries = [root(), dir('empty'), dir('full'), file('full/x', 5)];
    assert.deepEqual(pendingChanges(entries, null), { files: 2, bytes: 5, any: true });
  });

  it('counts nothing that the committed snapshot already holds', () => {
    const entries = [root(), dir('d'), file('d/a', 10), file('d/b', 20)];
    assert.deepEqual(pendingChanges(entries, snapshotOf(entries)), {
      files: 0,
      bytes: 0,
      any: false,
    });
  });

  it('counts entries that changed since the snapshot', () => {
    const [r, d, a, b] = [root(), dir('d'), file('d/a', 10), file('d/b', 20)];
    const snap = snapshotOf([r, d, a, b]);
    const now = [r, d, { ...a, size: 15, mtimeNs: a.mtimeNs + 1n }, b, file('d/new', 7)];
    assert.deepEqual(pendingChanges(now, snap), { files: 2, bytes: 22, any: true });
  });

  it('counts entries gone from the upper since the snapshot', () => {
    const [r, d, a, b] = [root(), dir('d'), file('d/a', 10), file('d/b', 20)];
    const snap = snapshotOf([r, d, a, b]);
    const now = [r, d, a];
    assert.deepEqual(pendingChanges(now, snap), { files: 1, bytes: 0, any: true });
    // Everything gone: every committed path counts once.
    assert.deepEqual(pendingChanges([root()], snap), { files: 3, bytes: 0, any: true });
    assert.deepEqual(pendingChanges([], snap), { files: 3, bytes: 0, any: true });
  });

  it('sees a change of directory metadata without counting it as a file', () => {
    const [r, d, a] = [root(), dir('d'), file('d/a', 10)];
    const snap = snapshotOf([r, d, a]);
    const now = [r, { ...d, mode: 0o700 }, a];
    assert.deepEqual(pendingChanges(now, snap), { files: 0, bytes: 0, any: true });
  });

  it('counts a directory emptied since the snapshot (opaque) and what left it', () => {
    const [r, d, a] = [root(), dir('d'), file('d/a', 10)];
    const snap = snapshotOf([r, d, a]);
    const now = [r, { ...d, ctimeNs: d.ctimeNs + 5n }];
    assert.deepEqual(pendingChanges(now, snap), { files: 2, bytes: 0, any: true });
  });

  it('sees a file replaced by a whiteout', () => {
    const committed = [root(), file('a', 10)];
    const snap = snapshotOf(committed);
    assert.deepEqual(pendingChanges([root(), whiteout('a')], snap), {
      files: 1,
      bytes: 0,
      any: true,
    });
  });

  it('sees a file rewritten in place (same size, same inode, new ctime)', () => {
    const f = file('a', 10);
    const snap = snapshotOf([root(), f]);
    const now = [root(), { ...f, ctimeNs: f.ctimeNs + 1n }];
    assert.deepEqual(pendingChanges(now, snap), { files: 1, bytes: 10, any: true });
  });

  it('ignores the root entry', () => {
    const r = root();
    assert.deepEqual(pendingChanges([r, { ...r, mode: 0o700 }], new Map()), {
      files: 0,
      bytes: 0,
      any: false,
    });
  });

  it('keeps binary names apart from their parents', () => {
    const entries = [root(), dir('caf\xe9'), file('caf\xe9/\n', 4), dir('caf')];
    assert.deepEqual(pendingChanges(entries, null), { files: 2, bytes: 4, any: true });
  });
});
