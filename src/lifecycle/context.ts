/** What every lifecycle operation needs: the tree's settings, where state lives, how to report. */
import type { TreeConfig } from '../config/schema.js';
import type { PackSettings } from '../image/mksquashfs.js';
import type { EngineChoice } from '../mount/engine.js';
import { layoutFor, type Layout } from './layout.js';

export interface Reporter {
  /** A step begins (plain text, one line). */
  step(message: string): void;
  /** Progress of a long step, 0..1. */
  progress(label: string, fraction: number): void;
  warn(message: string): void;
}

export const silentReporter: Reporter = {
  step: () => undefined,
  progress: () => undefined,
  warn: () => undefined,
};

export interface TreeContext {
  tree: TreeConfig;
  stateDir: string;
  layout: Layout;
  reporter: Reporter;
  /** Seconds to wait for the tree's lock. */
  lockWaitSeconds: number;
  /** The engine this operation mounts with (set by Tree; unset means the kernel's). */
  engine?: EngineChoice;
}

export function makeContext(
  tree: TreeConfig,
  stateDir: string,
  reporter: Reporter = silentReporter,
  lockWaitSeconds = 300,
): TreeContext {
  return { tree, stateDir, layout: layoutFor(stateDir, tree), reporter, lockWaitSeconds };
}

export function packSettings(tree: TreeConfig): PackSettings {
  return {
    compression: tree.compression,
    compressionLevel: tree.compressionLevel,
    blockSize: tree.blockSize,
    extraArgs: tree.mksquashfsArgs,
  };
}

/** Mount options for image mounts and the overlay (nosuid,nodev are always added). */
export function extraMountOptions(tree: TreeConfig): string[] {
  return tree.mountOptions;
}
