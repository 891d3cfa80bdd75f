/**
 * diff --generation N: what generation N changed, read from the image files
 * with the native reader: its top layer against the images below it, or,
 * when N is one image (a commit that wrote a new base, a compaction), that
 * image against its parent generation's stack, when the store keeps it.
 * Read-only: no lock, no mount, no root (the store is world-readable).
 */
import { SquashtreeError } from '../errors.js';
import { generation, readManifest, type Generation } from '../store/manifest.js';
import { imagePath } from '../store/store.js';
import { ImageTables, SquashfsImage, diffStacks, diffTopLayer } from '../squashfs/index.js';
import type { Change } from '../layer/layer-plan.js';
import { TYPE_OF } from '../layer/stack-view.js';
import type { TreeContext } from './context.js';
import type { DiffResult } from './diff.js';

export async function diffGeneration(ctx: TreeContext, n: number): Promise<DiffResult> {
  const { tree } = ctx;
  const m = await readManifest(tree.store);
  if (!m) {
    throw new SquashtreeError(
      'E_NOT_INITIALIZED',
      `tree "${tree.name}" has no images in ${tree.store}`,
      {
        hint: `create them with: squashtree init ${tree.name} --dir ${tree.dir}`,
      },
    );
  }
  const g = generation(m, n);
  const parent =
    g.images.length === 1 && g.parent !== null
      ? m.generations.find((x) => x.generation === g.parent)
      : undefined;
  const images: SquashfsImage[] = [];
  const load = async (gen: Generation): Promise<ImageTables[]> => {
    const tables: ImageTables[] = [];
    for (const f of gen.images) {
      const img = await SquashfsImage.open(imagePath(tree.store, f));
      images.push(img);
      tables.push(await ImageTables.load(img));
    }
    return tables;
  };
  try {
    const now = await load(g);
    const found = parent ? await diffStacks(await load(parent), now) : await diffTopLayer(now);
    const changes: Change[] = found.map((c) => ({
      kind: c.kind,
      path: c.path.toString('latin1'),
      type: TYPE_OF[c.type],
    }));
    return {
      tree: tree.name,
      changes,
      generation: n,
      layer: g.images.length > 1 ? g.images[g.images.length - 1] : null,
      ...(parent ? { against: parent.generation } : {}),
    };
  } finally {
    for (const img of images) await img.close();
  }
}
