/**
 * File names on Linux are bytes, not text. Inside the tool a relative path is
 * a "binary string": one char per byte (latin1), so names that are not UTF-8
 * survive every round trip. These helpers convert at the edges.
 */
import { Buffer } from 'node:buffer';

const PLAIN = /^[ -~]*$/;

/** Join an absolute root (text) and a binary relative path into a path for node:fs. */
export function fsPath(root: string, rel: string): string | Buffer {
  if (rel === '') return root;
  // Plain text where the bytes are printable ASCII (nearly always): no Buffer per path to allocate.
  if (PLAIN.test(rel)) return `${root}/${rel}`;
  return Buffer.concat([Buffer.from(root), Buffer.from('/'), Buffer.from(rel, 'latin1')]);
}

export function joinRel(parent: string, name: string): string {
  return parent === '' ? name : `${parent}/${name}`;
}

/** The binary relative path of the dir holding `rel` ('' for the root's entries). */
export function parentOf(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i < 0 ? '' : rel.slice(0, i);
}

/** For display: decode as UTF-8 where valid, escape everything else (C-style, like ls -b). */
export function displayPath(rel: string): string {
  const buf = Buffer.from(rel, 'latin1');
  const text = buf.toString('utf8');
  const clean = Buffer.from(text, 'utf8').equals(buf);
  let out = '';
  if (clean) {
    for (const ch of text) {
      const c = ch.codePointAt(0) ?? 0;
      out += c < 0x20 || c === 0x7f || ch === '\\' ? escapeByte(c) : ch;
    }
    return out;
  }
  for (const b of buf)
    out += b < 0x20 || b >= 0x7f || b === 0x5c ? escapeByte(b) : String.fromCharCode(b);
  return out;
}

function escapeByte(b: number): string {
  if (b === 0x0a) return '\\n';
  if (b === 0x09) return '\\t';
  if (b === 0x5c) return '\\\\';
  return `\\x${b.toString(16).padStart(2, '0')}`;
}

/**
 * A binary relative path as JSON shows it: the text itself where the bytes
 * are UTF-8 (any character, JSON escapes what it must); otherwise the
 * display form (\xHH for each byte that is not UTF-8, \\ for a backslash)
 * and the exact bytes in base64, as inspect --json gives them.
 */
export function jsonPath(rel: string): { path: string; pathBase64?: string } {
  const buf = Buffer.from(rel, 'latin1');
  const text = buf.toString('utf8');
  if (Buffer.from(text, 'utf8').equals(buf)) return { path: text };
  return { path: displayPath(rel), pathBase64: buf.toString('base64') };
}

/** The binary relative path back from jsonPath's form. */
export function fromJsonPath(p: { path: string; pathBase64?: string }): string {
  return p.pathBase64 !== undefined
    ? Buffer.from(p.pathBase64, 'base64').toString('latin1')
    : Buffer.from(p.path, 'utf8').toString('latin1');
}
