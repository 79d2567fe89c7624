// The HBONE wire facts, as Istio's ztunnel speaks them, in one place: TLS parameters, HTTP/2 settings and
// the keepalive/idle timings, plus the TLS option builders both ends share.
//
// Invariants:
// - TLS 1.3 only, AES-256-GCM then AES-128-GCM, ECDHE on P-256/P-384, ECDSA or RSA-PSS
//   signatures (FIPS-approved only), ALPN `h2` only, no SNI (the client never sets
//   `servername`), both sides present a certificate.
// - No session resumption: the server sets SSL_OP_NO_TICKET (no stateless tickets; OpenSSL
//   then sends stateful tickets that nothing can redeem, because Node keeps no server-side
//   session cache and we install no resume callback) and the client never offers a session.
// - A SecureContext is built once per WorkloadCertificate object (WeakMap), so a handshake
//   costs no PEM parsing; a rotated certificate is a new object and gets a new context.
import { constants as cryptoConstants } from 'node:crypto';
import * as tls from 'node:tls';
import { APPROVED_GROUPS, APPROVED_SIGALGS } from '../core/crypto-policy.js';
import type { WorkloadCertificate } from '../identity/workload-certificate.js';
import { HBONE_PORT } from '../core/mesh-constants.js';

export { HBONE_PORT };
export const HBONE_ALPN = 'h2';
/** TLS 1.3 suite names; the TLS 1.2 list is empty (TLS 1.2 is never negotiated). */
export const HBONE_CIPHERS = 'TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256';

export const STREAM_WINDOW_BYTES = 4 * 1024 * 1024;
export const CONNECTION_WINDOW_BYTES = 16 * 1024 * 1024;
export const MAX_FRAME_BYTES = 1024 * 1024;
export const CLIENT_MAX_STREAMS = 100;
export const SERVER_MAX_STREAMS = 200;
export const PING_INTERVAL_MS = 10_000;
export const PING_TIMEOUT_MS = 20_000;
export const IDLE_TIMEOUT_MS = 300_000;
export const CONNECT_TIMEOUT_MS = 10_000;
export const HANDSHAKE_TIMEOUT_MS = 10_000;
/** The server closes a session that carried no stream for this long. */
export const SESSION_IDLE_TIMEOUT_MS = 10 * 60_000;
/**
 * nghttp2 memory a session may use before it refuses new streams (ENHANCE_YOUR_CALM), in MB.
 * Node's default (10) is smaller than one connection window (16 MiB) plus the write queues of
 * a full set of streams, which a fast sender fills legitimately.
 */
export const MAX_SESSION_MEMORY_MB = 256;

/** HTTP/2 SETTINGS this side advertises (what the peer may send us). */
export function http2Settings(maxConcurrentStreams?: number): import('node:http2').Settings {
  const s: import('node:http2').Settings = {
    enablePush: false,
    initialWindowSize: STREAM_WINDOW_BYTES,
    maxFrameSize: MAX_FRAME_BYTES,
  };
  if (maxConcurrentStreams !== undefined) s.maxConcurrentStreams = maxConcurrentStreams;
  return s;
}

const BASE_TLS = {
  minVersion: 'TLSv1.3',
  maxVersion: 'TLSv1.3',
  ciphers: HBONE_CIPHERS,
  // FIPS-approved key exchange and signatures only (see core/crypto-policy.ts).
  ecdhCurve: APPROVED_GROUPS,
  sigalgs: APPROVED_SIGALGS,
  secureOptions: cryptoConstants.SSL_OP_NO_TICKET,
} as const satisfies tls.SecureContextOptions;

/** Options for a tls.Server presenting `cert` (also valid for setSecureContext). */
export function serverTlsOptions(cert: WorkloadCertificate): tls.TlsOptions {
  return {
    ...BASE_TLS,
    key: cert.keyPem,
    cert: cert.certChainPem.join(''),
    ca: cert.rootPem,
    honorCipherOrder: true,
  };
}

const clientContexts = new WeakMap<WorkloadCertificate, tls.SecureContext>();

/** The client SecureContext for a source certificate, built once per certificate object. */
export function clientSecureContext(cert: WorkloadCertificate): tls.SecureContext {
  let ctx = clientContexts.get(cert);
  if (!ctx) {
    ctx = tls.createSecureContext({ ...BASE_TLS, key: cert.keyPem, cert: cert.certChainPem.join(''), ca: cert.rootPem });
    clientContexts.set(cert, ctx);
  }
  return ctx;
}
