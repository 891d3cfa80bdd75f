/**
 * commit: persist the pending changes as a new layer and stay mounted.
 *
 * The upper is copied to a private staging dir (never packed live), packed
 * into a layer image, verified against the copy, published, and only then
 * does the manifest name a new generation: the session's lower images plus
 * that layer. A later commit in the same session packs the whole upper
 * again and replaces that layer rather than stacking on it: files created
 * and deleted within a session leave no trace in the upper, so stacking
 * would bring them back.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { imageFileName, type Generation } from '../store/manifest.js';
import { writeManifestOrUnpublish } from '../store/store.js';
import { STAGE_PREFIX, collectGarbage } from '../store/store.js';
import { packSettings, type TreeContext } from './context.js';
import { captureUpper } from './capture.js';
import { computeChanges, warmLowerView, type ChangeSummary } from './changes.js';
import { fault } from './faults.js';
import { observe, requireManifest } from './observe.js';
import { packAndPublish } from './publish.js';
import { writeSession } from './session.js';
import { needsMountError, readonlyError } from './engine.js';
import { mountedLower } from './lower.js';
import { layerForm } from './whiteouts.js';
import { teardownUnder } from './stack.js';
import { canMountTmpfs, mountTmpfs, unmount } from '../mount/mount.js';
import { pendingChanges, readSnapshot, scanUpper, snapshotOf, writeSnapshot } from './upper.js';

export interface CommitResult {
  tree: string;
  committed: boolean;
  /** Why nothing was committed, when it was not. */
  reason?: string;
  generation: number;
  layerBytes: number;
  pendingFiles: number;
  pendingBytes: number;
  durationMs: number;
  layers: number;
}

export async function commitLocked(ctx: TreeContext): Promise<CommitResult> {
  const { tree, layout, reporter } = ctx;
  const t0 = performance.now();
  const obs = await observe(ctx);
  const m = requireManifest(ctx, obs);
  const session = obs.session;
  if (session?.engine === 'readonly' && obs.state === 'mounted') throw readonlyError(ctx);
  if (session?.engine === 'fuse' && obs.state === 'interrupted') throw needsMountError(ctx);
  const nothing = (reason: string): CommitResult => ({
    tree: tree.name,
    committed: false,
    reason,
    generation: m.current,
    layerBytes: 0,
    pendingFiles: 0,
    pendingBytes: 0,
    durationMs: performance.now() - t0,
    layers: m.generations.find((g) => g.generation === m.current)?.images.length ?? 0,
  });
  if (!session || (obs.state !== 'mounted' && obs.state !== 'interrupted'))
    return nothing('not mounted');
  const entries = await scanUpper(layout.upperData, tree.exclude);
  const snapshot =
    session.committedGeneration !== null ? await readSnapshot(layout.snapshotFile) : null;
  const pending = pendingChanges(entries, snapshot);
  if (!pending.any) return nothing('nothing to commit');

  // The copy holds the whole upper (everything since the mount), not only what is new.
  const upperBytes = entries.reduce((n, e) => n + (e.type === 'file' ? e.size : 0), 0);
  const staging = await openStaging(ctx, upperBytes);
  const stage = staging.dir;
  try {
    reporter.step(`capturing ${pending.files} changed entries (${pending.bytes} bytes)`);
    const mounted = obs.state === 'mounted';
    const lower = mounted ? await mountedLower(layout) : undefined;
    const warming = lower !== undefined ? warmLowerView(entries, lower.view) : undefined;
    const capture = await captureUpper(layout.upperData, stage, {
      exclude: tree.exclude,
      scanned: entries,
      ...(mounted ? { merged: tree.dir } : {}),
    });
    await warming;
    fault('commit:after-capture');
    reporter.step('captured; computing what changed');
    // One layer form for every engine (whiteouts.ts): the copy is normalized, then packed and
    // verified. Opaque dirs become explicit whiteouts there, so what changed is read off the
    // layer form with no opacity to work out, while mksquashfs packs (see packAndPublish).
    const layerEntries =
      lower !== undefined
        ? await layerForm(stage, lower.view, tree.dir, tree.exclude, capture.mergedNlinks)
        : capture.entries;
    let changes: Promise<ChangeSummary> | undefined;
    const summarize = async (): Promise<ChangeSummary | null> =>
      lower !== undefined ? (changes ??= computeChanges(layerEntries, lower, undefined)) : null;
    const number = m.lastGeneration + 1;
    const file = imageFileName(number, 'layer');
    reporter.step(`packing layer ${file}`);
    const published = await packAndPublish({
      source: stage,
      store: tree.store,
      file,
      kind: 'layer',
      settings: packSettings(tree),
      exclude: tree.exclude,
      verifyMount: layout.verifyMount,
      verifyWith: 'reader',
      expected: layerEntries,
      // Only a copy in the layer form has its opaque dirs as whiteouts; else their marks must stay.
      dropOverlayXattrs: lower !== undefined,
      onProgress: (f) => {
        reporter.progress('packing', f);
      },
      afterPack: 'commit:after-pack',
      whilePacking: 'commit:packing',
      onPhase: (p) => {
        if (p !== 'pack')
          reporter.step(
            p === 'verify'
              ? 'verifying the layer against the captured upper'
              : 'publishing the layer',
          );
      },
    });
    fault('commit:after-publish');
    const summary = await summarize();
    reporter.step('published; recording the generation');
    const gen: Generation = {
      generation: number,
      parent: m.current,
      action: 'commit',
      created: new Date().toISOString(),
      durationMs: Math.round(performance.now() - t0),
      images: [...session.lower, file],
      files:
        summary && session.lowerFiles !== null ? session.lowerFiles + summary.filesDelta : null,
      bytes:
        summary && session.lowerBytes !== null ? session.lowerBytes + summary.bytesDelta : null,
    };
    m.images[file] = published.record;
    m.generations.push(gen);
    m.current = number;
    m.lastGeneration = number;
    await writeManifestOrUnpublish(tree.store, m, file);
    fault('commit:after-manifest');
    await writeSnapshot(layout.snapshotFile, snapshotOf(capture.entries));
    await writeSession(layout.sessionFile, { ...session, committedGeneration: number });
    fault('commit:after-session');
    reporter.step('recorded; collecting old generations');
    await collectGarbage(tree.store, m, tree.keep, new Set(session.lower), () => {
      fault('gc:after-manifest');
    });
    return {
      tree: tree.name,
      committed: true,
      generation: number,
      layerBytes: published.record.bytes,
      pendingFiles: pending.files,
      pendingBytes: pending.bytes,
      durationMs: performance.now() - t0,
      layers: gen.images.length,
    };
  } finally {
    await staging.close();
  }
}

interface Staging {
  dir: string;
  close(): Promise<void>;
}

async function memAvailable(): Promise<number> {
  const m = /MemAvailable:\s+(\d+) kB/.exec(await fsp.readFile('/proc/meminfo', 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/**
 * Where the copy of the upper goes: a private tmpfs when it fits easily in
 * memory (creating files on tmpfs is ten times faster than on a disk), the
 * store otherwise.
 */
async function openStaging(ctx: TreeContext, upperBytes: number): Promise<Staging> {
  const { layout, tree } = ctx;
  await teardownUnder(layout.stage, tree.store);
  const avail = await memAvailable();
  // A user cannot mount a tmpfs: the copy then goes into the store.
  if (upperBytes < avail / 4 && canMountTmpfs()) {
    await fsp.mkdir(layout.stage, { recursive: true, mode: 0o700 });
    const size = Math.min(Math.floor(avail / 2), Math.max(64 << 20, 2 * upperBytes + (64 << 20)));
    await mountTmpfs(layout.stage, String(size));
    return {
      dir: join(layout.stage, 'upper'),
      close: async () => {
        await unmount(layout.stage);
      },
    };
  }
  const dir = join(tree.store, `${STAGE_PREFIX}${process.pid}-${randomBytes(4).toString('hex')}`);
  return {
    dir,
    close: async () => {
      await fsp.rm(dir, { recursive: true, force: true });
    },
  };
}
