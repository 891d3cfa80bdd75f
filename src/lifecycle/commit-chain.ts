/**
 * Where a mounted session's committed changes live, and so where its next
 * commit stacks: the session's chain of generations. A session that has
 * committed nothing stands on the generation it mounted; each commit (or a
 * compaction of the mounted tree) moves its head to the generation it made,
 * whose snapshot (snapshot.ts) says what of the upper that generation holds.
 *
 * The session record is written after the manifest, so a kill between the
 * two leaves a head one generation behind. The generation the manifest made
 * current then has this session's snapshot with its images and the sha256
 * of its top image: the chain is taken up there, and nothing is packed
 * twice. Anything else that moved the current generation (a pull) leaves
 * the session out of step: its next commit packs the whole upper on the
 * images it mounted, as every commit did before commits stacked.
 */
import { currentGeneration, type Generation, type Manifest } from '../store/manifest.js';
import type { Layout } from './layout.js';
import type { Session } from './session.js';
import { readGenerationSnapshot, readLegacySnapshot } from './snapshot.js';
import type { UpperSnapshot } from '../layer/upper-scan.js';

export interface Chain {
  /** The session as it should be recorded (with a head taken up from a killed commit). */
  session: Session;
  /** The session record was behind the manifest and is to be written again. */
  recovered: boolean;
  /**
   * The generation that holds the committed changes (null when the manifest
   * no longer lists it), its images and the snapshot of the upper it holds.
   * Pending changes are what the overlay shows beyond it.
   */
  head: Generation | null;
  images: string[];
  snapshot: UpperSnapshot;
  /** Why the next commit cannot stack on the current generation, when it cannot. */
  unstackable?: string;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

const NOTHING: UpperSnapshot = new Map();

export async function resolveChain(layout: Layout, session: Session, m: Manifest): Promise<Chain> {
  const cur = currentGeneration(m);
  const headNumber = session.committedGeneration ?? session.generation;
  const snapOf = async (g: Generation): Promise<UpperSnapshot | null> => {
    const s = await readGenerationSnapshot(layout, g.generation);
    return s && sameList(s.images, g.images) ? s.entries : null;
  };
  if (headNumber === cur.generation) {
    if (session.committedGeneration === null)
      return { session, recovered: false, head: cur, images: cur.images, snapshot: NOTHING };
    const snapshot = await snapOf(cur);
    if (snapshot) return { session, recovered: false, head: cur, images: cur.images, snapshot };
    // A session begun before commits stacked, or a snapshot lost: count against the old record.
    return {
      session,
      recovered: false,
      head: cur,
      images: cur.images,
      snapshot: (await readLegacySnapshot(layout)) ?? NOTHING,
      unstackable: `no record of what generation ${cur.generation} holds of the upper`,
    };
  }
  const taken = await readGenerationSnapshot(layout, cur.generation);
  const top = cur.images[cur.images.length - 1] ?? '';
  if (
    taken &&
    cur.parent === headNumber &&
    (cur.action === 'commit' || cur.action === 'compact') &&
    sameList(taken.images, cur.images) &&
    taken.top !== null &&
    m.images[top]?.sha256 === taken.top
  ) {
    return {
      session: { ...session, committedGeneration: cur.generation },
      recovered: true,
      head: cur,
      images: cur.images,
      snapshot: taken.entries,
    };
  }
  const own = m.generations.find((g) => g.generation === headNumber) ?? null;
  const ownSnapshot =
    session.committedGeneration === null ? NOTHING : own ? await snapOf(own) : null;
  const why = `the current generation ${cur.generation} is not the one this session made or mounted (${headNumber})`;
  if (own && ownSnapshot)
    return {
      session,
      recovered: false,
      head: own,
      images: own.images,
      snapshot: ownSnapshot,
      unstackable: why,
    };
  return {
    session,
    recovered: false,
    head: null,
    images: session.lower,
    snapshot: NOTHING,
    unstackable: why,
  };
}
