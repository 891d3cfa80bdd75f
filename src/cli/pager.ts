/**
 * A roff page on a terminal is shown by man(1), formatted and paged, as
 * `man squashtree` would; through a pipe the roff source is printed (to
 * install it as squashtree.8). Without man the source is printed with a note.
 */
import { spawn } from 'node:child_process';

/** Show `roff` with man -l -; false when man could not be run. */
export function showWithMan(roff: string): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn('man', ['-l', '-'], { stdio: ['pipe', 'inherit', 'inherit'] });
    child.on('error', () => {
      resolve(false);
    });
    child.on('close', (code) => {
      resolve(code === 0);
    });
    // A pager quit early closes the pipe: that is not an error.
    child.stdin.on('error', () => undefined);
    child.stdin.end(roff);
  });
}
