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
} from '../../squashfs/index.js';
import { defineCommand } from '../spec.js';
import {
  type InspectEntry,
  type InspectStatEntry,
  type InspectData,
  TYPE_NAME,
  show,
  entryOf,
  imageInfo,
  renderList,
  renderStat,
} from './inspect-view.js';

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
