/**
 * A small client of the OCI distribution API on Node's fetch: blobs and
 * manifests (HEAD, GET, PUT), monolithic and chunked uploads, the referrers
 * API, Basic and Bearer-token authentication (the 401 challenge flow Docker
 * Hub, GHCR, Harbor and the CNCF registry use). HTTPS unless plain HTTP is
 * asked for. Blobs go up as file streams and come down into files while
 * they are hashed, so no image is ever held in memory; every byte received
 * is checked against the digest and size it was asked for.
 */
import { createHash } from 'node:crypto';
import { createReadStream, promises as fsp, constants as C } from 'node:fs';
import { SquashtreeError, errorMessage } from '../errors.js';
import { basicHeader, parseChallenge, type Challenge, type Credentials } from './auth.js';
import type { Reference } from './reference.js';
import {
  MEDIA_DOCKER_MANIFEST,
  MEDIA_OCI_INDEX,
  MEDIA_OCI_MANIFEST,
  indexSchema,
  type ImageIndex,
} from './types.js';

export interface ClientOptions {
  /** Talk http:// instead of https:// (registries on loopback). */
  plainHttp?: boolean;
  credentials?: Credentials | null;
  /** Blobs larger than this go up in PATCH chunks of this size (default 32 MiB). */
  chunkSize?: number;
  /** Abort a request that receives nothing for this long (default 120 s). */
  idleTimeoutMs?: number;
  /** Replaces the global fetch (tests). */
  fetch?: typeof fetch;
}

export interface TransferStats {
  /** Body bytes received (manifests, configs, blobs, tokens). */
  received: number;
  /** Of those, bytes of blobs streamed to files. */
  blobReceived: number;
  /** Body bytes sent. */
  sent: number;
  requests: number;
}

export interface BlobSource {
  digest: string;
  size: number;
  /** A file holding exactly the blob. */
  path?: string;
  /** Or the bytes themselves (small JSON documents). */
  bytes?: Uint8Array;
}

export interface ManifestHead {
  digest: string;
  size: number;
  mediaType: string;
}

export interface FetchedManifest extends ManifestHead {
  bytes: Buffer;
}

type RequestBody = NonNullable<RequestInit['body']>;
type BodyFactory = () => RequestBody;

interface SendOptions {
  headers?: Record<string, string>;
  body?: BodyFactory;
  /** Abort when no data arrives for this long (streams). */
  idle?: boolean;
}

const ACCEPT_MANIFEST = [MEDIA_OCI_MANIFEST, MEDIA_OCI_INDEX, MEDIA_DOCKER_MANIFEST].join(', ');
const MAX_DOCUMENT = 4 << 20;
const DEFAULT_CHUNK = 32 << 20;

export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export function digestOf(data: Uint8Array): string {
  return `sha256:${sha256Hex(data)}`;
}

export class RegistryClient {
  readonly ref: Reference;
  readonly stats: TransferStats = { received: 0, blobReceived: 0, sent: 0, requests: 0 };
  private readonly base: string;
  private readonly fetchFn: typeof fetch;
  private readonly credentials: Credentials | null;
  private readonly chunkSize: number;
  private readonly idleTimeoutMs: number;
  private readonly plainHttp: boolean;
  private authorization: string | undefined;
  /** Scopes granted so far, asked for again with each new token. */
  private readonly scopes = new Set<string>();

  constructor(ref: Reference, opts: ClientOptions = {}) {
    this.ref = ref;
    this.plainHttp = opts.plainHttp === true;
    this.base = `${this.plainHttp ? 'http' : 'https'}://${ref.apiHost}`;
    this.fetchFn = opts.fetch ?? fetch;
    this.credentials = opts.credentials ?? null;
    this.chunkSize = opts.chunkSize ?? DEFAULT_CHUNK;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 120_000;
  }

  private url(path: string): string {
    return `${this.base}/v2/${this.ref.repository}/${path}`;
  }

  /** Where messages say we were talking to. */
  get where(): string {
    return `${this.ref.registry}/${this.ref.repository}`;
  }

  // ---- transport ---------------------------------------------------------

  private async fetchOnce(
    method: string,
    url: string,
    headers: Headers,
    body: RequestBody | undefined,
    signal: AbortSignal | undefined,
  ): Promise<Response> {
    this.stats.requests++;
    try {
      const init: RequestInit = { method, headers, redirect: 'manual' };
      if (body !== undefined) {
        init.body = body;
        init.duplex = 'half';
      }
      if (signal) init.signal = signal;
      return await this.fetchFn(url, init);
    } catch (e) {
      const cause = e instanceof Error && e.cause instanceof Error ? `: ${e.cause.message}` : '';
      throw new SquashtreeError('E_OCI', `${method} ${url} failed: ${errorMessage(e)}${cause}`, {
        cause: e,
        hint: this.plainHttp
          ? 'check that the registry runs and listens on that address'
          : 'check the registry address; a registry that speaks plain http (on loopback) needs --plain-http',
      });
    }
  }

  /**
   * One API request: adds credentials, follows redirects (dropping them on
   * another origin, as blob storage redirects need), and answers a 401
   * challenge once by authenticating and sending again.
   */
  private async send(
    method: string,
    startUrl: string,
    opts: SendOptions = {},
  ): Promise<{ res: Response; idle: IdleGuard | undefined }> {
    let challenged = false;
    for (;;) {
      let url = startUrl;
      const idle = opts.idle ? new IdleGuard(this.idleTimeoutMs) : undefined;
      let res: Response | undefined;
      for (let hop = 0; hop < 6; hop++) {
        const headers = new Headers(opts.headers);
        headers.set('user-agent', 'squashtree');
        const sameOrigin = new URL(url).origin === new URL(this.base).origin;
        if (sameOrigin && this.authorization) headers.set('authorization', this.authorization);
        res = await this.fetchOnce(method, url, headers, opts.body?.(), idle?.signal);
        if (![301, 302, 303, 307, 308].includes(res.status)) break;
        const loc = res.headers.get('location');
        await discard(res);
        if (!loc) throw this.protocol(`${method} ${url} redirected without a Location`);
        url = new URL(loc, url).toString();
        if (!this.plainHttp && url.startsWith('http:'))
          throw this.protocol(`${method} ${startUrl} redirected to plain http (${url})`);
      }
      if (!res) throw this.protocol(`${method} ${startUrl}: no response`);
      if (res.status !== 401 || challenged) {
        if (res.status === 401) {
          await discard(res);
          throw this.authFailed(method, startUrl);
        }
        return { res, idle };
      }
      challenged = true;
      const header = res.headers.get('www-authenticate');
      await discard(res);
      const challenge = header ? parseChallenge(header) : null;
      if (!challenge) throw this.authFailed(method, startUrl);
      await this.authenticate(challenge);
    }
  }

  private async authenticate(ch: Challenge): Promise<void> {
    if (ch.scheme === 'basic') {
      if (!this.credentials) throw this.authFailed('authenticate', this.base);
      this.authorization = basicHeader(this.credentials);
      return;
    }
    if (ch.scheme !== 'bearer' || !ch.params.realm) {
      throw new SquashtreeError(
        'E_OCI_AUTH',
        `${this.where} asks for an authentication scheme squashtree does not speak (${ch.scheme})`,
        { hint: 'squashtree speaks Basic and Bearer-token authentication' },
      );
    }
    const realm = new URL(ch.params.realm);
    if (realm.protocol !== 'https:' && !(this.plainHttp && realm.protocol === 'http:')) {
      throw this.protocol(`the token service ${realm.toString()} is not https`);
    }
    if (ch.params.scope) for (const s of ch.params.scope.split(' ')) this.scopes.add(s);
    if (ch.params.service) realm.searchParams.set('service', ch.params.service);
    for (const s of this.scopes) realm.searchParams.append('scope', s);
    const headers = new Headers({ 'user-agent': 'squashtree' });
    if (this.credentials) headers.set('authorization', basicHeader(this.credentials));
    const res = await this.fetchOnce('GET', realm.toString(), headers, undefined, undefined);
    const body = await this.readDocument(res, 1 << 20);
    if (!res.ok) {
      throw new SquashtreeError(
        'E_OCI_AUTH',
        `the token service of ${this.where} refused: HTTP ${res.status}`,
        {
          stderr: body.toString('utf8').slice(0, 2000),
          hint: this.credentialsHint(),
        },
      );
    }
    let token: unknown;
    try {
      const data = JSON.parse(body.toString('utf8')) as { token?: unknown; access_token?: unknown };
      token = data.token ?? data.access_token;
    } catch {
      token = undefined;
    }
    if (typeof token !== 'string' || token === '')
      throw this.protocol(`the token service ${realm.origin} answered without a token`);
    this.authorization = `Bearer ${token}`;
  }

  private credentialsHint(): string {
    return this.credentials
      ? `the credentials from ${this.credentials.source} were not accepted for ${this.ref.repository}; check them and their push/pull rights`
      : `log in (docker login ${this.ref.registry}, which writes ~/.docker/config.json) or set SQUASHTREE_REGISTRY_USER and SQUASHTREE_REGISTRY_PASSWORD`;
  }

  private authFailed(method: string, url: string): SquashtreeError {
    return new SquashtreeError(
      'E_OCI_AUTH',
      `${this.where} refused ${method} ${new URL(url).pathname}: authentication required or not sufficient`,
      { hint: this.credentialsHint() },
    );
  }

  private protocol(message: string, stderr?: string): SquashtreeError {
    return new SquashtreeError('E_OCI', message, {
      ...(stderr ? { stderr } : {}),
      hint: 'the registry answered in a way squashtree does not expect; check the address and that it is an OCI distribution registry',
    });
  }

  private async failed(res: Response, what: string): Promise<SquashtreeError> {
    const text = (await this.readDocument(res, 64 << 10).catch(() => Buffer.alloc(0))).toString(
      'utf8',
    );
    let detail = '';
    try {
      const errs = (JSON.parse(text) as { errors?: { code?: string; message?: string }[] }).errors;
      detail = (errs ?? []).map((e) => `${e.code ?? ''} ${e.message ?? ''}`.trim()).join('; ');
    } catch {
      detail = text.trim().slice(0, 200);
    }
    const code =
      res.status === 404 ? 'E_OCI_NOT_FOUND' : res.status === 403 ? 'E_OCI_AUTH' : 'E_OCI';
    return new SquashtreeError(
      code,
      `${what} at ${this.where}: HTTP ${res.status}${detail ? ` (${detail})` : ''}`,
      {
        stderr: text.slice(0, 2000),
        hint:
          code === 'E_OCI_NOT_FOUND'
            ? 'check the reference; squashtree publish pushes the tags gen-N and latest'
            : code === 'E_OCI_AUTH'
              ? this.credentialsHint()
              : 'see the registry message above; retrying is safe',
      },
    );
  }

  /** Read a small body, counting it and refusing more than `limit` bytes. */
  private async readDocument(res: Response, limit = MAX_DOCUMENT): Promise<Buffer> {
    if (!res.body) return Buffer.alloc(0);
    const parts: Buffer[] = [];
    let n = 0;
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
      n += chunk.byteLength;
      this.stats.received += chunk.byteLength;
      if (n > limit) {
        await res.body.cancel().catch(() => undefined);
        throw this.protocol(`a response from ${this.where} is larger than ${limit} bytes`);
      }
      parts.push(Buffer.from(chunk));
    }
    return Buffer.concat(parts);
  }

  // ---- blobs -------------------------------------------------------------

  /** Size of the blob if the registry has it, else null. */
  async headBlob(digest: string): Promise<number | null> {
    const { res } = await this.send('HEAD', this.url(`blobs/${digest}`));
    await discard(res);
    if (res.status === 404) return null;
    if (!res.ok) throw await this.failed(res, `HEAD blob ${digest}`);
    const len = Number(res.headers.get('content-length') ?? NaN);
    return Number.isFinite(len) ? len : -1;
  }

  /** Upload a blob unless the registry has it; returns whether bytes were sent. */
  async pushBlob(src: BlobSource): Promise<boolean> {
    const have = await this.headBlob(src.digest);
    if (have !== null && (have === src.size || have === -1)) return false;
    const start = await this.send('POST', this.url('blobs/uploads/'), {
      headers: { 'content-length': '0' },
    });
    await discard(start.res);
    if (start.res.status !== 202) throw await this.failed(start.res, 'starting an upload');
    let location = this.location(start.res, 'starting an upload');
    const body = (from: number, to: number): BodyFactory =>
      src.bytes
        ? () => {
            const slice = (src.bytes ?? new Uint8Array()).subarray(from, to);
            this.stats.sent += slice.byteLength;
            return slice;
          }
        : () =>
            this.counted(
              createReadStream(src.path ?? '', {
                start: from,
                end: to - 1,
                highWaterMark: 1 << 20,
              }),
            );
    if (src.size <= this.chunkSize) {
      const put = await this.send('PUT', withDigest(location, src.digest), {
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(src.size) },
        ...(src.size > 0 ? { body: body(0, src.size) } : {}),
      });
      await discard(put.res);
      if (put.res.status !== 201) throw await this.failed(put.res, `uploading blob ${src.digest}`);
      return true;
    }
    for (let from = 0; from < src.size; from += this.chunkSize) {
      const to = Math.min(src.size, from + this.chunkSize);
      const patch = await this.send('PATCH', location, {
        headers: {
          'content-type': 'application/octet-stream',
          'content-length': String(to - from),
          'content-range': `${from}-${to - 1}`,
        },
        body: body(from, to),
      });
      await discard(patch.res);
      if (patch.res.status !== 202)
        throw await this.failed(patch.res, `uploading bytes ${from}-${to - 1} of ${src.digest}`);
      const range = patch.res.headers.get('range');
      if (range && range !== `0-${to - 1}`)
        throw this.protocol(
          `the registry holds ${range} of ${src.digest} after sending 0-${to - 1}`,
        );
      location = this.location(patch.res, 'a chunked upload');
    }
    const done = await this.send('PUT', withDigest(location, src.digest), {
      headers: { 'content-length': '0' },
    });
    await discard(done.res);
    if (done.res.status !== 201) throw await this.failed(done.res, `finishing blob ${src.digest}`);
    return true;
  }

  private location(res: Response, what: string): string {
    const loc = res.headers.get('location');
    if (!loc) throw this.protocol(`${what}: the registry sent no Location`);
    return new URL(loc, this.base).toString();
  }

  private async *counted(stream: AsyncIterable<Buffer>): AsyncGenerator<Uint8Array> {
    for await (const chunk of stream) {
      this.stats.sent += chunk.byteLength;
      yield chunk;
    }
  }

  /** A small blob (config, signature), checked against its digest and size. */
  async getBlobBytes(digest: string, size: number, limit = 1 << 20): Promise<Buffer> {
    if (size > limit)
      throw this.protocol(`blob ${digest} claims ${size} bytes, more than ${limit}`);
    const { res } = await this.send('GET', this.url(`blobs/${digest}`));
    if (!res.ok) throw await this.failed(res, `GET blob ${digest}`);
    const bytes = await this.readDocument(res, size);
    if (bytes.byteLength !== size || digestOf(bytes) !== digest) {
      throw digestMismatch(`blob ${digest}`, this.where);
    }
    return bytes;
  }

  /**
   * Stream a blob into a new file `dest` (created exclusively), hashing as it
   * arrives; refuses more bytes than `size` and a wrong digest. The caller
   * removes `dest` on failure.
   */
  async downloadBlob(
    digest: string,
    size: number,
    dest: string,
    onProgress?: (received: number) => void,
  ): Promise<void> {
    const { res, idle } = await this.send('GET', this.url(`blobs/${digest}`), { idle: true });
    try {
      if (!res.ok) throw await this.failed(res, `GET blob ${digest}`);
      if (!res.body) throw this.protocol(`GET blob ${digest}: no body`);
      const hash = createHash('sha256');
      let n = 0;
      const fh = await fsp.open(dest, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o644);
      try {
        try {
          for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
            idle?.touch();
            n += chunk.byteLength;
            this.stats.received += chunk.byteLength;
            this.stats.blobReceived += chunk.byteLength;
            if (n > size) {
              await res.body.cancel().catch(() => undefined);
              throw digestMismatch(`blob ${digest} (more than ${size} bytes)`, this.where);
            }
            hash.update(chunk);
            let off = 0;
            while (off < chunk.byteLength) {
              const { bytesWritten } = await fh.write(chunk, off, chunk.byteLength - off);
              off += bytesWritten;
            }
            onProgress?.(n);
          }
        } catch (e) {
          if (e instanceof SquashtreeError) throw e;
          throw new SquashtreeError(
            'E_OCI',
            `the download of blob ${digest} from ${this.where} broke off after ${n} of ${size} bytes: ${errorMessage(e)}`,
            { cause: e, hint: 'nothing was applied; run the pull again' },
          );
        }
      } finally {
        await fh.close();
      }
      if (n !== size) {
        throw new SquashtreeError(
          'E_OCI_DIGEST',
          `blob ${digest} from ${this.where} ended after ${n} of ${size} bytes`,
          { hint: 'nothing was applied; run the pull again' },
        );
      }
      if (`sha256:${hash.digest('hex')}` !== digest)
        throw digestMismatch(`blob ${digest}`, this.where);
    } finally {
      idle?.done();
    }
  }

  // ---- manifests ---------------------------------------------------------

  async headManifest(reference: string): Promise<ManifestHead | null> {
    const { res } = await this.send('HEAD', this.url(`manifests/${reference}`), {
      headers: { accept: ACCEPT_MANIFEST },
    });
    await discard(res);
    if (res.status === 404) return null;
    if (!res.ok) throw await this.failed(res, `HEAD manifest ${reference}`);
    const digest = res.headers.get('docker-content-digest');
    if (!digest) {
      // Some registries leave the header off a HEAD: fetch the manifest to learn it.
      const m = await this.getManifest(reference);
      return { digest: m.digest, size: m.size, mediaType: m.mediaType };
    }
    return {
      digest,
      size: Number(res.headers.get('content-length') ?? 0),
      mediaType: (res.headers.get('content-type') ?? '').split(';')[0] ?? '',
    };
  }

  /** GET a manifest; by digest, its bytes must hash to that digest. */
  async getManifest(reference: string): Promise<FetchedManifest> {
    const { res } = await this.send('GET', this.url(`manifests/${reference}`), {
      headers: { accept: ACCEPT_MANIFEST },
    });
    if (!res.ok) throw await this.failed(res, `GET manifest ${reference}`);
    const bytes = await this.readDocument(res);
    const digest = digestOf(bytes);
    const claimed = res.headers.get('docker-content-digest');
    if (
      (reference.startsWith('sha256:') && digest !== reference) ||
      (claimed && claimed !== digest)
    ) {
      throw digestMismatch(`manifest ${reference}`, this.where);
    }
    return {
      digest,
      size: bytes.byteLength,
      mediaType: (res.headers.get('content-type') ?? '').split(';')[0] ?? '',
      bytes,
    };
  }

  /** PUT a manifest under a tag or its digest; returns its digest and the OCI-Subject header. */
  async putManifest(
    reference: string,
    bytes: Buffer,
    mediaType = MEDIA_OCI_MANIFEST,
  ): Promise<{ digest: string; subject: string | null }> {
    const { res } = await this.send('PUT', this.url(`manifests/${reference}`), {
      headers: { 'content-type': mediaType, 'content-length': String(bytes.byteLength) },
      body: () => {
        this.stats.sent += bytes.byteLength;
        return bytes;
      },
    });
    await discard(res);
    if (res.status !== 201) throw await this.failed(res, `PUT manifest ${reference}`);
    const digest = digestOf(bytes);
    const claimed = res.headers.get('docker-content-digest');
    if (claimed && claimed !== digest)
      throw this.protocol(`the registry stored manifest ${reference} as ${claimed}, not ${digest}`);
    return { digest, subject: res.headers.get('oci-subject') };
  }

  /** The referrers of a manifest, or null where the registry has no referrers API. */
  async referrers(digest: string, artifactType?: string): Promise<ImageIndex | null> {
    const url = new URL(this.url(`referrers/${digest}`));
    if (artifactType) url.searchParams.set('artifactType', artifactType);
    const { res } = await this.send('GET', url.toString(), {
      headers: { accept: MEDIA_OCI_INDEX },
    });
    const type = (res.headers.get('content-type') ?? '').split(';')[0]?.trim();
    if (res.status !== 200 || type !== MEDIA_OCI_INDEX) {
      await discard(res);
      return null;
    }
    const bytes = await this.readDocument(res);
    let data: unknown;
    try {
      data = JSON.parse(bytes.toString('utf8'));
    } catch {
      throw this.protocol(`the referrers of ${digest} are not JSON`);
    }
    const parsed = indexSchema.safeParse(data);
    if (!parsed.success) throw this.protocol(`the referrers of ${digest} are not an OCI index`);
    return parsed.data;
  }
}

function withDigest(location: string, digest: string): string {
  const u = new URL(location);
  u.searchParams.set('digest', digest);
  return u.toString();
}

async function discard(res: Response): Promise<void> {
  if (res.body && !res.bodyUsed) await res.body.cancel().catch(() => undefined);
}

function digestMismatch(what: string, where: string): SquashtreeError {
  return new SquashtreeError(
    'E_OCI_DIGEST',
    `${what} from ${where} does not match its digest or size: it was changed in the registry or on the way`,
    {
      hint: 'nothing was applied; if it happens again, the registry holds damaged or tampered data: publish the generation again from the builder',
    },
  );
}

/** An AbortSignal that fires when touch() is not called for `ms`. */
class IdleGuard {
  private readonly controller = new AbortController();
  private timer: NodeJS.Timeout;

  constructor(private readonly ms: number) {
    this.timer = this.arm();
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  private arm(): NodeJS.Timeout {
    const t = setTimeout(() => {
      this.controller.abort(new Error(`no data for ${Math.round(this.ms / 1000)} s`));
    }, this.ms);
    t.unref();
    return t;
  }

  touch(): void {
    clearTimeout(this.timer);
    this.timer = this.arm();
  }

  done(): void {
    clearTimeout(this.timer);
  }
}
