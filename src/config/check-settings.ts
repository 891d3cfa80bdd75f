/**
 * Checks of one table's settings ([defaults] or [tree.NAME]) as written,
 * before defaults apply: sizes, levels, paths. Paths are taken as written:
 * one with ".." is refused, not resolved, and so is a system directory.
 */
import { isAbsolute, normalize } from 'node:path';
import { errorMessage, type ErrorCode } from '../errors.js';
import { parseReference } from '../oci/reference.js';
import { COMPRESSORS, type RawTree } from './schema.js';
import { hasDotDot, systemRootProblem } from './system-paths.js';
import { LEVEL_RANGE, isPowerOfTwo, isSafeRelative, parseBytes, parseTmpfsSize } from './values.js';

export interface Problem {
  code: ErrorCode;
  key: (string | number)[];
  message: string;
  hint: string;
}

export function checkSettings(at: string[], s: Partial<RawTree>, problems: Problem[]): void {
  const bad = (key: string, message: string, hint: string): void => {
    problems.push({ code: 'E_CONFIG_VALUE', key: [...at, key], message, hint });
  };
  if (s['block-size'] !== undefined) {
    const b = parseBytes(s['block-size']);
    if (b === undefined || !isPowerOfTwo(b) || b < 4096 || b > 1024 * 1024) {
      bad(
        'block-size',
        `block-size ${JSON.stringify(s['block-size'])} is not a power of two from 4K to 1M`,
        'use one of "4K", "8K", ..., "128K", "1M"',
      );
    }
  }
  if (s['tmpfs-size'] !== undefined && parseTmpfsSize(s['tmpfs-size']) === undefined) {
    bad(
      'tmpfs-size',
      `tmpfs-size ${JSON.stringify(s['tmpfs-size'])} is not a size`,
      'write a size such as "2G", "512M" or "25%" (of RAM)',
    );
  }
  if (s['compression-level'] !== undefined && s.compression !== undefined) {
    const range = LEVEL_RANGE[s.compression];
    const lvl = s['compression-level'];
    if (!range)
      bad(
        'compression-level',
        `${s.compression} takes no compression level`,
        `remove compression-level or choose ${COMPRESSORS.filter((c) => LEVEL_RANGE[c]).join(', ')}`,
      );
    else if (lvl < range[0] || lvl > range[1])
      bad(
        'compression-level',
        `level ${lvl} is outside ${range[0]}..${range[1]} for ${s.compression}`,
        `use a level from ${range[0]} to ${range[1]}`,
      );
  }
  for (const [i, ex] of (s.exclude ?? []).entries()) {
    if (!isSafeRelative(ex.replace(/\/+$/, ''))) {
      problems.push({
        code: 'E_CONFIG_VALUE',
        key: [...at, 'exclude', i],
        message: `exclude entry ${JSON.stringify(ex)} must be a path relative to the tree, without ".."`,
        hint: 'write paths such as "distfiles" or "metadata/md5-cache"',
      });
    }
  }
  for (const k of ['dir', 'store', 'upper'] as const) {
    const v = s[k];
    if (v === undefined || (k === 'upper' && v === 'tmpfs')) continue;
    if (v.includes('\0')) bad(k, `${k} contains a NUL byte`, `fix the value of ${k}`);
    else if (hasDotDot(v))
      bad(
        k,
        `${k} ${JSON.stringify(v)} contains ".."; configured paths are taken as written, not resolved`,
        `write the path without "..", as the directory it means`,
      );
    else if (isAbsolute(v) && normalize(v) !== '/') {
      const sys = systemRootProblem(normalize(v));
      if (sys)
        bad(
          k,
          `${k} ${JSON.stringify(v)}: ${sys}`,
          `give the ${k} a directory of its own, such as ${k === 'dir' ? '/var/db/repos/gentoo' : k === 'store' ? '/var/lib/squashtree/NAME' : '/var/tmp/squashtree/NAME'}`,
        );
    }
  }
  if (s.upper !== undefined && s.upper !== 'tmpfs' && normalize(s.upper) === '/') {
    bad(
      'upper',
      'upper must not be the root directory',
      'choose a directory of its own, such as "/var/tmp/squashtree/NAME"',
    );
  }
  if (s.upper !== undefined && s.upper !== 'tmpfs' && !isAbsolute(s.upper)) {
    bad(
      'upper',
      `upper ${JSON.stringify(s.upper)} is neither "tmpfs" nor an absolute path`,
      'write upper = "tmpfs" or an absolute directory such as "/var/tmp/squashtree/NAME"',
    );
  }
  if (s['verify-key'] !== undefined && !isAbsolute(s['verify-key'])) {
    bad(
      'verify-key',
      `verify-key ${JSON.stringify(s['verify-key'])} is not an absolute path`,
      'write the absolute path of the public key file (PEM)',
    );
  }
  checkPublishSettings(s, bad);

  if (s.store !== undefined && !isAbsolute(s.store)) {
    bad(
      'store',
      `store ${JSON.stringify(s.store)} is not an absolute path`,
      'write an absolute path such as "/var/lib/squashtree/NAME"',
    );
  }
  if (s.dir !== undefined && !isAbsolute(s.dir)) {
    bad(
      'dir',
      `dir ${JSON.stringify(s.dir)} is not an absolute path`,
      'write an absolute path such as "/var/db/repos/gentoo"',
    );
  } else if (s.dir !== undefined && normalize(s.dir) === '/') {
    bad('dir', 'dir must not be the root directory', 'choose the directory of the tree itself');
  }
}

/** publish-to must name a repository (publish tags it itself); sign-key an absolute file. */
function checkPublishSettings(
  s: Partial<RawTree>,
  bad: (key: string, message: string, hint: string) => void,
): void {
  const to = s['publish-to'];
  if (to !== undefined) {
    let why: string | undefined;
    try {
      const ref = parseReference(to);
      if (ref.tag !== undefined || ref.digest !== undefined) why = 'it names a tag or digest';
    } catch (e) {
      why = errorMessage(e);
    }
    if (why !== undefined)
      bad(
        'publish-to',
        `publish-to ${JSON.stringify(to)} is not a registry repository: ${why}`,
        'write REGISTRY/REPOSITORY, for example "registry.example.org/gentoo/repo" (publish tags gen-N and latest itself)',
      );
  }
  const key = s['sign-key'];
  if (key !== undefined && !isAbsolute(key)) {
    bad(
      'sign-key',
      `sign-key ${JSON.stringify(key)} is not an absolute path`,
      'write the absolute path of the private key file (squashtree key generate writes one)',
    );
  }
}
