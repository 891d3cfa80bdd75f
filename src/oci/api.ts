/**
 * The registry API session under RegistryClient: requests over the
 * transport (http.ts) with credentials, redirects (credentials are dropped
 * on another origin, as blob storage redirects need) and the 401 challenge
 * flow (Basic, and Bearer tokens as Docker Hub, GHCR, Harbor and the CNCF
 * registry use); HTTPS unless plain HTTP is asked for. Counts every byte
 * sent and received.
 */
import { createHash } from 'node:crypto';
import { SquashtreeError } from '../errors.js';
import { interruptSignal } from '../exec/run.js';
import { basicHeader, parseChallenge, type Challenge, type Credentials } from './auth.js';
import { protocolError, transportFailure } from './client-errors.js';
import {
  discardBody,
  makeAgents,
  request,
  timeoutsFromEnv,
  type HttpResponse,
  type Timeouts,
} from './http.js';
import type { Reference } from './reference.js';

export interface ClientOptions {
  /** Talk http:// instead of https:// (registries on loopback). */
  plainHttp?: boolean;
  credentials?: Credentials | null;
  /** Blobs larger than this go up in PATCH chunks of this size (default 32 MiB). */
  chunkSize?: number;
  /** Connect and idle timeouts (default: timeoutsFromEnv()). */
  timeouts?: Timeouts;
  /** Stops every request at once (default: SIGINT/SIGTERM, interruptSignal()). */
  signal?: AbortSignal;
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

export type RequestBody = Uint8Array | AsyncIterable<Uint8Array>;
export type BodyFactory = () => RequestBody;

export interface SendOptions {
  headers?: Record<string, string>;
  body?: BodyFactory;
}

const MAX_DOCUMENT = 4 << 20;
export const DEFAULT_CHUNK = 32 << 20;

export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export function digestOf(data: Uint8Array): string {
  return `sha256:${sha256Hex(data)}`;
}

export class RegistryApi {
  readonly ref: Reference;
  readonly stats: TransferStats = { received: 0, blobReceived: 0, sent: 0, requests: 0 };
  protected readonly base: string;
  protected readonly credentials: Credentials | null;
  protected readonly chunkSize: number;
  protected readonly plainHttp: boolean;
  readonly timeouts: Timeouts;
  private readonly signal: AbortSignal;
  private readonly agents = makeAgents();
  private authorization: string | undefined;
  /** Scopes granted so far, asked for again with each new token. */
  private readonly scopes = new Set<string>();

  constructor(ref: Reference, opts: ClientOptions = {}) {
    this.ref = ref;
    this.plainHttp = opts.plainHttp === true;
    this.base = `${this.plainHttp ? 'http' : 'https'}://${ref.apiHost}`;
    this.credentials = opts.credentials ?? null;
    this.chunkSize = opts.chunkSize ?? DEFAULT_CHUNK;
    this.timeouts = opts.timeouts ?? timeoutsFromEnv();
    this.signal = opts.signal ?? interruptSignal();
  }

  /** Close the connections kept alive between requests. */
  close(): void {
    this.agents.close();
  }

  protected url(path: string): string {
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
  ): Promise<HttpResponse> {
    this.stats.requests++;
    try {
      return await request(
        { method, url, headers, ...(body !== undefined ? { body } : {}), signal: this.signal },
        this.timeouts,
        this.agents,
      );
    } catch (e) {
      throw transportFailure(e, method, url, this.plainHttp, this.timeouts);
    }
  }

  /**
   * One API request: adds credentials, follows redirects (dropping them on
   * another origin, as blob storage redirects need), and answers a 401
   * challenge once by authenticating and sending again.
   */
  async send(method: string, startUrl: string, opts: SendOptions = {}): Promise<HttpResponse> {
    let challenged = false;
    for (;;) {
      let url = startUrl;
      let res: HttpResponse | undefined;
      for (let hop = 0; hop < 6; hop++) {
        const headers = new Headers(opts.headers);
        headers.set('user-agent', 'squashtree');
        const sameOrigin = new URL(url).origin === new URL(this.base).origin;
        if (sameOrigin && this.authorization) headers.set('authorization', this.authorization);
        res = await this.fetchOnce(method, url, headers, opts.body?.());
        if (![301, 302, 303, 307, 308].includes(res.status)) break;
        const loc = res.headers.get('location');
        await discardBody(res);
        if (!loc) throw protocolError(`${method} ${url} redirected without a Location`);
        url = new URL(loc, url).toString();
        if (!this.plainHttp && url.startsWith('http:'))
          throw protocolError(`${method} ${startUrl} redirected to plain http (${url})`);
      }
      if (!res) throw protocolError(`${method} ${startUrl}: no response`);
      if (res.status !== 401 || challenged) {
        if (res.status === 401) {
          await discardBody(res);
          throw this.authFailed(method, startUrl);
        }
        return res;
      }
      challenged = true;
      const header = res.headers.get('www-authenticate');
      await discardBody(res);
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
      throw protocolError(`the token service ${realm.toString()} is not https`);
    }
    if (ch.params.scope) for (const s of ch.params.scope.split(' ')) this.scopes.add(s);
    if (ch.params.service) realm.searchParams.set('service', ch.params.service);
    for (const s of this.scopes) realm.searchParams.append('scope', s);
    const headers = new Headers({ 'user-agent': 'squashtree' });
    if (this.credentials) headers.set('authorization', basicHeader(this.credentials));
    const res = await this.fetchOnce('GET', realm.toString(), headers, undefined);
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
      throw protocolError(`the token service ${realm.origin} answered without a token`);
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

  protected async failed(res: HttpResponse, what: string): Promise<SquashtreeError> {
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
  async readDocument(res: HttpResponse, limit = MAX_DOCUMENT): Promise<Buffer> {
    const parts: Buffer[] = [];
    let n = 0;
    try {
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        n += chunk.byteLength;
        this.stats.received += chunk.byteLength;
        if (n > limit) {
          res.body.destroy();
          throw protocolError(`a response from ${this.where} is larger than ${limit} bytes`);
        }
        parts.push(chunk);
      }
    } catch (e) {
      throw this.bodyFailure(e, res);
    }
    return Buffer.concat(parts);
  }

  /** An error while the body of `res` streams in, as a SquashtreeError. */
  bodyFailure(e: unknown, res: HttpResponse): SquashtreeError {
    return transportFailure(e, res.method, res.url, this.plainHttp, this.timeouts);
  }

  protected location(res: HttpResponse, what: string): string {
    const loc = res.headers.get('location');
    if (!loc) throw protocolError(`${what}: the registry sent no Location`);
    return new URL(loc, this.base).toString();
  }
}
