/**
 * Read, check and resolve the TOML configuration. Every problem is reported
 * with the file, the line, the key and how to fix it, and nothing is mounted
 * or changed when the config is not valid.
 */
import { promises as fsp } from 'node:fs';
import { normalize, isAbsolute, join } from 'node:path';
import { parse, TomlError } from 'smol-toml';
import type { z } from 'zod';
import { SquashtreeError, errnoCode } from '../errors.js';
import { LineLocator } from './locate.js';
import { checkSettings, type Problem } from './check-settings.js';
import {
  BUILTIN_DEFAULTS,
  TREE_NAME,
  fileSchema,
  type RawConfig,
  type RawTree,
  type TreeConfig,
  type UpperConfig,
} from './schema.js';
import { LEVEL_RANGE, isWithin, parseBytes, parseTmpfsSize } from './values.js';

export const DEFAULT_CONFIG_PATH = '/etc/squashtree/squashtree.toml';
export const DEFAULT_STORE_ROOT = '/var/lib/squashtree';

export interface Config {
  path: string;
  /** Where a tree's store is when the config does not say (user mode: under $XDG_DATA_HOME). */
  storeRoot?: string;
  /** False when the file does not exist yet (no trees configured). */
  exists: boolean;
  text: string;
  trees: TreeConfig[];
}

function fail(file: string, locator: LineLocator | undefined, problems: Problem[]): never {
  const lines = problems.map((p) => {
    const line = locator?.line(p.key);
    const where = `${file}${line === undefined ? '' : `:${line}`}`;
    const key = p.key.length > 0 ? ` ${formatKey(p.key)}:` : '';
    return `${where}:${key} ${p.message}`;
  });
  const first = problems[0];
  // A value checked in its own table and again after defaults apply is reported once.
  const unique = lines.filter((l, i) => lines.indexOf(l) === i);
  throw new SquashtreeError(first?.code ?? 'E_CONFIG', unique.join('\n'), {
    path: file,
    hint: problems
      .map((p) => p.hint)
      .filter((h, i, a) => a.indexOf(h) === i)
      .join('; '),
  });
}

function formatKey(key: (string | number)[]): string {
  const [head, name, ...rest] = key.map(String);
  if (head === 'tree' && name !== undefined) {
    return `[tree.${name}]${rest.length ? ` ${rest.join('.')}` : ''}`;
  }
  if (head === 'defaults')
    return `[defaults]${name !== undefined ? ` ${[name, ...rest].join('.')}` : ''}`;
  return key.join('.');
}

function zodProblems(error: z.ZodError): Problem[] {
  return error.issues.map((issue) => {
    if (issue.code === 'unrecognized_keys') {
      return {
        code: 'E_CONFIG_KEY' as const,
        key: [
          ...issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p)),
          issue.keys[0] ?? '',
        ],
        message: `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`,
        hint: 'remove it or fix its spelling (see the configuration reference in the README)',
      };
    }
    const key = issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p));
    // Name the list, not its index: mount-options[0], not "0".
    const named = [...key].reverse().find((p) => typeof p === 'string') ?? '';
    const index = typeof key[key.length - 1] === 'number' ? `[${String(key[key.length - 1])}]` : '';
    const last = `${named}${index}`;
    const missing = issue.code === 'invalid_type' && /received undefined/.test(issue.message);
    return {
      code: 'E_CONFIG_VALUE' as const,
      key,
      message: missing
        ? `missing required key "${last}"`
        : `bad value for "${last}": ${issue.message}`,
      hint: missing ? `add ${last} = ... to the table` : `fix the value of ${last}`,
    };
  });
}

export async function loadConfig(
  path: string,
  storeRoot: string = DEFAULT_STORE_ROOT,
): Promise<Config> {
  let text: string;
  try {
    text = await fsp.readFile(path, 'utf8');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return { path, storeRoot, exists: false, text: '', trees: [] };
    throw new SquashtreeError('E_CONFIG', `cannot read config ${path}: ${String(e)}`, {
      path,
      hint: 'check the path given with --config or SQUASHTREE_CONFIG',
    });
  }
  return { path, storeRoot, exists: true, text, trees: parseConfig(text, path, storeRoot) };
}

/** Parse and resolve config text; `file` only names the source in errors. */
export function parseConfig(
  text: string,
  file: string,
  storeRoot: string = DEFAULT_STORE_ROOT,
): TreeConfig[] {
  let data: unknown;
  try {
    data = parse(text);
  } catch (e) {
    if (e instanceof TomlError) {
      const msg = e.message.split('\n')[0] ?? 'syntax error';
      throw new SquashtreeError(
        'E_CONFIG_SYNTAX',
        `${file}:${e.line}:${e.column}: TOML syntax error: ${msg}`,
        {
          path: file,
          hint: 'fix the syntax at that line (TOML: key = "value", tables as [tree.NAME])',
        },
      );
    }
    throw new SquashtreeError('E_CONFIG_SYNTAX', `${file}: cannot parse: ${String(e)}`, {
      path: file,
    });
  }
  const locator = new LineLocator(text);
  // Check names before zod copies the tables: a key like __proto__ would vanish in the copy.
  const rawTrees = (data as { tree?: unknown }).tree;
  if (rawTrees !== null && typeof rawTrees === 'object') {
    const bad = Object.keys(rawTrees).filter((n) => !TREE_NAME.test(n));
    if (bad.length > 0) {
      fail(
        file,
        locator,
        bad.map((n) => ({
          code: 'E_CONFIG_KEY' as const,
          key: ['tree', n],
          message: `tree name "${n}" is not allowed`,
          hint: 'use letters, digits, "-", "_" and "." (at most 64, starting with a letter or digit)',
        })),
      );
    }
  }
  const parsed = fileSchema.safeParse(data);
  if (!parsed.success) fail(file, locator, zodProblems(parsed.error));
  const trees = resolveTrees(parsed.data, file, locator, storeRoot);
  return trees;
}

function resolveTrees(
  raw: RawConfig,
  file: string,
  locator: LineLocator,
  storeRoot: string,
): TreeConfig[] {
  const problems: Problem[] = [];
  const defaults = raw.defaults ?? {};
  const trees: TreeConfig[] = [];
  checkSettings(['defaults'], defaults, problems);
  for (const [name, t] of Object.entries(raw.tree ?? {})) {
    if (!TREE_NAME.test(name)) {
      problems.push({
        code: 'E_CONFIG_KEY',
        key: ['tree', name],
        message: `tree name "${name}" is not allowed`,
        hint: 'use letters, digits, "-", "_" and "." (at most 64, starting with a letter or digit)',
      });
      continue;
    }
    const merged: RawTree = { ...defaults, ...t };
    const before = problems.length;
    checkSettings(['tree', name], t, problems);
    const tree = resolveTree(name, merged, problems, storeRoot);
    if (problems.length === before && tree) trees.push(tree);
  }
  checkOverlaps(trees, problems);
  if (problems.length > 0) fail(file, locator, problems);
  return trees;
}

function resolveTree(
  name: string,
  t: RawTree,
  problems: Problem[],
  storeRoot: string,
): TreeConfig | undefined {
  if (!isAbsolute(t.dir)) return undefined;
  const compression = t.compression ?? BUILTIN_DEFAULTS.compression;
  const level = t['compression-level'];
  if (level !== undefined) {
    const range = LEVEL_RANGE[compression];
    if (!range || level < range[0] || level > range[1]) {
      problems.push({
        code: 'E_CONFIG_VALUE',
        key: ['tree', name, 'compression-level'],
        message: range
          ? `level ${level} is outside ${range[0]}..${range[1]} for ${compression}`
          : `${compression} takes no compression level`,
        hint: 'fix compression-level or the compression it applies to',
      });
      return undefined;
    }
  }
  const upperRaw = t.upper ?? BUILTIN_DEFAULTS.upper;
  const upper: UpperConfig =
    upperRaw === 'tmpfs'
      ? {
          kind: 'tmpfs',
          size: parseTmpfsSize(t['tmpfs-size'] ?? BUILTIN_DEFAULTS.tmpfsSize) ?? '25%',
        }
      : { kind: 'dir', path: normalize(upperRaw).replace(/(.)\/+$/, '$1') };
  const onStop = t['on-stop'] ?? BUILTIN_DEFAULTS.onStop;
  if (onStop === 'keep' && upper.kind === 'tmpfs') {
    problems.push({
      code: 'E_CONFIG_VALUE',
      key: ['tree', name, 'on-stop'],
      message:
        'on-stop = "keep" needs an upper on disk: a tmpfs upper is gone once the tree is stopped',
      hint: 'set upper to an absolute directory on disk, or use on-stop = "commit"',
    });
    return undefined;
  }
  return {
    name,
    dir: normalize(t.dir).replace(/(.)\/+$/, '$1'),
    store: normalize(t.store ?? join(storeRoot, name)).replace(/(.)\/+$/, '$1'),
    compression,
    compressionLevel: level,
    blockSize:
      parseBytes(t['block-size'] ?? BUILTIN_DEFAULTS.blockSize) ?? BUILTIN_DEFAULTS.blockSize,
    mksquashfsArgs: t['mksquashfs-args'] ?? [],
    exclude: (t.exclude ?? []).map((e) => e.replace(/\/+$/, '')),
    upper,
    onStop,
    keep: t.keep ?? BUILTIN_DEFAULTS.keep,
    compactAfter: t['compact-after'] ?? BUILTIN_DEFAULTS.compactAfter,
    compactMethod: t['compact-method'] ?? 'auto',
    packMethod: t['pack-method'] ?? 'auto',
    mountOptions: t['mount-options'] ?? [],
    pullFrom: t['pull-from'],
    verifyKey: t['verify-key'],
    plainHttp: t['plain-http'] ?? false,
    publishTo: t['publish-to'],
    signKey: t['sign-key'],
    engine: t.engine ?? 'auto',
  };
}

function checkOverlaps(trees: TreeConfig[], problems: Problem[]): void {
  for (const [i, a] of trees.entries()) {
    for (const b of trees.slice(i + 1)) {
      const pairs: [string, string, string, string][] = [
        [a.dir, b.dir, 'dir', 'dir'],
        [a.store, b.store, 'store', 'store'],
        [a.store, b.dir, 'store', 'dir'],
        [a.dir, b.store, 'dir', 'store'],
      ];
      const ua = a.upper.kind === 'dir' ? a.upper.path : undefined;
      const ub = b.upper.kind === 'dir' ? b.upper.path : undefined;
      if (ua && ub) pairs.push([ua, ub, 'upper', 'upper']);
      if (ub) pairs.push([a.dir, ub, 'dir', 'upper'], [a.store, ub, 'store', 'upper']);
      if (ua) pairs.push([ua, b.dir, 'upper', 'dir'], [ua, b.store, 'upper', 'store']);
      for (const [x, y, kx, ky] of pairs) {
        if (isWithin(x, y) || isWithin(y, x)) {
          problems.push({
            code: 'E_CONFIG_OVERLAP',
            key: ['tree', b.name, ky],
            message: `${ky} ${y} of tree "${b.name}" overlaps ${kx} ${x} of tree "${a.name}"`,
            hint: 'each tree needs its own dir and store, and none may lie inside another tree',
          });
        }
      }
    }
    for (const [what, p] of [
      ['store', a.store],
      ['upper', a.upper.kind === 'dir' ? a.upper.path : ''],
    ] as const) {
      if (p && (isWithin(p, a.dir) || isWithin(a.dir, p))) {
        problems.push({
          code: 'E_CONFIG_OVERLAP',
          key: ['tree', a.name, what],
          message: `${what} ${p} overlaps the tree's own dir ${a.dir}`,
          hint: `put the ${what} outside ${a.dir}: the overlay would hide it`,
        });
      }
    }
    if (
      a.upper.kind === 'dir' &&
      (isWithin(a.upper.path, a.store) || isWithin(a.store, a.upper.path))
    ) {
      problems.push({
        code: 'E_CONFIG_OVERLAP',
        key: ['tree', a.name, 'upper'],
        message: `upper ${a.upper.path} overlaps the tree's store ${a.store}`,
        hint: 'give the upper a directory of its own',
      });
    }
  }
}

/** Pick trees by name (none given: all). Unknown names are an error. */
export function selectTrees(config: Config, names: readonly string[]): TreeConfig[] {
  if (names.length === 0) return config.trees;
  return names.map((n) => {
    const t = config.trees.find((x) => x.name === n);
    if (!t) {
      throw new SquashtreeError('E_NO_TREE', `no tree named "${n}" in ${config.path}`, {
        hint: config.trees.length
          ? `configured trees: ${config.trees.map((x) => x.name).join(', ')}`
          : `add one with: squashtree init ${n} --dir DIR`,
      });
    }
    return t;
  });
}
