/**
 * diff --generation N: what generation N's top layer changes in the images
 * below it, read from the image files with the native reader. Read-only:
 * no lock, no mount, no root (the store is world-readable).
 */
import { SquashtreeError } from '../errors.js';
import { generation, readManifest } from '../store/manifest.js';
import { imagePath } from '../store/store.js';
import { ImageTables, SquashfsImage, diffTopLayer } from '../squashfs/index.js';
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
  const images: SquashfsImage[] = [];
  try {
    const tables: ImageTables[] = [];
    for (const f of g.images) {
      const img = await SquashfsImage.open(imagePath(tree.store, f));
      images.push(img);
      tables.push(await ImageTables.load(img));
    }
    const changes: Change[] = (await diffTopLayer(tables)).map((c) => ({
      kind: c.kind,
      path: c.path.toString('latin1'),
      type: TYPE_OF[c.type],
    }));
    return {
      tree: tree.name,
      changes,
      generation: n,
      layer: g.images.length > 1 ? g.images[g.images.length - 1] : null,
    };
  } finally {
    for (const img of images) await img.close();
  }
}
