/** publish, pull and key: generations through an OCI registry (src/oci). */
import { SquashtreeError } from '../../errors.js';
import { parseBytes } from '../../config/values.js';
import { generateKey, type GeneratedKey } from '../../oci/sign.js';
import { publishTree, type PublishResult } from '../../oci/publish.js';
import { pullTree, type PullResult } from '../../oci/pull.js';
import { bytes, count, seconds } from '../format.js';
import type { CliContext } from '../context.js';
import { defineCommand } from '../spec.js';

const PLAIN_HTTP = {
  flags: '--plain-http',
  description: 'talk plain http instead of https (a registry on loopback)',
};

async function oneTree(ctx: CliContext, name: string | undefined) {
  if (!name) throw new SquashtreeError('E_USAGE', 'name the tree');
  const [tree] = await ctx.trees([name]);
  if (!tree) throw new SquashtreeError('E_NO_TREE', `no tree named ${name}`);
  return tree;
}

function needRef(ref: string | undefined, cmd: string): string {
  if (!ref) {
    throw new SquashtreeError('E_USAGE', `${cmd} needs a registry reference`, {
      hint: `squashtree ${cmd} gentoo registry.example.org/gentoo/repo, or set ${cmd === 'pull' ? 'pull-from' : 'publish-to'} in the tree's config`,
    });
  }
  return ref;
}

function chunkSize(v: unknown): number | undefined {
  if (v === undefined) return undefined;
  const n = typeof v === 'string' ? parseBytes(v) : undefined;
  if (n === undefined)
    throw new SquashtreeError(
      'E_USAGE',
      `--chunk-size takes a size such as 16M, not ${JSON.stringify(v)}`,
    );
  return n;
}

function keepOption(v: unknown): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1)
    throw new SquashtreeError(
      'E_USAGE',
      `--keep takes a number of generations (1 or more), not ${JSON.stringify(v)}`,
    );
  return n;
}

export const publishCommand = defineCommand<PublishResult>({
  name: 'publish',
  summary:
    "push a tree's current generation (and its unpublished history) to an OCI registry (tags gen-N and latest)",
  args: '<name> [ref]',
  root: true,
  options: [
    {
      flags: '--sign-key <file>',
      description:
        "sign the manifests with this Ed25519 private key (default: the tree's sign-key)",
    },
    {
      flags: '--keep <n>',
      description:
        "then delete from the registry the manifests of generations older than the N newest (except what a kept generation's recipe needs)",
    },
    {
      flags: '--chunk-size <size>',
      description: 'upload blobs larger than this in chunks of this size (default 32M)',
    },
    PLAIN_HTTP,
  ],
  run: async (ctx, [name, ref], o) => {
    const tree = await oneTree(ctx, name);
    const cfg = tree.ctx.tree;
    const size = chunkSize(o.chunkSize);
    const keep = keepOption(o.keep);
    const signKey = typeof o.signKey === 'string' ? o.signKey : cfg.signKey;
    const result = await publishTree(tree, needRef(ref ?? cfg.publishTo, 'publish'), {
      plainHttp: Boolean(o.plainHttp) || cfg.plainHttp,
      ...(size !== undefined ? { chunkSize: size } : {}),
      ...(signKey !== undefined ? { signKey } : {}),
      ...(keep !== undefined ? { keep } : {}),
    });
    return { data: result, ok: result.prune?.error == null };
  },
  render: (r) => {
    const up = r.blobs.filter((b) => b.uploaded);
    const lines = [
      `${r.tree}: published generation ${r.generation} to ${r.ref} as ${r.tags.join(', ')} (${r.digest})`,
    ];
    const earlier = r.pushed.filter((p) => p.generation !== r.generation && !p.existed);
    if (earlier.length > 0)
      lines.push(
        `  first the unpublished history: ${earlier.map((p) => `gen-${p.generation}`).join(', ')}`,
      );
    lines.push(
      `  ${count(up.length, 'image')} of it uploaded, ${count(r.blobs.length - up.length, 'image')} already there (${bytes(r.skippedBytes)}); ${bytes(r.uploadedBytes)} uploaded in all, ${seconds(r.durationMs)}`,
    );
    const recipes = r.pushed.find((p) => p.generation === r.generation)?.recipes ?? 0;
    if (recipes > 0)
      lines.push(
        `  followers that hold its inputs rebuild ${count(recipes, 'image')} instead of downloading`,
      );
    if (r.signature)
      lines.push(
        `  signed by ${r.signature.key}${r.signature.tag ? ` (tag ${r.signature.tag}: the registry has no referrers API)` : ''}`,
      );
    if (r.prune) {
      const p = r.prune;
      lines.push(
        `  kept ${count(p.kept.length, 'generation')}${p.keptForRecipes.length ? ` (${p.keptForRecipes.map((n) => `gen-${n}`).join(', ')} for recipes)` : ''}, deleted ${count(p.deleted.length, 'manifest')}${p.deleted.length ? ": run the registry's garbage collection to free their blobs" : ''}`,
      );
      if (p.error)
        lines.push(
          `  error ${p.error.code}: pruning stopped: ${p.error.message}${p.error.hint ? `\n  hint: ${p.error.hint}` : ''}`,
        );
    }
    return lines.join('\n');
  },
});

export const pullCommand = defineCommand<PullResult>({
  name: 'pull',
  summary:
    'make the generation a registry reference holds current, downloading only missing images',
  args: '<name> [ref]',
  root: true,
  options: [
    {
      flags: '--verify-key <file>',
      description:
        'refuse manifests this Ed25519 public key did not sign (default $SQUASHTREE_VERIFY_KEY)',
    },
    { flags: '--allow-downgrade', description: 'accept a generation older than the local one' },
    { flags: '--restart', description: 'switch a mounted tree to the new generation at once' },
    { flags: '--discard', description: 'drop pending local changes instead of refusing' },
    {
      flags: '--no-rebuild',
      description: 'download missing images whole instead of rebuilding them from their recipe',
    },
    PLAIN_HTTP,
  ],
  run: async (ctx, [name, ref], o) => {
    const tree = await oneTree(ctx, name);
    const cfg = tree.ctx.tree;
    // Command line first, then the tree's config (pull-from, verify-key, plain-http), then the environment.
    const key =
      typeof o.verifyKey === 'string'
        ? o.verifyKey
        : (cfg.verifyKey ?? (process.env.SQUASHTREE_VERIFY_KEY || undefined));
    const result = await pullTree(tree, needRef(ref ?? cfg.pullFrom, 'pull'), {
      plainHttp: Boolean(o.plainHttp) || cfg.plainHttp,
      allowDowngrade: Boolean(o.allowDowngrade),
      restart: Boolean(o.restart),
      discard: Boolean(o.discard),
      noRebuild: o.rebuild === false,
      ...(key ? { verifyKey: key } : {}),
    });
    return { data: result, ok: true };
  },
  render: (r) => {
    if (r.upToDate)
      return `${r.tree}: up to date with ${r.ref} (generation ${r.generation}, ${r.digest})`;
    const lines = [
      `${r.tree}: generation ${r.generation} from ${r.ref} is current${r.localGeneration !== r.generation ? ` (local generation ${r.localGeneration})` : ''}`,
      `  downloaded ${count(r.downloaded.length, 'image')}, rebuilt ${r.rebuilt.length}, reused ${r.reused.length}: ${bytes(r.bytesDownloaded)} of blobs, ${bytes(r.transferBytes)} in all, ${seconds(r.durationMs)}`,
    ];
    for (const i of r.images) {
      if (i.how === 'reused') continue;
      lines.push(
        `  ${i.how} ${i.file} (${bytes(i.bytes)}${i.how === 'rebuilt' ? `; ${bytes(i.transferred)} fetched for it` : ''})${i.reason ? `: ${i.reason}` : ''}`,
      );
    }
    if (r.signedBy) lines.push(`  signature verified: ${r.signedBy}`);
    if (r.discarded) lines.push(`  discarded ${count(r.discarded.files, 'pending change')}`);
    if (r.mounted && !r.switched)
      lines.push(`  the mounted tree shows it after: squashtree restart ${r.tree}`);
    return lines.join('\n');
  },
});

export const keyCommand = defineCommand<GeneratedKey>({
  name: 'key',
  summary: 'key generate [--out DIR]: make an Ed25519 key pair to sign published generations',
  args: '<action>',
  options: [
    { flags: '--out <dir>', description: 'where to write the key pair (default: .)' },
    { flags: '--force', description: 'replace an existing key pair' },
  ],
  run: async (_ctx, [action], o) => {
    if (action !== 'generate') {
      throw new SquashtreeError('E_USAGE', `key takes "generate", not ${action ?? '(nothing)'}`, {
        hint: 'squashtree key generate --out /etc/squashtree/keys',
      });
    }
    const out = typeof o.out === 'string' ? o.out : '.';
    return { data: await generateKey(out, Boolean(o.force)), ok: true };
  },
  render: (k) =>
    [
      `private key ${k.privateKey} (mode 0600: give it to the builder: publish --sign-key)`,
      `public key  ${k.publicKey} (give it to followers: pull --verify-key)`,
      `key id      ${k.keyId}`,
    ].join('\n'),
});
