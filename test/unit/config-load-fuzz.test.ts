/**
 * Fuzz parseConfig with deterministic mutations of a valid config: whatever
 * the text, it either resolves to trees that satisfy the schema's promises or
 * throws a SquashtreeError with a config code; never another exception.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/load.js';
import { COMPRESSORS, ON_STOP, TREE_NAME, type TreeConfig } from '../../src/config/schema.js';
import { Random } from '../../src/corpus/random.js';
import { SquashtreeError } from '../../src/errors.js';

const FILE = '/etc/squashtree/fuzz.toml';
const SEED = 20240601;
const ROUNDS = 3000;

const BASE = `# squashtree configuration
[defaults]
compression = "zstd"
compression-level = 12
exclude = ["distfiles", "packages", ".git"]
keep = 3

[tree.gentoo]
dir = "/var/db/repos/gentoo"
tmpfs-size = "1G"
block-size = "256K"

[tree.linux]
dir = "/usr/src/linux"
store = "/var/lib/squashtree/linux"
upper = "/var/tmp/squashtree/linux"   # on disk: survives a reboot
on-stop = "keep"
mount-options = ["noexec", "noatime"]
mksquashfs-args = ["-no-fragments"]

[tree."tex.live"]
dir = "/usr/share/texmf-dist"
compression = "lzo"
compression-level = 1
compact-after = 4
`;

const CHARS = 'abcdefghijklmnopqrstuvwxyz0123456789 \t\n"\'[]{}=.,#-_/\\%+:'.split('');
CHARS.push('\r', '\u0000', 'é', '\u{1F600}', '\u007f');

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
  'colour',
  'Dir',
  'tree',
  'defaults',
  '"quoted key"',
  'a.b',
  '__proto__',
  'constructor',
];

const VALUES = [
  '"/srv/x"',
  '"/srv/x/"',
  '"relative/x"',
  '"/"',
  '""',
  '"tmpfs"',
  '"1X"',
  '"4K"',
  '"3K"',
  '"1M"',
  '"2M"',
  '"25%"',
  '"0%"',
  '"101%"',
  '"0.5"',
  '"1.5G"',
  '"gzip"',
  '"xz"',
  '"lz4"',
  '"lzo"',
  '"bzip2"',
  '"keep"',
  '"discard"',
  '"commit"',
  '0',
  '1',
  '-1',
  '9',
  '22',
  '23',
  '1000',
  '1001',
  '4096',
  '1.5',
  'inf',
  'nan',
  'true',
  '1979-05-27',
  '1979-05-27T07:32:00Z',
  '[]',
  '["noexec"]',
  '["suid"]',
  '["../up"]',
  '["/abs"]',
  '[1, 2]',
  '{}',
  '{ dir = "/srv/y" }',
  '"""multi\nline"""',
  "'literal'",
  '"\\u0000"',
  '"/var/db/repos/gentoo/sub"',
  '"/usr/src"',
  '"/var/lib/squashtree/linux"',
];

const HEADERS = [
  '[defaults]',
  '[tree.extra]',
  '[tree.gentoo]',
  '[tree."bad name"]',
  '[tree.-x]',
  '[tree]',
  '[[tree]]',
  '[trees.a]',
  '[tree.a.b]',
  '[',
  '[tree.__proto__]',
];

function mutate(rng: Random, text: string): string {
  const op = rng.int(0, 9);
  const at = rng.int(0, text.length);
  const lines = text.split('\n');
  const li = rng.int(0, lines.length - 1);
  const line = lines[li] ?? '';
  switch (op) {
    case 0: // delete a run of chars
      return text.slice(0, at) + text.slice(at + rng.int(1, 4));
    case 1: // insert a char
      return text.slice(0, at) + rng.pick(CHARS) + text.slice(at);
    case 2: // replace a char
      return text.slice(0, at) + rng.pick(CHARS) + text.slice(at + 1);
    case 3: {
      // swap two lines
      const lj = rng.int(0, lines.length - 1);
      const a = lines[li] ?? '';
      lines[li] = lines[lj] ?? '';
      lines[lj] = a;
      return lines.join('\n');
    }
    case 4: // delete or duplicate a line
      if (rng.chance(0.5)) lines.splice(li, 1);
      else lines.splice(li, 0, line);
      return lines.join('\n');
    case 5: {
      // change a value
      const eq = line.indexOf('=');
      if (eq < 0) return text;
      lines[li] = `${line.slice(0, eq + 1)} ${rng.pick(VALUES)}`;
      return lines.join('\n');
    }
    case 6: {
      // rename a key
      const eq = line.indexOf('=');
      if (eq < 0) return text;
      lines[li] = `${rng.pick(KEYS)} ${line.slice(eq)}`;
      return lines.join('\n');
    }
    case 7: // insert a key = value line
      lines.splice(li, 0, `${rng.pick(KEYS)} = ${rng.pick(VALUES)}`);
      return lines.join('\n');
    case 8: // insert a table header
      lines.splice(li, 0, rng.pick(HEADERS));
      return lines.join('\n');
    default: {
      // truncate
      return text.slice(0, at);
    }
  }
}

/** What a resolved tree promises, whatever text it came from. */
function checkTree(t: TreeConfig): void {
  assert.match(t.name, TREE_NAME);
  assert.ok(t.dir.startsWith('/') && t.dir !== '/', `dir ${t.dir}`);
  assert.ok(t.store.startsWith('/'), `store ${t.store}`);
  assert.ok(COMPRESSORS.includes(t.compression));
  assert.ok(ON_STOP.includes(t.onStop));
  assert.ok(Number.isInteger(t.blockSize) && t.blockSize >= 4096 && t.blockSize <= 1 << 20);
  assert.equal(t.blockSize & (t.blockSize - 1), 0, `block size ${t.blockSize}`);
  assert.ok(Number.isInteger(t.keep) && t.keep >= 0);
  assert.ok(Number.isInteger(t.compactAfter) && t.compactAfter >= 1);
  if (t.compressionLevel !== undefined) {
    assert.ok(['gzip', 'zstd', 'lzo'].includes(t.compression));
    assert.ok(Number.isInteger(t.compressionLevel) && t.compressionLevel >= 1);
  }
  if (t.onStop === 'keep') assert.equal(t.upper.kind, 'dir');
  for (const e of t.exclude) assert.ok(!e.startsWith('/') && !e.split('/').includes('..'), e);
}

describe('parseConfig fuzz', () => {
  it('the base config is valid', () => {
    const trees = parseConfig(BASE, FILE);
    assert.deepEqual(
      trees.map((t) => t.name),
      ['gentoo', 'linux', 'tex.live'],
    );
  });

  it(`${ROUNDS} mutated configs parse or throw a SquashtreeError`, { timeout: 30_000 }, (t) => {
    const rng = new Random(SEED);
    const counts = new Map<string, number>();
    const bump = (k: string): void => {
      counts.set(k, (counts.get(k) ?? 0) + 1);
    };
    for (let i = 0; i < ROUNDS; i++) {
      let text = BASE;
      const n = rng.int(1, 3);
      for (let k = 0; k < n; k++) text = mutate(rng, text);
      let trees: TreeConfig[];
      try {
        trees = parseConfig(text, FILE);
      } catch (e) {
        if (!(e instanceof SquashtreeError)) {
          assert.fail(`round ${i}: ${String(e)} for:\n${text}`);
        }
        assert.match(e.code, /^E_CONFIG/, `round ${i}: ${e.code} for:\n${text}`);
        assert.ok(e.message.startsWith(FILE), `round ${i}: ${e.message}`);
        assert.equal(e.path, FILE);
        for (const l of e.message.split('\n')) assert.ok(l.startsWith(FILE), `round ${i}: ${l}`);
        if (e.code === 'E_CONFIG_SYNTAX') {
          assert.match(e.message, new RegExp(`^${FILE}:\\d+:\\d+: `), `round ${i}: ${e.message}`);
        }
        bump(e.code);
        continue;
      }
      bump('ok');
      for (const t of trees) {
        try {
          checkTree(t);
        } catch (err) {
          assert.fail(`round ${i}: ${String(err)} for:\n${text}`);
        }
      }
    }
    t.diagnostic(`outcomes: ${JSON.stringify(Object.fromEntries(counts))}`);
    // The mutations must reach every outcome, or the fuzz tests nothing.
    for (const k of ['ok', 'E_CONFIG_SYNTAX', 'E_CONFIG_KEY', 'E_CONFIG_VALUE']) {
      assert.ok((counts.get(k) ?? 0) >= ROUNDS / 100, `${k}: ${JSON.stringify([...counts])}`);
    }
  });
});
