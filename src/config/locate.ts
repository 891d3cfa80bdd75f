/**
 * TOML parsers return values, not positions. To name the line of a bad key
 * we scan the text for table headers and `key =` lines; that is exact for
 * the plain layout a config file has ([table] then key = value lines).
 */

export interface KeyLocation {
  line: number;
}

function unquote(s: string): string {
  const t = s.trim();
  if ((t.startsWith('"') && t.endsWith('"')) || (t.startsWith("'") && t.endsWith("'"))) {
    return t.slice(1, -1);
  }
  return t;
}

/** Split a dotted TOML key (tree."my.name" -> ["tree", "my.name"]). */
export function splitDotted(key: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quote: string | null = null;
  for (const ch of key) {
    if (quote) {
      if (ch === quote) quote = null;
      else cur += ch;
    } else if (ch === '"' || ch === "'") quote = ch;
    else if (ch === '.') {
      out.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  out.push(cur.trim());
  return out.map(unquote);
}

export class LineLocator {
  private readonly tables = new Map<string, number>();
  private readonly keys = new Map<string, number>();

  constructor(text: string) {
    let table: string[] = [];
    text.split('\n').forEach((raw, i) => {
      const line = raw.trim();
      const header = /^\[\[?\s*([^\]]+?)\s*\]\]?/.exec(line);
      if (header) {
        table = splitDotted(header[1] ?? '');
        // Every prefix too, so a misspelt [trees.a] still has a line for "trees".
        for (let n = 1; n <= table.length; n++) {
          const k = table.slice(0, n).join('\0');
          if (n === table.length || !this.tables.has(k)) this.tables.set(k, i + 1);
        }
        return;
      }
      const kv = /^((?:"[^"]*"|'[^']*'|[A-Za-z0-9_.-]+|\s)+?)\s*=/.exec(line);
      if (kv) {
        const path = [...table, ...splitDotted(kv[1] ?? '')];
        this.keys.set(path.join('\0'), i + 1);
      }
    });
  }

  /** Line of a key path such as ['tree', 'x', 'dir'], else of its nearest table. */
  line(path: readonly (string | number)[]): number | undefined {
    const p = path.map(String);
    for (let n = p.length; n > 0; n--) {
      const k = p.slice(0, n).join('\0');
      const hit = this.keys.get(k) ?? this.tables.get(k);
      if (hit !== undefined) return hit;
    }
    return undefined;
  }
}
