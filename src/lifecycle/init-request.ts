/** What init is asked for and what it reports (shared by a fresh init and an adopted store). */
import type { TreeTable } from '../config/edit.js';
import type { Config } from '../config/load.js';
import type { Reporter } from './context.js';

export interface InitRequest {
  config: Config;
  stateDir: string;
  name: string;
  /** Required for a new tree; for one the config names, it must be the configured dir. */
  dir?: string;
  fromImage?: string;
  /** Keys to write into the new [tree.NAME] table besides dir. */
  settings: TreeTable;
  removeSource: boolean;
  reporter: Reporter;
  lockWaitSeconds: number;
}

export interface InitResult {
  tree: string;
  dir: string;
  store: string;
  config: string;
  generation: number;
  imageBytes: number;
  files: number;
  bytes: number;
  adopted: boolean;
  /** An existing store was taken over: nothing was packed. */
  adoptedStore: boolean;
  /** Images the current generation stacks. */
  images: number;
  removedSource: boolean;
  reclaimedBytes: number;
  durationMs: number;
}
