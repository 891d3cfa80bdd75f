/**
 * Where a tree's runtime pieces live. Everything transient is under
 * STATE_DIR/NAME (root-only, 0700): image mount points, the lower view, the
 * tmpfs upper and the session record. A disk upper keeps its own session
 * record next to it, because it outlives /run across a reboot.
 */
import { join } from 'node:path';
import type { TreeConfig } from '../config/schema.js';

export interface Layout {
  runtime: string;
  lock: string;
  /** Mount point of image i of the stack (0 = base). */
  image: (i: number) => string;
  imagesDir: string;
  /** Read-only view of the whole lower stack (for diff and compaction). */
  lowerView: string;
  upperRoot: string;
  upperData: string;
  upperWork: string;
  upperIsTmpfs: boolean;
  sessionFile: string;
  /** Where the session record and its snapshots of the upper live (snapshot.ts). */
  sessionHome: string;
  verifiedCache: string;
  /** Scratch mount point for checking a freshly built image. */
  verifyMount: string;
  /** Mount points used by compaction of a stopped tree. */
  scratch: string;
  /** A private tmpfs that holds the copy of the upper a commit packs. */
  stage: string;
  /** Bind mounts that hold excluded dirs while the overlay goes on. */
  passthrough: string;
}

export function layoutFor(stateDir: string, tree: TreeConfig): Layout {
  const runtime = join(stateDir, tree.name);
  const tmpfs = tree.upper.kind === 'tmpfs';
  const upperRoot = tree.upper.kind === 'tmpfs' ? join(runtime, 'upper') : tree.upper.path;
  const sessionHome = tmpfs ? runtime : upperRoot;
  return {
    runtime,
    lock: join(runtime, 'lock'),
    imagesDir: join(runtime, 'i'),
    image: (i) => join(runtime, 'i', String(i)),
    lowerView: join(runtime, 'lower'),
    upperRoot,
    upperData: join(upperRoot, 'data'),
    upperWork: join(upperRoot, 'work'),
    upperIsTmpfs: tmpfs,
    sessionFile: join(sessionHome, 'session.json'),
    sessionHome,
    verifiedCache: join(runtime, 'verified.json'),
    verifyMount: join(runtime, 'verify'),
    scratch: join(runtime, 'scratch'),
    stage: join(runtime, 'stage'),
    passthrough: join(runtime, 'pass'),
  };
}
