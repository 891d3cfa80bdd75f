/** init: add a tree to the config and build (or adopt) its first image. */
import { isAbsolute, resolve } from 'node:path';
import { COMPRESSORS, ENGINE_SETTINGS, type EngineSetting } from '../../config/schema.js';
import { chooseEngine, withMounter } from '../../mount/engine.js';
import type { TreeTable } from '../../config/edit.js';
import { SquashtreeError } from '../../errors.js';
import { initTree, type InitResult } from '../../lifecycle/init.js';
import { noEngineError } from '../../doctor/engine-fix.js';
import { bytes, count, seconds } from '../format.js';
import { makeReporter } from '../reporter.js';
import { defineCommand } from '../spec.js';

export const initCommand = defineCommand<InitResult>({
  name: 'init',
  summary:
    'add a tree to the config and build its first image from DIR (or adopt an image, or a store whose config entry was lost)',
  args: '<name>',
  root: true,
  options: [
    {
      flags: '--dir <dir>',
      description: 'the directory that holds the tree (required unless the config names the tree)',
    },
    {
      flags: '--from-image <file>',
      description: 'adopt this SquashFS image instead of packing DIR',
    },
    { flags: '--compression <algo>', description: `compressor: ${COMPRESSORS.join(', ')}` },
    { flags: '--store <dir>', description: 'where images live (default /var/lib/squashtree/NAME)' },
    { flags: '--upper <where>', description: '"tmpfs" (default) or an absolute directory on disk' },
    {
      flags: '--engine <engine>',
      description: `how to mount it: ${ENGINE_SETTINGS.join(', ')} (default auto)`,
    },
    {
      flags: '--remove-source',
      description: "delete DIR's files once the image is verified against them",
    },
  ],
  run: async (ctx, [name], o) => {
    const dirOpt = o.dir as string | undefined;
    const config = await ctx.loadConfig({ create: true });
    // A tree the config names already has its dir there.
    if (!dirOpt && !config.trees.some((t) => t.name === name))
      throw new SquashtreeError('E_USAGE', 'init needs --dir DIR', {
        hint: 'squashtree init NAME --dir /var/db/repos/gentoo',
      });
    const dir = dirOpt === undefined ? undefined : resolve(dirOpt);
    const settings: TreeTable = {};
    const comp = o.compression as string | undefined;
    if (comp !== undefined) {
      if (!(COMPRESSORS as readonly string[]).includes(comp)) {
        throw new SquashtreeError('E_USAGE', `unknown compression ${comp}`, {
          hint: `choose one of ${COMPRESSORS.join(', ')}`,
        });
      }
      settings.compression = comp;
    }
    for (const key of ['store', 'upper'] as const) {
      const v = o[key] as string | undefined;
      if (v === undefined) continue;
      if (key === 'upper' && v === 'tmpfs') settings.upper = v;
      else if (!isAbsolute(v))
        throw new SquashtreeError('E_USAGE', `--${key} must be an absolute path`);
      else settings[key] = resolve(v);
    }
    const engine = o.engine as string | undefined;
    if (engine !== undefined) {
      if (!(ENGINE_SETTINGS as readonly string[]).includes(engine)) {
        throw new SquashtreeError('E_USAGE', `unknown engine ${engine}`, {
          hint: `choose one of ${ENGINE_SETTINGS.join(', ')}`,
        });
      }
      settings.engine = engine;
    }
    // The image is mounted once to be checked: with whatever this machine can mount.
    const setting = (engine ?? 'auto') as EngineSetting;
    const choice = await chooseEngine(setting);
    if (choice.rejected[choice.engine] !== undefined)
      throw await noEngineError(`tree "${name ?? ''}"`, setting, choice);
    const result = await withMounter(choice.mounter, () =>
      initTree({
        config,
        stateDir: ctx.stateDir,
        name: name ?? '',
        ...(dir !== undefined ? { dir } : {}),
        ...(o.fromImage ? { fromImage: resolve(o.fromImage as string) } : {}),
        settings,
        removeSource: Boolean(o.removeSource),
        reporter: makeReporter({ quiet: ctx.quiet, tree: name ?? '' }),
        lockWaitSeconds: ctx.waitSeconds,
      }),
    );
    return { data: result, ok: true };
  },
  render: (r) => {
    if (r.adoptedStore)
      return [
        `${r.tree}: adopted the store ${r.store}: generation ${r.generation}, ${count(r.images, 'image')}, ${bytes(r.imageBytes)}; every image checked (size, sha256, metadata), nothing repacked`,
        `  config ${r.config}`,
        `  next: squashtree start ${r.tree}`,
      ].join('\n');
    // A ratio says something only when the image is the smaller: a tiny tree's image is mostly tables.
    const ratio =
      r.bytes > r.imageBytes
        ? ` (${((r.imageBytes / r.bytes) * 100).toFixed(1)}% of ${bytes(r.bytes)})`
        : ` for ${bytes(r.bytes)} of data`;
    const lines = [
      `${r.tree}: ${r.adopted ? 'adopted' : 'packed'} ${count(r.files, 'file')} into ${bytes(r.imageBytes)}${ratio} in ${seconds(r.durationMs)}, verified`,
      `  store ${r.store}, config ${r.config}`,
    ];
    if (r.removedSource)
      lines.push(`  removed the source files from ${r.dir}: ${bytes(r.reclaimedBytes)} reclaimed`);
    else
      lines.push(
        `  the files in ${r.dir} were left in place (hidden while the tree is mounted; --remove-source deletes them)`,
      );
    lines.push(`  next: squashtree start ${r.tree}`);
    return lines.join('\n');
  },
});
