// The egress waypoint's connection to an endpoint outside the mesh: plain TCP, or TLS it
// originates (DestinationRule tls) — never HBONE, since the endpoint is not in the mesh.
// Resolution DNS endpoints are resolved here through the cluster's upstream resolver.
//
// Invariants:
// - No byte of a request leaves before the connection (and, with TLS, the handshake with the
//   server's certificate verified: CA from the Secret or the system roots, then the
//   DestinationRule's subjectAltNames or else the SNI name) is complete.
// - Every failure rejects with an Error whose `code` says where it failed (EGRESS_DNS,
//   EGRESS_TLS_CONFIG, a socket errno, EGRESS_TLS, ETIMEDOUT); the caller maps it to 503.
import type { Clock } from '../core/clock.js';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import type { HostResolver } from '../dns/host-resolver.js';
import type { PodNetwork } from '../dataplane/pod-network.js';
import type { TlsOrigination } from './egress-config.js';

export interface ExternalTarget {
  /** The endpoint's address; absent when it must be resolved from `hostname`. */
  ip?: string;
  hostname?: string;
  port: number;
  tls?: TlsOrigination;
  /** The host the request is for: the SNI name when the rule sets none. */
  host: string;
  alpn?: string[];
}

export interface ExternalConnectDeps {
  network: PodNetwork;
  resolver?: HostResolver;
  timeoutMs: number;
  clock: Clock;
}

function fail(code: string, message: string, cause?: unknown): Error {
  return Object.assign(new Error(message, { cause }), { code });
}

export async function connectExternal(t: ExternalTarget, d: ExternalConnectDeps, signal?: AbortSignal): Promise<Duplex> {
  if (t.tls?.error) throw fail('EGRESS_TLS_CONFIG', t.tls.error);
  let ip = t.ip;
  if (!ip) {
    if (!t.hostname) throw fail('EGRESS_DNS', 'the endpoint has neither an address nor a host name');
    if (!d.resolver) throw fail('EGRESS_DNS', `cannot resolve ${t.hostname}: the waypoint has no DNS upstream (--dns-upstream)`);
    try {
      const addrs = await d.resolver.resolve(t.hostname);
      ip = addrs[Math.floor(Math.random() * addrs.length)]!;
    } catch (e: unknown) {
      throw fail('EGRESS_DNS', `resolving ${t.hostname}: ${e instanceof Error ? e.message : String(e)}`, e);
    }
  }
  const socket = d.network.connect({ ip, port: t.port }, { allowHalfOpen: false });
  await new Promise<void>((resolve, reject) => {
    const timer = d.clock.setTimeout(() => { socket.destroy(); reject(fail('ETIMEDOUT', `connect to ${ip}:${t.port} timed out after ${d.timeoutMs} ms`)); }, d.timeoutMs);
    const onAbort = () => { timer.cancel(); socket.destroy(); reject(fail('ABORTED', 'the request went away')); };
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('error', (e: NodeJS.ErrnoException) => { timer.cancel(); signal?.removeEventListener('abort', onAbort); reject(fail(e.code ?? 'ECONNECT', `connect to ${ip}:${t.port}: ${e.message}`, e)); });
    socket.once('connect', () => { timer.cancel(); signal?.removeEventListener('abort', onAbort); resolve(); });
  });
  if (!t.tls) return socket;
  const o = t.tls;
  const servername = o.sni ?? t.host;
  const secure = tls.connect({
    socket, servername, ca: o.ca, cert: o.cert, key: o.key, ALPNProtocols: t.alpn ?? ['http/1.1'],
    rejectUnauthorized: !o.insecureSkipVerify, minVersion: 'TLSv1.2',
    checkServerIdentity: (hostname, cert) => {
      if (o.subjectAltNames.length === 0) return tls.checkServerIdentity(hostname, cert);
      const sans = (cert.subjectaltname ?? '').split(/,\s*/).map((s) => s.replace(/^(DNS|URI|IP Address):/, ''));
      return o.subjectAltNames.some((want) => sans.includes(want)) ? undefined
        : fail('EGRESS_TLS', `the server's certificate names ${sans.join(', ') || 'nothing'}, none of ${o.subjectAltNames.join(', ')}`);
    },
  });
  await new Promise<void>((resolve, reject) => {
    const timer = d.clock.setTimeout(() => { secure.destroy(); reject(fail('ETIMEDOUT', `TLS handshake with ${servername} (${ip}:${t.port}) timed out`)); }, d.timeoutMs);
    secure.once('error', (e: NodeJS.ErrnoException) => { timer.cancel(); secure.destroy(); reject(fail('EGRESS_TLS', `TLS to ${servername} (${ip}:${t.port}): ${e.message}`, e)); });
    secure.once('secureConnect', () => { timer.cancel(); resolve(); });
  });
  return secure;
}
