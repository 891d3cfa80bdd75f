/** Parsing /proc/self/mountinfo text and querying it. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  mountsUnder,
  parseMountinfo,
  superOption,
  topMountAt,
  unescapeMountField,
  type MountEntry,
} from '../../src/mount/mountinfo.js';

const UPPER = '/run/squashtree/gentoo/upper/data';
const SAMPLE = [
  '22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro',
  '25 22 0:22 / /run rw,nosuid,nodev,noexec,relatime shared:5 master:2 - tmpfs tmpfs rw,size=1632604k,mode=755',
  '40 22 8:1 /srv/data /srv/bind rw,relatime - ext4 /dev/sda1 rw',
  '100 25 7:0 / /run/squashtree/gentoo/img/0 ro,nosuid,nodev,relatime - squashfs /dev/loop0 ro,errors=continue',
  '101 25 7:1 / /run/squashtree/gentoo/img/1 ro,nosuid,nodev,relatime - squashfs /dev/loop1 ro',
  '102 25 0:51 / /run/squashtree/gentoo/upper rw,nosuid,nodev - tmpfs squashtree-upper rw,size=1024k',
  `103 22 0:52 / /var/db/repos/gentoo rw,nosuid,nodev,relatime - overlay overlay rw,lowerdir=/run/squashtree/gentoo/img/1:/run/squashtree/gentoo/img/0,upperdir=${UPPER},workdir=/run/squashtree/gentoo/upper/work,redirect_dir=off,index=off,metacopy=off`,
  '104 103 0:53 / /var/db/repos/gentoo/with\\040space\\011tab rw,relatime - tmpfs my\\134src rw',
  '105 22 0:54 / /var/db/repos/gentoo rw,relatime - tmpfs second rw',
  '',
].join('\n');

function at(mounts: readonly MountEntry[], id: number): MountEntry {
  const m = mounts.find((x) => x.id === id);
  assert.ok(m, `mount ${id}`);
  return m;
}

describe('unescapeMountField', () => {
  it('decodes the kernel’s octal escapes', () => {
    assert.equal(unescapeMountField('a\\040b'), 'a b');
    assert.equal(unescapeMountField('a\\011b\\012c'), 'a\tb\nc');
    assert.equal(unescapeMountField('back\\134slash'), 'back\\slash');
    assert.equal(unescapeMountField('\\040\\040'), '  ');
  });

  it('leaves text without escapes, and incomplete escapes, alone', () => {
    assert.equal(unescapeMountField('/plain/path'), '/plain/path');
    assert.equal(unescapeMountField('a\\04'), 'a\\04');
    assert.equal(unescapeMountField('a\\999'), 'a\\999');
  });

  it('decodes an escaped backslash once, not again', () => {
    // "\134040" is a backslash followed by the text "040".
    assert.equal(unescapeMountField('x\\134040'), 'x\\040');
  });
});

describe('parseMountinfo', () => {
  const mounts = parseMountinfo(SAMPLE);

  it('reads one entry per line, skipping blank lines', () => {
    assert.equal(mounts.length, 9);
    assert.deepEqual(
      mounts.map((m) => m.id),
      [22, 25, 40, 100, 101, 102, 103, 104, 105],
    );
  });

  it('reads every field of a line', () => {
    assert.deepEqual(at(mounts, 25), {
      id: 25,
      parent: 22,
      mountPoint: '/run',
      options: 'rw,nosuid,nodev,noexec,relatime',
      fstype: 'tmpfs',
      source: 'tmpfs',
      superOptions: 'rw,size=1632604k,mode=755',
    });
  });

  it('handles lines with no optional fields and with several', () => {
    assert.equal(at(mounts, 40).fstype, 'ext4');
    assert.equal(at(mounts, 40).mountPoint, '/srv/bind');
    assert.equal(at(mounts, 25).fstype, 'tmpfs');
    assert.equal(at(mounts, 100).source, '/dev/loop0');
    assert.equal(at(mounts, 100).options, 'ro,nosuid,nodev,relatime');
  });

  it('unescapes the mount point and the source', () => {
    const m = at(mounts, 104);
    assert.equal(m.mountPoint, '/var/db/repos/gentoo/with space\ttab');
    assert.equal(m.source, 'my\\src');
    assert.equal(m.parent, 103);
  });

  it('skips lines without the " - " separator', () => {
    const out = parseMountinfo('garbage line\n22 1 8:1 / / rw - ext4 /dev/sda1 rw\n');
    assert.equal(out.length, 1);
    assert.equal(out[0]?.mountPoint, '/');
  });

  it('gives nothing for empty text', () => {
    assert.deepEqual(parseMountinfo(''), []);
    assert.deepEqual(parseMountinfo('\n\n'), []);
  });
});

describe('topMountAt', () => {
  const mounts = parseMountinfo(SAMPLE);

  it('gives the last mount on a path (the visible one)', () => {
    assert.equal(topMountAt(mounts, '/var/db/repos/gentoo')?.id, 105);
    assert.equal(topMountAt(mounts.slice(0, 8), '/var/db/repos/gentoo')?.id, 103);
  });

  it('matches the exact path only', () => {
    assert.equal(topMountAt(mounts, '/var/db/repos'), undefined);
    assert.equal(topMountAt(mounts, '/var/db/repos/gentoo/'), undefined);
    assert.equal(topMountAt(mounts, '/run')?.id, 25);
    assert.equal(topMountAt([], '/'), undefined);
  });

  it('matches mount points with escaped characters by their real name', () => {
    assert.equal(topMountAt(mounts, '/var/db/repos/gentoo/with space\ttab')?.id, 104);
  });
});

describe('mountsUnder', () => {
  const mounts = parseMountinfo(SAMPLE);

  it('lists mounts at and below a path, deepest first', () => {
    // Siblings of one length come latest-mounted first.
    assert.deepEqual(
      mountsUnder(mounts, '/run/squashtree/gentoo').map((m) => m.id),
      [102, 101, 100],
    );
    const all = mountsUnder(mounts, '/run').map((m) => m.id);
    assert.equal(all[all.length - 1], 25);
    assert.equal(all.length, 4);
  });

  it('unmounts a later mount on the same path before an earlier one', () => {
    const ids = mountsUnder(mounts, '/var/db/repos/gentoo').map((m) => m.id);
    assert.deepEqual(ids, [104, 105, 103]);
  });

  it('puts every mount before its parent', () => {
    const order = mountsUnder(mounts, '/');
    assert.equal(order.length, mounts.length);
    const pos = new Map(order.map((m, i) => [m.id, i]));
    for (const [i, m] of order.entries()) {
      const parent = pos.get(m.parent);
      if (parent !== undefined) assert.ok(i < parent, `${m.id} before ${m.parent}`);
    }
  });

  it('does not take a sibling that shares a prefix', () => {
    const ms = parseMountinfo(
      '1 0 0:1 / /srv/a rw - tmpfs a rw\n2 0 0:2 / /srv/ab rw - tmpfs ab rw\n3 1 0:3 / /srv/a/x rw - tmpfs x rw\n',
    );
    assert.deepEqual(
      mountsUnder(ms, '/srv/a').map((m) => m.id),
      [3, 1],
    );
  });

  it('gives nothing when nothing is mounted there', () => {
    assert.deepEqual(mountsUnder(mounts, '/nowhere'), []);
  });

  it('does not reorder the list it was given', () => {
    const copy = [...mounts];
    mountsUnder(mounts, '/');
    assert.deepEqual(mounts, copy);
  });
});

describe('superOption', () => {
  const overlay = at(parseMountinfo(SAMPLE), 103);

  it('reads key=value options', () => {
    assert.equal(superOption(overlay, 'upperdir'), UPPER);
    assert.equal(superOption(overlay, 'workdir'), '/run/squashtree/gentoo/upper/work');
    assert.equal(
      superOption(overlay, 'lowerdir'),
      '/run/squashtree/gentoo/img/1:/run/squashtree/gentoo/img/0',
    );
    assert.equal(superOption(overlay, 'redirect_dir'), 'off');
  });

  it('gives undefined for flags, missing keys and prefixes of keys', () => {
    assert.equal(superOption(overlay, 'rw'), undefined);
    assert.equal(superOption(overlay, 'upper'), undefined);
    assert.equal(superOption(overlay, 'nfs_export'), undefined);
    assert.equal(superOption(overlay, ''), undefined);
  });

  it('keeps "=" inside a value', () => {
    const m = { ...overlay, superOptions: 'rw,opt=a=b,x' };
    assert.equal(superOption(m, 'opt'), 'a=b');
  });

  it('decodes escaped characters in a value, as the kernel writes them', () => {
    const m = { ...overlay, superOptions: 'rw,upperdir=/run/my\\040state/upper/data' };
    assert.equal(superOption(m, 'upperdir'), '/run/my state/upper/data');
  });
});
