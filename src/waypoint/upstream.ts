// The waypoint's connections to destination pods: every one is an HBONE tunnel to the pod's
// ztunnel (`<pod ip>:15008`, `:authority` = `<pod ip>:<target port>`), made with the
// waypoint's own certificate and checked against the destination's identity before any
// byte of a request is sent. HTTP/1.1 requests reuse tunnels through a keep-alive agent per
// endpoint; HTTP/2 requests share one HTTP/2 session per endpoint over one tunnel.
import type { Duplex } from 'node:stream';
import http from 'node:http';
import http2 from 'node:http2';
import type { HbonePool } from '../hbone/index.js';
import type { WorkloadCertificate } from '../identity/workload-certificate.js';
import { formatAuthority } from '../core/ip.js';
import { asHttpTransport } from './http-transport.js';

export interface UpstreamTarget {
  uid: string;
  ip: string;
  port: number;
  identity: string;
}

export interface UpstreamsOptions {
  pool: HbonePool;
  sourceIdentity: string;
  certificate: () => WorkloadCertificate;
  /** The waypoint pod's IP (the source of its tunnels). */
  sourceIp?: string;
  connectTimeoutMs: number;
  /** Free keep-alive connections per endpoint. */
  maxFreeSockets?: number;
}

const HBONE_PORT = 15008;


export class Upstreams {
  private readonly agents = new Map<string, http.Agent>();
  /** HTTP/1.1 upstream connections (tunnels) opened so far. */
  tunnelsMade = 0;
  private readonly sessions = new Map<string, Promise<http2.ClientHttp2Session>>();

  constructor(private readonly opts: UpstreamsOptions) {}

  /** A raw tunnel (TCP passthrough, and the transport of the HTTP clients below). */
  tunnel(target: UpstreamTarget, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<Duplex> {
    return this.opts.pool.connect({
      sourceIdentity: this.opts.sourceIdentity,
      certificate: this.opts.certificate,
      destination: { ip: target.ip, port: HBONE_PORT },
      expectedIdentities: [target.identity],
      authority: formatAuthority(target.ip, target.port),
      headers,
      sourceIp: this.opts.sourceIp,
      connectTimeoutMs: this.opts.connectTimeoutMs,
      signal,
    });
  }

  /** A keep-alive agent whose connections are tunnels to `target`. */
  http1Agent(target: UpstreamTarget): http.Agent {
    const key = `${target.uid}|${target.ip}:${target.port}|${target.identity}`;
    let agent = this.agents.get(key);
    if (!agent) {
      // Idle upstream connections are dropped before a typical server's keep-alive timeout (5 s).
      agent = new http.Agent({ keepAlive: true, maxFreeSockets: this.opts.maxFreeSockets ?? 64, scheduling: 'lifo', timeout: 4_000 });
      const tunnel = (cb: (err: Error | null, s?: Duplex) => void): void => {
        this.tunnelsMade++;
        this.tunnel(target).then((s) => cb(null, asHttpTransport(s)), (e: unknown) => cb(e instanceof Error ? e : new Error(String(e))));
      };
      // Node's Agent accepts an asynchronous createConnection (callback form).
      (agent as unknown as { createConnection: (o: unknown, cb: (err: Error | null, s?: Duplex) => void) => undefined }).createConnection = (_o, cb) => {
        tunnel(cb);
        return undefined;
      };
      this.agents.set(key, agent);
    }
    return agent;
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

  close(): void {
    for (const a of this.agents.values()) a.destroy();
    this.agents.clear();
    for (const p of this.sessions.values()) p.then((s) => s.destroy(), () => {});
    this.sessions.clear();
  }
}
