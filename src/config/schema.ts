/**
 * The configuration's shape: a [defaults] table and one [tree.NAME] table per
 * managed tree. Keys are kebab-case as users write them in TOML; unknown keys
 * are errors, so a typo never silently falls back to a default.
 */
import { z } from 'zod';

export const COMPRESSORS = ['gzip', 'xz', 'zstd', 'lz4', 'lzo'] as const;
export type Compressor = (typeof COMPRESSORS)[number];

/** How a tree is mounted (see src/mount/engine.ts); auto picks the first that works here. */
export const ENGINES = ['kernel', 'fuse', 'readonly'] as const;
export type EngineName = (typeof ENGINES)[number];
export const ENGINE_SETTINGS = ['auto', ...ENGINES] as const;
export type EngineSetting = (typeof ENGINE_SETTINGS)[number];

export const ON_STOP = ['commit', 'discard', 'keep'] as const;
export type OnStop = (typeof ON_STOP)[number];

/** Mount options a user may add; nosuid and nodev are always set and cannot be removed. */
export const MOUNT_OPTIONS = [
  'noexec',
  'exec',
  'noatime',
  'relatime',
  'strictatime',
  'nodiratime',
  'lazytime',
] as const;

const sizeString = z
  .union([z.number().int().positive(), z.string()])
  .describe('a size such as "2G", "512M" or "25%"');

/** Settings a tree may inherit from [defaults]. */
export const settingsShape = {
  compression: z.enum(COMPRESSORS),
  'compression-level': z.number().int(),
  'block-size': sizeString,
  'mksquashfs-args': z.array(z.string()),
  exclude: z.array(z.string()),
  upper: z.string(),
  'tmpfs-size': sizeString,
  'on-stop': z.enum(ON_STOP),
  keep: z.number().int().min(0).max(1000),
  'compact-after': z.number().int().min(1).max(400),
  /** auto: the native writer when the images allow it (no recompression), else mksquashfs. */
  'compact-method': z.enum(['auto', 'mksquashfs']),
  /**
   * auto: a commit's image is written by the native writer (a layer, or a
   * new base when the change is most of the tree), else mksquashfs.
   */
  'pack-method': z.enum(['auto', 'mksquashfs']),
  'mount-options': z.array(z.enum(MOUNT_OPTIONS)),
  /** Registry reference `squashtree pull NAME` follows when no REF is given. */
  'pull-from': z.string(),
  /** Ed25519 public key (PEM) every pulled generation must be signed with. */
  'verify-key': z.string(),
  'plain-http': z.boolean(),
  /** Registry repository every successful commit also publishes to (REGISTRY/REPO). */
  'publish-to': z.string(),
  /** Ed25519 private key (PEM) that publish, and publish-to, sign with. */
  'sign-key': z.string(),
  engine: z.enum(ENGINE_SETTINGS),
};

export const defaultsSchema = z.strictObject(settingsShape).partial();

export const treeSchema = z
  .strictObject({
    ...settingsShape,
    dir: z.string(),
    store: z.string(),
  })
  .partial()
  .required({ dir: true });

export const fileSchema = z.strictObject({
  defaults: defaultsSchema.optional(),
  tree: z.record(z.string(), treeSchema).optional(),
});

export type RawConfig = z.infer<typeof fileSchema>;
export type RawTree = z.infer<typeof treeSchema>;

export type UpperConfig = { kind: 'tmpfs'; size: string } | { kind: 'dir'; path: string };

/** A tree's settings after defaults are applied and every value is checked. */
export interface TreeConfig {
  name: string;
  dir: string;
  store: string;
  compression: Compressor;
  compressionLevel: number | undefined;
  blockSize: number;
  mksquashfsArgs: string[];
  exclude: string[];
  upper: UpperConfig;
  onStop: OnStop;
  keep: number;
  compactAfter: number;
  compactMethod: 'auto' | 'mksquashfs';
  packMethod: 'auto' | 'mksquashfs';
  mountOptions: string[];
  pullFrom: string | undefined;
  verifyKey: string | undefined;
  plainHttp: boolean;
  publishTo: string | undefined;
  signKey: string | undefined;
  engine: EngineSetting;
}

export const BUILTIN_DEFAULTS = {
  compression: 'gzip' as Compressor,
  blockSize: 128 * 1024,
  upper: 'tmpfs',
  tmpfsSize: '25%',
  onStop: 'commit' as OnStop,
  keep: 2,
  compactAfter: 2,
};

export const TREE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
