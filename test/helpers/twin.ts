/** Apply the same filesystem operation to the mounted tree and to a plain model dir. */
import { promises as fsp } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

export class Twin {
  constructor(
    readonly tree: string,
    readonly model: string,
  ) {}

  async both(fn: (root: string) => Promise<void> | void): Promise<void> {
    await fn(this.tree);
    await fn(this.model);
  }

  write(rel: string, data: string | Buffer): Promise<void> {
    return this.both((r) => fsp.writeFile(join(r, rel), data));
  }

  append(rel: string, data: string): Promise<void> {
    return this.both((r) => fsp.appendFile(join(r, rel), data));
  }

  rm(rel: string): Promise<void> {
    return this.both((r) => fsp.rm(join(r, rel), { recursive: true, force: true }));
  }

  mkdir(rel: string): Promise<void> {
    return this.both((r) => fsp.mkdir(join(r, rel), { recursive: true }).then(() => undefined));
  }

  /** mv, which copies when the kernel refuses a dir rename (redirect_dir=off: EXDEV). */
  mv(from: string, to: string): Promise<void> {
    return this.both((r) => {
      execFileSync('mv', ['-T', join(r, from), join(r, to)]);
    });
  }

  chmod(rel: string, mode: number): Promise<void> {
    return this.both((r) => fsp.chmod(join(r, rel), mode));
  }

  symlink(target: string, rel: string): Promise<void> {
    return this.both((r) => fsp.symlink(target, join(r, rel)));
  }

  link(existing: string, rel: string): Promise<void> {
    return this.both((r) => fsp.link(join(r, existing), join(r, rel)));
  }

  truncate(rel: string, len: number): Promise<void> {
    return this.both((r) => fsp.truncate(join(r, rel), len));
  }
}
