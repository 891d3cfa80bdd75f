/** The benchmark's pure logic: alternating rounds, paired ratios, verdicts, reading --json defensively. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { alternate, paired, type Sample } from '../../bench/lib/pairs.js';
import { figure } from '../../bench/lib/figures.js';
import { deepNum, pulledImages } from '../../bench/lib/fields.js';
import { parseChildTicks } from '../../bench/lib/cputime.js';
import { plan } from '../../bench/lib/plan.js';
import { PARTS } from '../../bench/lib/args.js';

const s = (wallMs: number): Sample => ({ wallMs, cpuMs: wallMs / 2, load: 1 });

describe('alternate', () => {
  it('runs A B, then B A, with set-up before and clean-up after each round', async () => {
    const seen: string[] = [];
    const mk = (name: string) => ({
      name,
      run: (r: number) => {
        seen.push(`${name}${r}`);
        return Promise.resolve({ wallMs: r + 1, cpuMs: 0 });
      },
    });
    const got = await alternate([mk('a'), mk('b')], {
      rounds: 3,
      prepare: (r) => {
        seen.push(`prep${r}`);
        return Promise.resolve();
      },
      after: (r, samples) => {
        seen.push(`after${r}:${samples.a?.length ?? 0}`);
        return Promise.resolve();
      },
    });
    assert.deepEqual(seen, [
      'prep0',
      'a0',
      'b0',
      'after0:1',
      'prep1',
      'b1',
      'a1',
      'after1:2',
      'prep2',
      'a2',
      'b2',
      'after2:3',
    ]);
    assert.deepEqual(
      got.a?.map((x) => x.wallMs),
      [1, 2, 3],
    );
  });
});

describe('paired', () => {
  it('takes the ratio within each round, not of the medians', () => {
    // Load doubled in round 2: both sides slowed, the ratio did not move.
    const p = paired([s(1), s(2), s(1)], [s(10), s(20), s(10)]);
    assert.deepEqual(p.ratios, [0.1, 0.1, 0.1]);
    assert.equal(p.ratio.median, 0.1);
    assert.equal(p.spread, 0);
    assert.equal(p.reliable, true);
    assert.equal(p.aCpu.median, 0.5);
  });

  it('is unreliable when the ratios spread by more than 20% of their median, or with one round', () => {
    const wide = paired([s(1), s(1.3), s(1)], [s(10), s(10), s(10)]);
    assert.ok(Math.abs(wide.spread - 0.3) < 1e-9);
    assert.equal(wide.reliable, false);
    assert.equal(paired([s(1), s(1.15)], [s(10), s(10)]).reliable, true);
    assert.equal(paired([s(1)], [s(10)]).reliable, false);
  });
});

describe('figure', () => {
  const base = { corpus: 'generated-gentoo', compressor: 'gzip', build: 'current', shown: '' };

  it('is PASS or MISS against its target only when the pairs are reliable', () => {
    const good = paired([s(1), s(1)], [s(100), s(100)]);
    const bad = paired([s(1), s(3)], [s(100), s(100)]);
    assert.equal(figure('commit-day', { ...base, value: 0.01, paired: good }).verdict, 'PASS');
    assert.equal(figure('commit-day', { ...base, value: 0.03, paired: good }).verdict, 'MISS');
    assert.equal(figure('commit-day', { ...base, value: 0.01, paired: bad }).verdict, 'UNRELIABLE');
    assert.equal(figure('commit-day', { ...base, value: NaN }).verdict, 'MISS');
  });

  it("takes the compressor's own target and the issue's value as the before", () => {
    const xz = figure('compact-day', { ...base, compressor: 'xz -b 1M', value: 0.04 });
    assert.equal(xz.target, '<= 0.03');
    assert.equal(xz.now, '0.06-0.10');
    assert.equal(
      figure('compact-day', { ...base, compressor: 'zstd', value: 0.04 }).verdict,
      'INFO',
    );
  });

  it('marks a figure measured on another corpus than the issue names as informative', () => {
    assert.equal(figure('commit-day', { ...base, value: 0.5 }).informative, undefined);
    assert.match(
      figure('commit-day', { ...base, corpus: 'generated-small', value: 0.5 }).informative ?? '',
      /generated-gentoo/,
    );
  });
});

describe('reading --json defensively', () => {
  it('finds a number anywhere, NaN when absent', () => {
    assert.equal(deepNum({ trees: [{ result: { bytesDownloaded: 7 } }] }, 'bytesDownloaded'), 7);
    assert.ok(Number.isNaN(deepNum({ a: 'x' }, 'bytesDownloaded')));
  });

  it('counts images by how a pull got them, in either shape', () => {
    const today = pulledImages({ downloaded: [{ file: 'a', bytes: 5 }], reused: ['b', 'c'] });
    assert.deepEqual(today.downloaded, { count: 1, bytes: 5 });
    assert.deepEqual(today.reused, { count: 2, bytes: 0 });
    const perImage = pulledImages({
      images: [
        { file: 'a', how: 'rebuilt', bytes: 10 },
        { file: 'b', how: 'downloaded', bytes: 3 },
      ],
    });
    assert.deepEqual(perImage.rebuilt, { count: 1, bytes: 10 });
    assert.deepEqual(perImage.downloaded, { count: 1, bytes: 3 });
  });
});

describe('cpu time of children', () => {
  it("reads cutime + cstime from /proc/self/stat, whatever the command's name holds", () => {
    const stat = '42 (a b) c) S 1 42 42 0 -1 4194304 10 20 0 0 5 6 700 80 20 0 1 0 123 456 7';
    assert.equal(parseChildTicks(stat), 780);
  });
});

describe('plan', () => {
  const all = new Set(PARTS);

  it('runs every figure with the first compressor and the compaction figure with gzip and xz', () => {
    const jobs = plan('generated', ['gzip', 'xz', 'lz4'], all, 'small');
    assert.deepEqual(
      jobs.map((j) => [
        j.spec.label,
        j.stack?.reads ?? null,
        j.stack?.compact ?? null,
        j.daily?.fleet ?? null,
      ]),
      [
        ['gzip', true, true, true],
        ['xz', false, true, false],
        ['lz4', null, null, false],
      ],
    );
  });

  it('gives GURU the most-change commit and the fleet, and all four compressors at gentoo scale', () => {
    assert.equal(plan('guru', ['gzip'], all, 'small').length, 1);
    assert.deepEqual(
      plan('guru', ['gzip', 'xz'], all, 'gentoo').map((j) => j.spec.label),
      ['gzip', 'xz', 'lz4', 'zstd'],
    );
    assert.deepEqual(plan('linux', ['gzip'], new Set(['size'] as const), 'small'), []);
    // At gentoo scale the generated tree's size figure is the primary's alone.
    assert.deepEqual(
      plan('generated', ['gzip', 'xz', 'zstd'], all, 'gentoo').map((j) => [
        j.spec.label,
        Boolean(j.daily),
      ]),
      [
        ['gzip', true],
        ['xz', false],
      ],
    );
  });
});
