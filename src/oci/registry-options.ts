/** How publish and pull reach a registry: the client they make and what they warn about. */
import type { TreeContext } from '../lifecycle/context.js';
import { loadCredentials } from './auth.js';
import { RegistryClient, type ClientOptions } from './client.js';
import type { Timeouts } from './http.js';
import { isLoopback, type Reference } from './reference.js';

export interface RegistryOptions {
  plainHttp?: boolean;
  /** Upload chunk size in bytes (blobs above it go up in PATCH chunks). */
  chunkSize?: number;
  /** Connect and idle timeouts (default: SQUASHTREE_REGISTRY_TIMEOUT, else 30 s and 60 s). */
  timeouts?: Timeouts;
}

export async function makeClient(ref: Reference, opts: RegistryOptions): Promise<RegistryClient> {
  const copts: ClientOptions = {
    plainHttp: opts.plainHttp === true,
    credentials: await loadCredentials(ref.registry),
  };
  if (opts.chunkSize !== undefined) copts.chunkSize = opts.chunkSize;
  if (opts.timeouts) copts.timeouts = opts.timeouts;
  return new RegistryClient(ref, copts);
}

export function warnPlainHttp(ctx: TreeContext, ref: Reference, opts: RegistryOptions): void {
  if (opts.plainHttp && !isLoopback(ref.apiHost)) {
    ctx.reporter.warn(
      `--plain-http to ${ref.apiHost}, which is not this machine: images and credentials travel unencrypted`,
    );
  }
}
