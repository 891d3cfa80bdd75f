/** Shared by the config-load*.test.ts files: parse a config, expect one tree or a coded refusal. */
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/load.js';
import { SquashtreeError, type ErrorCode } from '../../src/errors.js';
import type { TreeConfig } from '../../src/config/schema.js';

export const FILE = '/etc/squashtree/test.toml';

export interface Expect {
  /** Substrings the message must contain (keys, values). */
  has?: string[];
  /** Line the message must name as FILE:LINE. */
  line?: number;
}

export function refuse(text: string, code: ErrorCode, want: Expect = {}): SquashtreeError {
  let caught: unknown;
  try {
    parseConfig(text, FILE);
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof SquashtreeError, `expected a SquashtreeError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.equal(caught.path, FILE);
  assert.ok(caught.message.startsWith(FILE), caught.message);
  if (want.line !== undefined) {
    assert.ok(
      caught.message.includes(`${FILE}:${want.line}:`),
      `no :${want.line}: in ${caught.message}`,
    );
  }
  for (const s of want.has ?? [])
    assert.ok(caught.message.includes(s), `no ${s} in ${caught.message}`);
  assert.ok(caught.hint !== undefined && caught.hint.length > 0, 'a hint names the fix');
  return caught;
}

export function one(text: string): TreeConfig {
  const trees = parseConfig(text, FILE);
  assert.equal(trees.length, 1);
  const [t] = trees;
  assert.ok(t);
  return t;
}

export const tree = (body: string, name = 'a', dir = '/srv/a'): string =>
  `[tree.${name}]\ndir = "${dir}"\n${body}`;
