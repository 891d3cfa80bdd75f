/** doctor's look for the setup squashtree replaces (squash_portage and its kind). */
import { isWithin } from '../config/values.js';
import { readMounts, superOption } from '../mount/mountinfo.js';
import { bad, type Check } from './verdict.js';

/**
 * The recipe squashtree replaces: a squashfs image mounted read-only and an
 * overlay on the repository whose upper lives in /dev/shm. Moving over must
 * not lose the changes pending in that upper, so the steps pack the merged
 * view first.
 */
export async function oldRecipe(stateDir: string | undefined): Promise<Check[]> {
  const mounts = await readMounts();
  const out: Check[] = [];
  for (const m of mounts) {
    // squashtree's own overlays (of any state dir: other configs, tests) carry its name as source.
    if (m.fstype !== 'overlay' || m.source === 'squashtree') continue;
    const upper = superOption(m, 'upperdir') ?? '';
    if (!upper || (stateDir !== undefined && isWithin(upper, stateDir))) continue;
    const lowers = (superOption(m, 'lowerdir') ?? '').split(':');
    const onSquashfs = lowers.some((l) =>
      mounts.some((x) => x.fstype === 'squashfs' && x.mountPoint === l),
    );
    if (!onSquashfs && !upper.startsWith('/dev/shm')) continue;
    const dir = m.mountPoint;
    out.push(
      bad(
        'old squash_portage-style mount',
        `${dir} is an overlay on a SquashFS image with its upper in ${upper} (not managed by squashtree)`,
        [
          'to move over without losing its pending changes:',
          `1. stop writers (no emerge --sync now), then pack the merged view: mksquashfs ${dir} /var/tmp/squashtree-migrate.sqfs -noappend -xattrs`,
          '2. stop and disable the old service (its own re-squash is no longer needed), so the overlay and image are unmounted',
          `3. squashtree init NAME --dir ${dir} --from-image /var/tmp/squashtree-migrate.sqfs`,
          '4. squashtree install openrc (or systemd) and squashtree install portage, then squashtree start NAME',
        ].join('\n        '),
        'warn',
      ),
    );
  }
  return out;
}
