// A proxy's connections to destination pods. How a byte stream to an endpoint is opened is the
// dialer's business: for a waypoint (and a sidecar's outbound side) `hboneDialer` makes an
// HBONE tunnel to the pod's ztunnel (`<pod ip>:15008`, `:authority` = `<pod ip>:<target
// port>`) with the proxy's own certificate, checked against the destination's identity before
// any byte of a request is sent; a sidecar's inbound side dials its own application in plain
// TCP. Over those streams, HTTP/1.1 requests reuse connections through a keep-alive HTTP/1.1
// client per endpoint (http1/client.ts); HTTP/2 requests share one HTTP/2 session per endpoint.
// An endpoint outside the mesh (a ServiceEntry's) is reached by `external` instead.
import type { Clock } from '../core/clock.js';
import type { Duplex } from 'node:stream';
import http2 from 'node:http2';
import type { HbonePool } from '../hbone/index.js';
import type { WorkloadCertificate } from '../identity/workload-certificate.js';
import { formatAuthority } from '../core/ip.js';
import { asHttpTransport } from './http-transport.js';
import { Http1Client } from './http1/client.js';
import type { ExternalTarget } from './egress-connect.js';
import { HBONE_PORT } from '../core/mesh-constants.js';

export interface UpstreamTarget {
  uid: string;
  ip: string;
  port: number;
  /** The identity expected over HBONE; for an external endpoint, a key of its TLS settings. */
  identity: string;
  /** An endpoint outside the mesh (ServiceEntry): plain TCP or originated TLS, not HBONE. */
  external?: ExternalTarget;
  /** Where the HBONE tunnel goes when it is not `ip` (a waypoint replica; `ip:port` is then the :authority). */
  hboneIp?: string;
  /** DestinationRule connectTimeout. */
  connectTimeoutMs?: number;
  /** DestinationRule HTTP/1.1 connection settings. */
  http1?: { maxRequestsPerConnection?: number; idleTimeoutMs?: number };
}

/** Opens a byte stream to an endpoint (rejects when it cannot); the HTTP clients run over it. */
export type UpstreamDialer = (target: UpstreamTarget, headers?: Record<string, string>, signal?: AbortSignal) => Promise<Duplex>;

export interface HboneDialerOptions {
  pool: HbonePool;
  sourceIdentity: string;
  certificate: () => WorkloadCertificate;
  /** The proxy pod's IP (the source of its tunnels). */
  sourceIp?: string;
  connectTimeoutMs: number;
}

/** Streams are HBONE tunnels to the endpoint's ztunnel, its identity checked. */
export function hboneDialer(o: HboneDialerOptions): UpstreamDialer {
  return (target, headers = {}, signal) => o.pool.connect({
    sourceIdentity: o.sourceIdentity,
    certificate: o.certificate,
    destination: { ip: target.hboneIp ?? target.ip, port: HBONE_PORT },
    expectedIdentities: [target.identity],
    authority: formatAuthority(target.ip, target.port),
    headers,
    sourceIp: o.sourceIp,
    connectTimeoutMs: target.connectTimeoutMs ?? o.connectTimeoutMs,
    signal,
  });
}

export interface UpstreamsOptions {
  dial: UpstreamDialer;
  clock: Clock;
  /** Free keep-alive connections per endpoint. */
  maxFreeSockets?: number;
  /** Connects to an endpoint outside the mesh (egress-connect.ts). */
  external?: (target: ExternalTarget, signal?: AbortSignal) => Promise<Duplex>;
}

/** Client and session keys are `<uid>|<ip>:<port>|<identity>`. */
function uidOf(key: string): string {
  return key.slice(0, key.indexOf('|'));
}

/** Idle upstream connections are dropped before a typical server's keep-alive timeout (5 s). */
const IDLE_TIMEOUT_MS = 4_000;


export class Upstreams {
  private readonly clients = new Map<string, Http1Client>();
  private readonly sessions = new Map<string, Promise<http2.ClientHttp2Session>>();

  constructor(private readonly opts: UpstreamsOptions) {}

  /** HTTP/1.1 upstream connections (tunnels) opened so far. */
  get tunnelsMade(): number {
    let n = 0;
    for (const c of this.clients.values()) n += c.connectionsMade;
    return n;
  }

  /** A raw stream to the endpoint (TCP passthrough, and the transport of the HTTP clients below). */
  tunnel(target: UpstreamTarget, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<Duplex> {
    if (target.external) {
      if (!this.opts.external) return Promise.reject(Object.assign(new Error('this proxy does not connect outside the mesh'), { code: 'EGRESS_UNSUPPORTED' }));
      return this.opts.external(target.external, signal);
    }
    return this.opts.dial(target, headers, signal);
  }

  /** The keep-alive HTTP/1.1 client whose connections are tunnels to `target`. */
  http1(target: UpstreamTarget): Http1Client {
    const key = `${target.uid}|${target.ip}:${target.port}|${target.identity}${target.http1 ? `|${target.http1.maxRequestsPerConnection ?? 0}/${target.http1.idleTimeoutMs ?? 0}` : ''}`;
    let client = this.clients.get(key);
    if (!client) {
      client = new Http1Client({ open: () => this.tunnel(target), clock: this.opts.clock, maxIdle: this.opts.maxFreeSockets ?? 64, idleTimeoutMs: target.http1?.idleTimeoutMs ?? IDLE_TIMEOUT_MS, maxRequestsPerConnection: target.http1?.maxRequestsPerConnection });
      this.clients.set(key, client);
    }
    return client;
  }

  /** One HTTP/2 session per endpoint over one tunnel, made again when it closes. */
  async h2Session(target: UpstreamTarget): Promise<http2.ClientHttp2Session> {
    const key = `${target.uid}|${target.ip}:${target.port}|${target.identity}`;
    let p = this.sessions.get(key);
    if (!p) {
      p = this.tunnel(target).then((stream) => {
        const session = http2.connect(`http://${formatAuthority(target.ip, target.port)}`, { createConnection: () => asHttpTransport(stream) as never });
        const forget = (): void => { if (this.sessions.get(key) === p) this.sessions.delete(key); };
        session.once('close', forget);
        session.once('error', forget);
        session.once('goaway', forget);
        return session;
      });
      p.catch(() => { if (this.sessions.get(key) === p) this.sessions.delete(key); });
      this.sessions.set(key, p);
    }
    return p;
  }

  /**
   * Forgets the endpoints that left (`keep(uid)` false): their idle connections close now, an
   * HTTP/2 session closes once its streams finish, requests in flight complete.
   */
  prune(keep: (uid: string) => boolean): void {
    for (const [key, c] of this.clients) {
      if (keep(uidOf(key))) continue;
      c.close();
      this.clients.delete(key);
    }
    for (const [key, p] of this.sessions) {
      if (keep(uidOf(key))) continue;
      this.sessions.delete(key);
      p.then((s) => s.close(), () => {});
    }
  }

  /** Endpoints with an HTTP/1.1 client or an HTTP/2 session (for tests and debugging). */
  get endpointCount(): number {
    return new Set([...this.clients.keys(), ...this.sessions.keys()].map(uidOf)).size;
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
    for (const p of this.sessions.values()) p.then((s) => s.destroy(), () => {});
    this.sessions.clear();
  }
}
