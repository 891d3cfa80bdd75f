/**
 * inspect: look inside a SquashFS image with the native reader, without
 * mounting it and without root: an ls -l style listing (--recursive for the
 * whole subtree), one entry described (--stat), or a file's bytes (--cat).
 */
import { Buffer } from 'node:buffer';
import { SquashtreeError, errnoCode, errorMessage } from '../../errors.js';
import { displayPath } from '../../fs/paths.js';
import {
  SquashfsFormatError,
  SquashfsImage,
  SquashfsPathError,
  SquashfsUnsupportedError,
  type Inode,
  type Stat,
} from '../../squashfs/index.js';
import { defineCommand } from '../spec.js';

export interface InspectXattr {
  /** Display form: UTF-8 where valid, other bytes escaped. */
  name: string;
  value: string;
  valueBase64: string;
}

export interface InspectEntry {
  /** Display form of the path (relative to the inspected PATH in listings). */
  path: string;
  /** The path's bytes, base64: exact even for names that are not UTF-8. */
  pathBase64: string;
  type: Stat['kind'];
  mode: number;
  modeString: string;
  uid: number;
  gid: number;
  size: number;
  /** Seconds since the epoch. */
  mtime: number;
  nlink: number;
  inode: number;
  target?: string;
  targetBase64?: string;
  rdev?: { major: number; minor: number };
  xattrs: InspectXattr[];
}

export interface InspectStatEntry extends InspectEntry {
  /** Regular files: how the data is stored. */
  storage?: {
    blocks: number;
    blocksStart: number;
    fragment: number | null;
    fragmentOffset: number;
    tailBytes: number;
    sparseBytes: number;
  };
  /** Directories: number of entries. */
  entries?: number;
  extendedInode: boolean;
}

export interface InspectImageInfo {
  compression: string;
  blockSize: number;
  inodes: number;
  fragments: number;
  ids: number;
  bytesUsed: number;
  created: string;
  flags: string[];
}

export interface InspectData {
  image: string;
  path: string;
  action: 'list' | 'stat' | 'cat';
  info: InspectImageInfo;
  /** list: one per entry (the entry itself when PATH is not a directory). */
  entries?: InspectEntry[];
  stat?: InspectStatEntry;
  /** cat: bytes written to stdout. */
  bytes?: number;
}

const FLAG_NAMES: [number, string][] = [
  [0x0001, 'uncompressed-inodes'],
  [0x0002, 'uncompressed-data'],
  [0x0008, 'uncompressed-fragments'],
  [0x0010, 'no-fragments'],
  [0x0020, 'always-fragments'],
  [0x0040, 'duplicates-removed'],
  [0x0080, 'exportable'],
  [0x0100, 'uncompressed-xattrs'],
  [0x0200, 'no-xattrs'],
  [0x0400, 'compressor-options'],
  [0x0800, 'uncompressed-ids'],
];

const TYPE_CHAR: Record<Stat['kind'], string> = {
  dir: 'd',
  file: '-',
  symlink: 'l',
  blockdev: 'b',
  chardev: 'c',
  fifo: 'p',
  socket: 's',
};

const TYPE_NAME: Record<Stat['kind'], string> = {
  dir: 'directory',
  file: 'regular file',
  symlink: 'symbolic link',
  blockdev: 'block device',
  chardev: 'character device',
  fifo: 'fifo',
  socket: 'socket',
};

export function modeString(kind: Stat['kind'], perm: number): string {
  const rwx = (bits: number, special: boolean, lower: string, upper: string): string =>
    `${bits & 4 ? 'r' : '-'}${bits & 2 ? 'w' : '-'}${
      special ? (bits & 1 ? lower : upper) : bits & 1 ? 'x' : '-'
    }`;
  return (
    TYPE_CHAR[kind] +
    rwx((perm >> 6) & 7, (perm & 0o4000) !== 0, 's', 'S') +
    rwx((perm >> 3) & 7, (perm & 0o2000) !== 0, 's', 'S') +
    rwx(perm & 7, (perm & 0o1000) !== 0, 't', 'T')
  );
}

/** Bytes for display: UTF-8 where valid, everything else escaped (as in paths). */
function show(b: Buffer): string {
  return displayPath(b.toString('latin1'));
}

/**
 * The PATH argument as bytes. Backslash escapes (\xNN, \n, \t, \\) give the
 * bytes a shell cannot pass through argv as UTF-8 text, the same escapes the
 * listing prints.
 */
export function parsePathArg(arg: string): Buffer {
  const out: Buffer[] = [];
  let text = '';
  const flush = (): void => {
    if (text) out.push(Buffer.from(text, 'utf8'));
    text = '';
  };
  for (let i = 0; i < arg.length; i++) {
    const ch = arg[i] ?? '';
    if (ch !== '\\' || i + 1 >= arg.length) {
      text += ch;
      continue;
    }
    const next = arg[i + 1] ?? '';
    const hex = /^[0-9a-fA-F]{2}$/.test(arg.slice(i + 2, i + 4)) ? arg.slice(i + 2, i + 4) : '';
    if (next === 'x' && hex) {
      flush();
      out.push(Buffer.from([parseInt(hex, 16)]));
      i += 3;
    } else if (next === 'n' || next === 't' || next === '\\') {
      text += next === 'n' ? '\n' : next === 't' ? '\t' : '\\';
      i += 1;
    } else {
      text += ch;
    }
  }
  flush();
  return Buffer.concat(out);
}

function entryOf(path: Buffer, inode: Inode, st: Stat): InspectEntry {
  const e: InspectEntry = {
    path: show(path),
    pathBase64: path.toString('base64'),
    type: st.kind,
    mode: st.mode,
    modeString: modeString(st.kind, st.permissions),
    uid: st.uid,
    gid: st.gid,
    size: st.size,
    mtime: st.mtime,
    nlink: st.nlink,
    inode: inode.number,
    xattrs: st.xattrs.map((x) => ({
      name: show(x.name),
      value: show(x.value),
      valueBase64: x.value.toString('base64'),
    })),
  };
  if (st.target) {
    e.target = show(st.target);
    e.targetBase64 = st.target.toString('base64');
  }
  if (st.rdev) e.rdev = st.rdev;
  return e;
}

function imageInfo(img: SquashfsImage): InspectImageInfo {
  const sb = img.superblock;
  return {
    compression: sb.compression,
    blockSize: sb.blockSize,
    inodes: sb.inodeCount,
    fragments: sb.fragmentCount,
    ids: sb.idCount,
    bytesUsed: sb.bytesUsed,
    created: new Date(sb.modificationTime * 1000).toISOString(),
    flags: FLAG_NAMES.filter(([bit]) => sb.flags & bit).map(([, name]) => name),
  };
}

function time(mtime: number): string {
  return new Date(mtime * 1000).toISOString().slice(0, 16).replace('T', ' ');
}

function renderList(entries: InspectEntry[]): string {
  const sizeOf = (e: InspectEntry): string =>
    e.rdev ? `${e.rdev.major}, ${e.rdev.minor}` : String(e.size);
  const wLink = Math.max(0, ...entries.map((e) => String(e.nlink).length));
  const wOwner = Math.max(0, ...entries.map((e) => `${e.uid}/${e.gid}`.length));
  const wSize = Math.max(0, ...entries.map((e) => sizeOf(e).length));
  const lines: string[] = [];
  for (const e of entries) {
    lines.push(
      `${e.modeString} ${String(e.nlink).padStart(wLink)} ${`${e.uid}/${e.gid}`.padEnd(wOwner)} ${sizeOf(e).padStart(wSize)} ${time(e.mtime)} ${e.path}${e.target !== undefined ? ` -> ${e.target}` : ''}`,
    );
    for (const x of e.xattrs) lines.push(`    ${x.name}=${x.value}`);
  }
  return lines.join('\n');
}

function renderStat(d: InspectData): string {
  const s = d.stat;
  if (!s) return '';
  const lines = [
    `  Path: ${s.path}`,
    `  Type: ${TYPE_NAME[s.type]}${s.extendedInode ? ' (extended inode)' : ''}`,
    `  Mode: ${(s.mode & 0o7777).toString(8).padStart(4, '0')} (${s.modeString})`,
    ` Owner: uid ${s.uid}, gid ${s.gid}`,
    `  Size: ${s.size}`,
    ` Links: ${s.nlink}`,
    ` Inode: ${s.inode}`,
    ` Mtime: ${new Date(s.mtime * 1000).toISOString()}`,
  ];
  if (s.target !== undefined) lines.push(`Target: ${s.target}`);
  if (s.rdev) lines.push(`Device: ${s.rdev.major}, ${s.rdev.minor}`);
  if (s.entries !== undefined) lines.push(`Entries: ${s.entries}`);
  if (s.storage) {
    const st = s.storage;
    lines.push(
      `Blocks: ${st.blocks}${st.blocks ? ` from byte ${st.blocksStart}` : ''}${
        st.fragment !== null
          ? `, tail of ${st.tailBytes} bytes in fragment ${st.fragment} at ${st.fragmentOffset}`
          : ''
      }${st.sparseBytes ? `, ${st.sparseBytes} sparse bytes` : ''}`,
    );
  }
  if (s.xattrs.length === 0) lines.push('Xattrs: none');
  else lines.push('Xattrs:', ...s.xattrs.map((x) => `    ${x.name}=${x.value}`));
  const i = d.info;
  lines.push(
    ` Image: ${d.image}: ${i.compression}, block size ${i.blockSize}, ${i.inodes} inodes, ${i.bytesUsed} bytes${
      i.flags.length ? ` [${i.flags.join(', ')}]` : ''
    }`,
  );
  return lines.join('\n');
}

/** Write bytes to stdout, waiting for it to drain; false once the reader went away (EPIPE). */
class StdoutWriter {
  private broken = false;
  private readonly onError = (): void => {
    this.broken = true;
  };

  constructor() {
    process.stdout.on('error', this.onError);
  }

  async write(chunk: Buffer): Promise<boolean> {
    if (this.broken) return false;
    if (process.stdout.write(chunk)) return true;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        process.stdout.off('drain', done);
        process.stdout.off('error', done);
        resolve();
      };
      process.stdout.on('drain', done);
      process.stdout.on('error', done);
    });
    return !this.broken;
  }

  close(): void {
    process.stdout.off('error', this.onError);
  }
}

function translate(e: unknown, image: string): unknown {
  if (e instanceof SquashtreeError) return e;
  if (e instanceof SquashfsUnsupportedError) {
    return new SquashtreeError('E_IMAGE_CORRUPT', `cannot read ${image}: ${e.message}`, {
      path: image,
      hint: `unsquashfs -lln ${image} reads it (with squashfs-tools built with that compressor)`,
      cause: e,
    });
  }
  if (e instanceof SquashfsFormatError) {
    return new SquashtreeError(
      'E_IMAGE_CORRUPT',
      `${image} is not a valid SquashFS image: ${e.message}`,
      {
        path: image,
        hint: `the image is damaged or not SquashFS 4.0; unsquashfs -stat ${image} shows what squashfs-tools makes of it`,
        cause: e,
      },
    );
  }
  if (e instanceof SquashfsPathError) {
    const what =
      e.code === 'ENOENT'
        ? 'no such file or directory in the image'
        : e.code === 'ENOTDIR'
          ? 'a component of the path is not a directory'
          : e.message;
    return new SquashtreeError('E_USAGE', `${image}: ${displayPath(e.path)}: ${what}`, {
      path: image,
      hint: `squashtree inspect ${image} --recursive lists every path in the image`,
    });
  }
  const code = errnoCode(e);
  if (
    code === 'ENOENT' ||
    code === 'EACCES' ||
    code === 'EISDIR' ||
    code === 'ENOTDIR' ||
    code === 'EPERM'
  ) {
    return new SquashtreeError('E_IMAGE_MISSING', `cannot open ${image}: ${errorMessage(e)}`, {
      path: image,
      hint: 'give the path of a readable SquashFS image file',
    });
  }
  return e;
}

export const inspectCommand = defineCommand<InspectData>({
  name: 'inspect',
  summary:
    'list, describe or print what a SquashFS image holds, without mounting it or root (PATH takes the \\xNN escapes listings print)',
  args: '<image> [path]',
  options: [
    {
      flags: '-r, --recursive',
      description: 'list the whole subtree below PATH, one line per entry',
    },
    {
      flags: '--stat',
      description: 'describe PATH itself: type, mode, owner, size, storage, xattrs',
    },
    {
      flags: '--cat',
      description: "write PATH's content (a regular file) to stdout, byte for byte",
    },
  ],
  run: async (ctx, args, o) => {
    const image = args[0] ?? '';
    const pathArg = args[1] ?? '/';
    const recursive = Boolean(o.recursive);
    const wantStat = Boolean(o.stat);
    const cat = Boolean(o.cat);
    if ([recursive, wantStat, cat].filter(Boolean).length > 1) {
      throw new SquashtreeError('E_USAGE', '--recursive, --stat and --cat do not go together', {
        hint: 'pick one of them',
      });
    }
    if (cat && ctx.json) {
      throw new SquashtreeError('E_USAGE', '--cat writes the raw bytes; it takes no --json');
    }
    const pathBytes = parsePathArg(pathArg);
    const shownPath = show(pathBytes);
    let img: SquashfsImage | undefined;
    try {
      img = await SquashfsImage.open(image);
      const inode = await img.lookup(pathBytes);
      const info = imageInfo(img);
      const base: Omit<InspectData, 'action'> = { image, path: shownPath, info };

      if (cat) {
        if (inode.kind !== 'file') {
          throw new SquashtreeError(
            'E_USAGE',
            `${shownPath} in ${image} is a ${TYPE_NAME[inode.kind]}, not a regular file`,
            {
              hint: '--cat prints regular files only',
            },
          );
        }
        const out = new StdoutWriter();
        let bytes = 0;
        try {
          for await (const chunk of img.readFile(inode)) {
            if (!(await out.write(chunk))) break;
            bytes += chunk.length;
          }
        } finally {
          out.close();
        }
        return { data: { ...base, action: 'cat', bytes }, ok: true };
      }

      if (wantStat) {
        const st = await img.stat(inode);
        const s: InspectStatEntry = {
          ...entryOf(pathBytes, inode, st),
          extendedInode: inode.extended,
        };
        if (inode.kind === 'file') {
          s.storage = {
            blocks: inode.blockCount,
            blocksStart: inode.blocksStart,
            fragment: inode.fragment,
            fragmentOffset: inode.fragmentOffset,
            tailBytes: inode.fragment !== null ? inode.size % img.superblock.blockSize : 0,
            sparseBytes: inode.sparse,
          };
        }
        if (inode.kind === 'dir') {
          let n = 0;
          const it = img.entries(inode);
          for (let r = await it.next(); r.done !== true; r = await it.next()) n++;
          s.entries = n;
        }
        return { data: { ...base, action: 'stat', stat: s }, ok: true };
      }

      const entries: InspectEntry[] = [];
      if (inode.kind !== 'dir') {
        entries.push(entryOf(pathBytes, inode, await img.stat(inode)));
      } else if (recursive) {
        for await (const w of img.walk(inode)) {
          entries.push(entryOf(w.path, w.inode, await img.stat(w.inode)));
        }
      } else {
        for (const e of await img.readdir(inode)) {
          entries.push(entryOf(e.name, e.inode, await img.stat(e.inode)));
        }
      }
      return { data: { ...base, action: 'list', entries }, ok: true };
    } catch (e) {
      throw translate(e, image);
    } finally {
      await img?.close();
    }
  },
  render: (d) => {
    if (d.action === 'cat') return '';
    if (d.action === 'stat') return renderStat(d);
    return renderList(d.entries ?? []);
  },
});
