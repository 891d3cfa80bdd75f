/**
 * The registry client's transport, on node:http and node:https rather than
 * fetch: fetch refuses the WHATWG "bad ports" (5060, 6000, 6665-6669, ...)
 * where a registry may well listen, and gives no way to tell a connection
 * that never opens from a server that never answers. Every request here has
 * a connect timeout and an idle timeout (no byte either way: waiting for
 * the headers, a stalled upload, a stalled body), and stops at once when
 * its AbortSignal fires (SIGINT/SIGTERM).
 */
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { SquashtreeError, errnoCode, errorMessage } from '../errors.js';

export interface Timeouts {
  /** Until the TCP (and TLS) connection stands. */
  connectMs: number;
  /** No byte sent or received for this long: headers, uploads and bodies alike. */
  idleMs: number;
}

/** SQUASHTREE_REGISTRY_TIMEOUT (seconds) sets both; defaults 30 s to connect, 60 s idle. */
export function timeoutsFromEnv(env: NodeJS.ProcessEnv = process.env): Timeouts {
  const s = Number(env.SQUASHTREE_REGISTRY_TIMEOUT);
  if (Number.isFinite(s) && s > 0) return { connectMs: s * 1000, idleMs: s * 1000 };
  return { connectMs: 30_000, idleMs: 60_000 };
}

export type Phase = 'connect' | 'send' | 'headers' | 'body';

/** Why a request failed below HTTP: the client turns it into a SquashtreeError. */
export class TransportError extends Error {
  constructor(
    readonly kind: 'timeout' | 'network' | 'aborted',
    readonly phase: Phase,
    message: string,
    readonly errno?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'TransportError';
  }
}

export interface HttpRequest {
  method: string;
  url: string;
  headers: Headers;
  /** Bytes, or a stream made fresh for each send. */
  body?: Uint8Array | AsyncIterable<Uint8Array>;
  signal?: AbortSignal;
}

export interface HttpResponse {
  method: string;
  url: string;
  status: number;
  ok: boolean;
  headers: { get(name: string): string | null };
  body: Readable;
}

/** One agent per client: connections are kept alive between requests and closed by close(). */
export function makeAgents(): { http: http.Agent; https: https.Agent; close(): void } {
  const a = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const b = new https.Agent({ keepAlive: true, maxSockets: 4 });
  return {
    http: a,
    https: b,
    close() {
      a.destroy();
      b.destroy();
    },
  };
}

/** Resolves when the response headers arrive; the body then streams from `body`. */
export function request(
  req: HttpRequest,
  timeouts: Timeouts,
  agents: ReturnType<typeof makeAgents>,
): Promise<HttpResponse> {
  const url = new URL(req.url);
  const secure = url.protocol === 'https:';
  const mod = secure ? https : http;
  return new Promise<HttpResponse>((resolve, reject) => {
    let phase: Phase = 'connect';
    const headers: Record<string, string> = {};
    req.headers.forEach((v, k) => {
      headers[k] = v;
    });
    const signal = req.signal;
    if (signal?.aborted) {
      reject(aborted(signal, phase));
      return;
    }
    const cr = mod.request(url, {
      method: req.method,
      headers,
      agent: secure ? agents.https : agents.http,
      timeout: timeouts.connectMs,
    });
    let response: http.IncomingMessage | undefined;
    const onAbort = (): void => {
      // Once the headers are in, the body stream carries the reason to its reader.
      const why = aborted(signal, phase);
      if (response) response.destroy(why);
      cr.destroy(why);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    const done = (): void => {
      signal?.removeEventListener('abort', onAbort);
    };
    cr.on('socket', (s: Socket) => {
      const connected = (): void => {
        if (phase === 'connect') phase = 'send';
        cr.setTimeout(timeouts.idleMs);
      };
      if (s.connecting) s.once(secure ? 'secureConnect' : 'connect', connected);
      else connected();
    });
    cr.on('timeout', () => {
      const ms = phase === 'connect' ? timeouts.connectMs : timeouts.idleMs;
      cr.destroy(
        new TransportError('timeout', phase, `no ${describe(phase)} within ${seconds(ms)}`),
      );
    });
    cr.on('finish', () => {
      if (phase === 'send' || phase === 'connect') phase = 'headers';
    });
    cr.on('error', (e) => {
      // Once the headers are in, an error belongs to the body stream.
      if (response) response.destroy(asTransport(e, phase));
      else {
        done();
        reject(asTransport(e, phase));
      }
    });
    cr.on('response', (res) => {
      phase = 'body';
      response = res;
      res.once('close', done);
      const status = res.statusCode ?? 0;
      resolve({
        method: req.method,
        url: req.url,
        status,
        ok: status >= 200 && status < 300,
        headers: {
          get(name: string): string | null {
            const v = res.headers[name.toLowerCase()];
            if (v === undefined) return null;
            return Array.isArray(v) ? v.join(', ') : v;
          },
        },
        body: res,
      });
    });
    const body = req.body;
    if (body === undefined) cr.end();
    else if (body instanceof Uint8Array) cr.end(body);
    else {
      const src = Readable.from(body);
      src.on('error', (e) => cr.destroy(e));
      src.pipe(cr);
    }
  });
}

function aborted(signal: AbortSignal | undefined, phase: Phase): Error {
  const reason: unknown = signal?.reason;
  return reason instanceof Error ? reason : new TransportError('aborted', phase, 'aborted');
}

function asTransport(e: unknown, phase: Phase): Error {
  if (e instanceof TransportError) return e;
  // An abort reason (E_INTERRUPTED) passes through as it is.
  if (e instanceof SquashtreeError) return e;
  const code = errnoCode(e);
  return new TransportError('network', phase, errorMessage(e), code, { cause: e });
}

function describe(phase: Phase): string {
  switch (phase) {
    case 'connect':
      return 'connection';
    case 'send':
      return 'progress sending the request';
    case 'headers':
      return 'answer';
    case 'body':
      return 'data';
  }
}

export function seconds(ms: number): string {
  return ms >= 1000 ? `${Math.round(ms / 100) / 10} s` : `${ms} ms`;
}

/** Drain or drop a body nobody reads, so the connection can be reused or is closed. */
export async function discardBody(res: HttpResponse): Promise<void> {
  const b = res.body;
  if (b.readableEnded || b.destroyed) return;
  const len = Number(res.headers.get('content-length') ?? NaN);
  if (!Number.isFinite(len) || len > 64 << 10) {
    b.destroy();
    return;
  }
  await new Promise<void>((resolve) => {
    b.once('end', resolve);
    b.once('error', () => {
      resolve();
    });
    b.once('close', resolve);
    b.resume();
  });
}
