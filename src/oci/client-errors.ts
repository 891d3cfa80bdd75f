/**
 * What the registry client says when a request fails below HTTP (no
 * connection, no answer, a stalled body, an interrupt) or the registry
 * sends something that does not match what was asked for. Each names the
 * registry, the request and the likely fix.
 */
import { SquashtreeError } from '../errors.js';
import { TransportError, seconds, type Timeouts } from './http.js';

const TLS_TRUST = new Set([
  'CERT_HAS_EXPIRED',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

const LONGER = 'SQUASHTREE_REGISTRY_TIMEOUT=SECONDS waits longer';

export function transportFailure(
  e: unknown,
  method: string,
  url: string,
  plainHttp: boolean,
  timeouts: Timeouts,
): SquashtreeError {
  if (e instanceof SquashtreeError) return e;
  const u = new URL(url);
  const host = u.host;
  const what = `${method} ${u.pathname}`;
  if (!(e instanceof TransportError)) {
    return new SquashtreeError('E_OCI', `${what} at ${host} failed: ${String(e)}`, { cause: e });
  }
  if (e.kind === 'aborted') {
    return new SquashtreeError('E_INTERRUPTED', `interrupted during ${what} at ${host}`, {
      hint: 'nothing was applied; run the command again',
    });
  }
  if (e.kind === 'timeout') {
    if (e.phase === 'connect') {
      return new SquashtreeError(
        'E_OCI_TIMEOUT',
        `${host} did not accept a connection within ${seconds(timeouts.connectMs)} (${what})`,
        {
          cause: e,
          hint: `check the registry address and port, and that no firewall drops the packets; ${LONGER}`,
        },
      );
    }
    if (e.phase === 'body') {
      return new SquashtreeError(
        'E_OCI_TIMEOUT',
        `${host} stopped sending the answer to ${what}: nothing arrived for ${seconds(timeouts.idleMs)}`,
        { cause: e, hint: `retrying is safe (a download resumes where it stopped); ${LONGER}` },
      );
    }
    return new SquashtreeError(
      'E_OCI_TIMEOUT',
      `${host} accepted the connection but did not answer ${what} within ${seconds(timeouts.idleMs)}`,
      {
        cause: e,
        hint: `the registry, or a proxy in front of it, is stuck: check that ${plainHttp ? 'http' : 'https'}://${host}/v2/ answers at once and that this is an OCI registry; ${LONGER}`,
      },
    );
  }
  const code = e.errno ?? '';
  if (code === 'ECONNREFUSED') {
    return new SquashtreeError(
      'E_OCI_CONNECT',
      `nothing listens at ${host} (connection refused; ${what})`,
      {
        cause: e,
        hint: 'check the registry address and port, and that the registry runs',
      },
    );
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return new SquashtreeError('E_OCI_CONNECT', `cannot resolve the host name ${u.hostname}`, {
      cause: e,
      hint: 'check the registry name in the reference, and DNS on this machine',
    });
  }
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') {
    return new SquashtreeError('E_OCI_CONNECT', `${host} cannot be reached (${code})`, {
      cause: e,
      hint: 'check the network route to the registry',
    });
  }
  if (TLS_TRUST.has(code)) {
    return new SquashtreeError(
      'E_OCI_CONNECT',
      `the TLS certificate of ${host} is not trusted: ${e.message}`,
      {
        cause: e,
        hint: "install the registry's CA certificate in the system store, or point NODE_EXTRA_CA_CERTS at it",
      },
    );
  }
  if (!plainHttp && (code === 'EPROTO' || code.startsWith('ERR_SSL'))) {
    const why = /wrong version number|packet length too long|unknown protocol/i.exec(e.message);
    return new SquashtreeError('E_OCI', `${host} does not speak https (${why?.[0] ?? code})`, {
      cause: e,
      hint: 'a registry that speaks plain http (on loopback) needs --plain-http (or plain-http = true in the config)',
    });
  }
  return new SquashtreeError(
    'E_OCI',
    `the connection to ${host} broke during ${what}: ${e.message}`,
    {
      cause: e,
      hint: plainHttp
        ? 'retrying is safe; if it repeats, check the registry and its log'
        : 'retrying is safe; a registry that speaks plain http (on loopback) needs --plain-http',
    },
  );
}

export function digestMismatch(what: string, where: string): SquashtreeError {
  return new SquashtreeError(
    'E_OCI_DIGEST',
    `${what} from ${where} does not match its digest or size: it was changed in the registry or on the way`,
    {
      hint: 'nothing was applied; if it happens again, the registry holds damaged or tampered data: publish the generation again from the builder',
    },
  );
}

export function protocolError(message: string, stderr?: string): SquashtreeError {
  return new SquashtreeError('E_OCI', message, {
    ...(stderr ? { stderr } : {}),
    hint: 'the registry answered in a way squashtree does not expect; check the address and that it is an OCI distribution registry',
  });
}
