// The HBONE client: a pool of mutual-TLS HTTP/2 connections, each carrying many CONNECT
// tunnels.
//
// Invariants (when a connection is opened, shared and closed):
// - Connections are keyed by poolKey() (source identity, sorted expected identities,
//   destination ip:port, source ip). A tunnel only ever rides a connection of its own key.
// - A tunnel takes a slot on the oldest connection of its key that is connecting or ready and
//   has fewer than maxStreams slots taken; otherwise a new connection is opened. maxStreams is
//   min(maxStreamsPerConnection, the server's SETTINGS_MAX_CONCURRENT_STREAMS once known).
//   Tunnels that arrive while a connection is still handshaking wait for it, so one handshake
//   serves them all.
// - The server's identity is checked inside the TLS handshake (checkServerIdentity): its one
//   SPIFFE URI SAN must be in expectedIdentities, so no application byte (not even the HTTP/2
//   preface) is sent to a wrong peer. The chain must verify against the source's trust bundle.
// - A connection leaves the pool (no new tunnels) when it receives GOAWAY, fails, stops
//   answering PINGs (pingTimeoutMs), or has had no tunnel for idleTimeoutMs (then it is closed
//   with GOAWAY). Tunnels that were refused by it before any response (REFUSED_STREAM, e.g.
//   above its stream limit or after its GOAWAY) are retried on another connection.
// - connect() resolves only after a 200; every other outcome rejects with an AmbitError:
//   AMBIT_ERR_HBONE with details.status for a non-200 answer, AMBIT_ERR_TLS / AMBIT_ERR_IDENTITY
//   for handshake failures, AMBIT_ERR_CONNECT for TCP failures, AMBIT_ERR_TIMEOUT for
//   connectTimeoutMs. A failed or refused tunnel never affects the other tunnels of its
//   connection.
// - Every stream and session carries an 'error' listener from creation on, so an unobserved
//   tunnel error never crashes the process.
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { delay, systemClock, type Clock, type TimerHandle } from '../core/clock.js';
import { AmbitError, describeError } from '../core/errors.js';
import { formatAuthority } from '../core/ip.js';
import type { Logger, Tracer } from '../core/logger.js';
import type { WorkloadCertificate } from '../identity/workload-certificate.js';
import type { TunnelHeaders } from './connect-request.js';
import { SessionKeepalive } from './keepalive.js';
import { checkServerSan } from './peer-check.js';
import { poolKey } from './pool-key.js';
import { resetHttp2Stream } from './relay.js';
import {
  CLIENT_MAX_STREAMS, CONNECT_TIMEOUT_MS, CONNECTION_WINDOW_BYTES, HBONE_ALPN, IDLE_TIMEOUT_MS, MAX_SESSION_MEMORY_MB,
  PING_INTERVAL_MS, PING_TIMEOUT_MS, clientSecureContext, http2Settings,
} from './wire.js';

export interface HboneConnectOptions {
  sourceIdentity: string;
  /** The certificate of the source (called when a new connection is opened). */
  certificate: () => WorkloadCertificate;
  /** Usually port 15008 of the destination pod or waypoint. */
  destination: { ip: string; port: number };
  /** The server's URI SAN must be one of these; checked before any application byte. */
  expectedIdentities: string[];
  /** What to put in :authority (ip:port or [v6]:port). */
  authority: string;
  headers?: TunnelHeaders;
  /** Local address to bind (part of the pool key). */
  sourceIp?: string;
  /** Deadline for the whole connect (TCP, TLS, CONNECT answered); default 10 s. */
  connectTimeoutMs?: number;
  /** Cancels the connect: an AbortSignal, or closeSignal(socket) (cheaper, for a client that leaves). */
  signal?: CancelSignal;
}

/** What connect() needs of a cancellation signal; AbortSignal has it. */
export interface CancelSignal {
  readonly aborted: boolean;
  readonly reason?: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/**
 * A CancelSignal that fires when `socket` closes: no AbortController and one 'close'
 * listener for the connect's duration (a captured client that leaves cancels its tunnel).
 */
export function closeSignal(socket: { readonly destroyed: boolean; once(event: 'close', fn: () => void): unknown; off(event: 'close', fn: () => void): unknown }): CancelSignal {
  return {
    get aborted() { return socket.destroyed; },
    reason: undefined,
    addEventListener: (_type, listener) => { socket.once('close', listener); },
    removeEventListener: (_type, listener) => { socket.off('close', listener); },
  };
}

export type CreateSocket = (destination: { ip: string; port: number }, sourceIp?: string) => net.Socket;

export interface HbonePoolOptions {
  logger: Logger;
  /** Default net.connect; the ztunnel passes one that connects from inside a pod's network namespace. */
  createSocket?: CreateSocket;
  /** Default 100. */
  maxStreamsPerConnection?: number;
  /** Default 5 minutes. */
  idleTimeoutMs?: number;
  /** Default 10 s; 0 disables keepalive pings. */
  pingIntervalMs?: number;
  /** Default 20 s. */
  pingTimeoutMs?: number;
  clock?: Clock;
}

export interface HbonePoolStats {
  /** Connections with an HTTP/2 session (ready or draining). */
  connections: number;
  /** Connections still in TCP connect or TLS handshake. */
  connecting: number;
  /** Open tunnels (streams). */
  streams: number;
  /** Client TLS handshakes completed since start. */
  handshakes: number;
  /** connect() calls that resolved / rejected since start. */
  tunnelsOpened: number;
  tunnelsFailed: number;
  /** Connections that failed to establish since start. */
  connectFailures: number;
}

type ConnState = 'connecting' | 'ready' | 'draining' | 'closed';

interface ConnectionWaiter {
  onReady(session: http2.ClientHttp2Session): void;
  onFailed(error: AmbitError): void;
}

function ignoreError(): void {
  // Stream errors are reported through 'close' (rstCode) and the connect() promise.
}

const MAX_ATTEMPTS = 3;

class PooledConnection {
  state: ConnState = 'connecting';
  session: http2.ClientHttp2Session | undefined;
  reserved = 0;
  maxStreams: number;
  waiters: ConnectionWaiter[] = [];
  idleTimer: TimerHandle | undefined;
  keepalive: SessionKeepalive | undefined;
  failure: AmbitError | undefined;

  constructor(readonly id: number, readonly key: string, readonly destination: string, maxStreams: number) {
    this.maxStreams = maxStreams;
  }

  available(): boolean {
    return (this.state === 'connecting' || this.state === 'ready') && this.reserved < this.maxStreams;
  }
}

export class HbonePool {
  private readonly logger: Logger;
  private readonly trace: Tracer;
  /** @internal */
  readonly clock: Clock;
  private readonly createSocket: CreateSocket;
  private readonly maxStreams: number;
  private readonly idleTimeoutMs: number;
  private readonly pingIntervalMs: number;
  private readonly pingTimeoutMs: number;
  private readonly byKey = new Map<string, PooledConnection[]>();
  private readonly all = new Set<PooledConnection>();
  private nextId = 0;
  /** @internal */
  closed = false;
  private streamCount = 0;
  private handshakeCount = 0;
  private tunnelsOpened = 0;
  private tunnelsFailed = 0;
  private connectFailures = 0;

  constructor(opts: HbonePoolOptions) {
    this.logger = opts.logger;
    this.trace = opts.logger.tracer('pool');
    this.clock = opts.clock ?? systemClock;
    this.createSocket = opts.createSocket ?? defaultCreateSocket;
    this.maxStreams = opts.maxStreamsPerConnection ?? CLIENT_MAX_STREAMS;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? IDLE_TIMEOUT_MS;
    this.pingIntervalMs = opts.pingIntervalMs ?? PING_INTERVAL_MS;
    this.pingTimeoutMs = opts.pingTimeoutMs ?? PING_TIMEOUT_MS;
    if (!(this.maxStreams >= 1)) throw new AmbitError('AMBIT_ERR_USAGE', `maxStreamsPerConnection must be at least 1, got ${this.maxStreams}`);
  }

  /** Opens a tunnel; resolves after the server's 200 with the tunnel as a Duplex. */
  connect(opts: HboneConnectOptions): Promise<Duplex> {
    return new Promise<Duplex>((resolve, reject) => {
      if (this.closed) {
        reject(new AmbitError('AMBIT_ERR_HBONE', 'the HBONE pool is closed', { hint: 'the proxy is shutting down' }));
        return;
      }
      if (opts.expectedIdentities.length === 0) {
        reject(new AmbitError('AMBIT_ERR_IDENTITY', `no expected server identity for ${opts.authority}`, {
          hint: 'the destination workload has no known identity; check its service account and the workload API',
        }));
        return;
      }
      new TunnelAttempt(this, poolKey(opts), opts, resolve, reject).start();
    });
  }

  stats(): HbonePoolStats {
    let connections = 0;
    let connecting = 0;
    for (const c of this.all) {
      if (c.state === 'connecting') connecting++;
      else if (c.state !== 'closed') connections++;
    }
    return {
      connections,
      connecting,
      streams: this.streamCount,
      handshakes: this.handshakeCount,
      tunnelsOpened: this.tunnelsOpened,
      tunnelsFailed: this.tunnelsFailed,
      connectFailures: this.connectFailures,
    };
  }

  /** Refuses new tunnels, sends GOAWAY on every connection, destroys what is left after deadlineMs. */
  async close(deadlineMs = 5000): Promise<void> {
    this.closed = true;
    for (const c of [...this.all]) {
      if (c.state === 'connecting') this.failConnection(c, new AmbitError('AMBIT_ERR_HBONE', 'the HBONE pool is closed'));
      else this.drain(c, true);
    }
    // Real time, not this.clock: a drain deadline is about sockets, not about test time.
    const deadline = Date.now() + deadlineMs;
    while (this.all.size > 0 && Date.now() < deadline) {
      await delay(systemClock, Math.min(20, Math.max(1, deadline - Date.now())));
    }
    this.destroy();
  }

  /** Destroys every connection (and so every tunnel) now. */
  destroy(): void {
    this.closed = true;
    for (const c of [...this.all]) {
      if (c.state === 'connecting') this.failConnection(c, new AmbitError('AMBIT_ERR_HBONE', 'the HBONE pool was destroyed'));
      else c.session?.destroy();
    }
  }

  // ---- used by TunnelAttempt (internal) ----

  /** @internal No new tunnels on c (its session is going away). */
  unusable(c: PooledConnection): void {
    this.drain(c, false);
  }

  /** Reserves a stream slot on a connection of `key`, opening one if none has room. */
  acquire(key: string, opts: HboneConnectOptions): PooledConnection {
    let list = this.byKey.get(key);
    if (list) {
      for (const c of list) {
        if (c.available()) {
          this.reserve(c);
          return c;
        }
      }
    } else {
      list = [];
      this.byKey.set(key, list);
    }
    const c = new PooledConnection(++this.nextId, key, formatAuthority(opts.destination.ip, opts.destination.port), this.maxStreams);
    list.push(c);
    this.all.add(c);
    this.reserve(c);
    this.open(c, opts);
    return c;
  }

  reserve(c: PooledConnection): void {
    c.reserved++;
    if (c.idleTimer) {
      c.idleTimer.cancel();
      c.idleTimer = undefined;
    }
  }

  release(c: PooledConnection): void {
    c.reserved--;
    if (c.reserved === 0 && c.state === 'ready' && this.idleTimeoutMs > 0 && !c.idleTimer) {
      c.idleTimer = this.clock.setTimeout(() => {
        c.idleTimer = undefined;
        if (c.reserved === 0 && c.state === 'ready') {
          if (this.trace.enabled) this.trace.log('closing idle connection', { id: c.id, destination: c.destination });
          this.drain(c, true);
        }
      }, this.idleTimeoutMs);
    }
  }

  streamOpened(c: PooledConnection, stream: http2.ClientHttp2Stream): void {
    this.streamCount++;
    stream.on('error', ignoreError);
    stream.once('close', () => {
      this.streamCount--;
      this.release(c);
    });
  }

  tunnelSettled(ok: boolean): void {
    if (ok) this.tunnelsOpened++;
    else this.tunnelsFailed++;
  }

  // ---- connection lifecycle ----

  private open(c: PooledConnection, opts: HboneConnectOptions): void {
    const dest = c.destination;
    const timeoutMs = opts.connectTimeoutMs ?? CONNECT_TIMEOUT_MS;
    let socket: tls.TLSSocket;
    try {
      const cert = opts.certificate();
      const raw = this.createSocket(opts.destination, opts.sourceIp);
      raw.setNoDelay(true);
      const expected = [...opts.expectedIdentities];
      socket = tls.connect({
        socket: raw,
        secureContext: clientSecureContext(cert),
        ALPNProtocols: [HBONE_ALPN],
        rejectUnauthorized: true,
        // No hostnames in the mesh: the SPIFFE identity is the server's name.
        checkServerIdentity: (_host: string, peer: tls.PeerCertificate) => {
          const problem = checkServerSan(peer.subjectaltname, expected);
          return problem === undefined ? undefined : new AmbitError('AMBIT_ERR_IDENTITY', `${dest}: ${problem}`, {
            hint: 'the workload behind this address is not the one the workload API names; check for a stale endpoint or an address reused by another pod',
            details: { expected },
          });
        },
      });
    } catch (e: unknown) {
      // Fail asynchronously, after acquire() returned to the waiter that opened us.
      queueMicrotask(() => this.failConnection(c, connectError(dest, e)));
      return;
    }
    let settled = false;
    const timer = this.clock.setTimeout(() => {
      if (settled) return;
      settled = true;
      socket.destroy();
      this.failConnection(c, new AmbitError('AMBIT_ERR_TIMEOUT', `HBONE connection to ${dest} not established within ${timeoutMs} ms`, {
        hint: `is a network policy blocking HBONE port ${opts.destination.port}, or is the destination node down?`,
        details: { destination: dest },
      }));
    }, timeoutMs);
    const onError = (e: Error): void => {
      if (settled) return;
      settled = true;
      timer.cancel();
      socket.destroy();
      this.failConnection(c, connectError(dest, e));
    };
    socket.on('error', onError);
    socket.once('close', () => onError(new AmbitError('AMBIT_ERR_CONNECT', `connection to ${dest} closed during the TLS handshake`)));
    socket.once('secureConnect', () => {
      if (settled) return;
      settled = true;
      timer.cancel();
      socket.off('error', onError);
      socket.on('error', ignoreError);
      this.handshakeCount++;
      if (socket.alpnProtocol !== HBONE_ALPN) {
        socket.destroy();
        this.failConnection(c, new AmbitError('AMBIT_ERR_TLS', `${dest} did not negotiate ALPN h2 (got ${String(socket.alpnProtocol)})`, {
          hint: 'the peer on this port is not an HBONE server',
        }));
        return;
      }
      this.startSession(c, socket);
    });
  }

  private startSession(c: PooledConnection, socket: tls.TLSSocket): void {
    const session = http2.connect(`https://${c.destination}`, {
      createConnection: () => socket,
      settings: http2Settings(undefined),
      maxSessionMemory: MAX_SESSION_MEMORY_MB,
      peerMaxConcurrentStreams: this.maxStreams,
    });
    c.session = session;
    c.state = 'ready';
    session.on('error', (e: Error) => {
      if (this.trace.enabled) this.trace.log('connection error', { id: c.id, destination: c.destination, error: e });
    });
    session.on('remoteSettings', (s: http2.Settings) => {
      const serverMax = s.maxConcurrentStreams ?? Number.MAX_SAFE_INTEGER;
      c.maxStreams = Math.max(1, Math.min(this.maxStreams, serverMax));
    });
    session.on('goaway', () => {
      if (this.trace.enabled) this.trace.log('GOAWAY received', { id: c.id, destination: c.destination });
      this.drain(c, false);
    });
    session.once('close', () => this.connectionClosed(c));
    try {
      session.setLocalWindowSize(CONNECTION_WINDOW_BYTES);
    } catch {
      // Destroyed already; 'close' follows.
    }
    c.keepalive = new SessionKeepalive(session, this.clock, this.pingIntervalMs, this.pingTimeoutMs, (silentMs) => {
      this.logger.warn('HBONE peer stopped answering PINGs; dropping the connection', { destination: c.destination, silentMs });
      this.connectionClosed(c);
      session.destroy(new AmbitError('AMBIT_ERR_TIMEOUT', `HBONE connection to ${c.destination} silent for ${silentMs} ms`, {
        hint: 'the destination node or its ztunnel stopped responding',
      }));
    });
    c.keepalive.start();
    if (this.trace.enabled) this.trace.log('connection ready', { id: c.id, destination: c.destination });
    const waiters = c.waiters;
    c.waiters = [];
    for (const w of waiters) w.onReady(session);
    if (c.reserved === 0) {
      // Every waiter gave up meanwhile: start the idle clock.
      c.reserved = 1;
      this.release(c);
    }
  }

  private failConnection(c: PooledConnection, error: AmbitError): void {
    if (c.state === 'closed') return;
    this.connectFailures++;
    c.failure = error;
    this.logger.warn('HBONE connection failed', { destination: c.destination, code: error.code, error: error.message });
    this.removeFromPool(c);
    c.state = 'closed';
    this.all.delete(c);
    const waiters = c.waiters;
    c.waiters = [];
    for (const w of waiters) w.onFailed(error);
  }

  /** No new tunnels on c; optionally close it gracefully (GOAWAY, running tunnels finish). */
  private drain(c: PooledConnection, closeSession: boolean): void {
    if (c.state === 'closed') return;
    this.removeFromPool(c);
    c.state = 'draining';
    if (c.idleTimer) {
      c.idleTimer.cancel();
      c.idleTimer = undefined;
    }
    if (closeSession && c.session && !c.session.closed) c.session.close();
  }

  private removeFromPool(c: PooledConnection): void {
    const list = this.byKey.get(c.key);
    if (!list) return;
    const i = list.indexOf(c);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.byKey.delete(c.key);
  }

  private connectionClosed(c: PooledConnection): void {
    if (c.state === 'closed') return;
    this.removeFromPool(c);
    c.state = 'closed';
    c.keepalive?.stop();
    c.idleTimer?.cancel();
    c.idleTimer = undefined;
    this.all.delete(c);
    if (this.trace.enabled) this.trace.log('connection closed', { id: c.id, destination: c.destination });
  }
}

function defaultCreateSocket(destination: { ip: string; port: number }, sourceIp?: string): net.Socket {
  return net.connect({ host: destination.ip, port: destination.port, localAddress: sourceIp, noDelay: true });
}

function connectError(dest: string, e: unknown): AmbitError {
  if (e instanceof AmbitError) return e;
  const { code, message } = describeError(e);
  if (code.startsWith('ERR_SSL') || code.startsWith('ERR_TLS') || /CERT|VERIFY|SELF_SIGNED|UNABLE_TO/.test(code)) {
    return new AmbitError('AMBIT_ERR_TLS', `TLS handshake with ${dest} failed: ${code}: ${message}`, {
      cause: e,
      hint: /CERT_HAS_EXPIRED|NOT_YET_VALID/.test(code)
        ? 'a certificate is outside its validity window; check certificate rotation and the clocks'
        : 'both sides must hold certificates from the same mesh root; check the trust bundle',
      details: { tlsCode: code },
    });
  }
  return new AmbitError('AMBIT_ERR_CONNECT', `cannot connect to ${dest}: ${code}: ${message}`, {
    cause: e,
    hint: code === 'ECONNREFUSED' ? 'nothing listens on the HBONE port there; is the destination ztunnel running?' : undefined,
    details: { errno: code },
  });
}

function statusError(authority: string, dest: string, status: number): AmbitError {
  const hints: Record<number, string> = {
    400: 'the destination does not serve this address; the workload may have moved',
    401: 'an authorization policy at the destination denied the connection',
    403: 'an authorization policy at the destination denied the connection',
    503: 'the destination could not reach the target; is the workload listening on that port?',
  };
  return new AmbitError('AMBIT_ERR_HBONE', `HBONE CONNECT to ${authority} via ${dest} answered ${status}`, {
    hint: hints[status],
    details: { status, authority, destination: dest },
  });
}

/** One connect() call: reserve a slot, wait for the connection, open the stream, await the answer. */
class TunnelAttempt implements ConnectionWaiter {
  private settled = false;
  private attempts = 0;
  private timer: TimerHandle | undefined;
  private conn: PooledConnection | undefined;
  private waiting = false;
  private stream: http2.ClientHttp2Stream | undefined;
  private streamError: Error | undefined;
  private readonly onAbort = (): void => {
    this.cancelStream();
    this.fail(new AmbitError('AMBIT_ERR_HBONE', `HBONE connect to ${this.opts.authority} was cancelled`, {
      cause: this.opts.signal?.reason, details: { aborted: true },
    }));
  };

  constructor(
    private readonly pool: HbonePool,
    private readonly key: string,
    private readonly opts: HboneConnectOptions,
    private readonly resolve: (d: Duplex) => void,
    private readonly reject: (e: AmbitError) => void,
  ) {}

  start(): void {
    const { signal } = this.opts;
    if (signal?.aborted) {
      this.onAbort();
      return;
    }
    signal?.addEventListener('abort', this.onAbort, { once: true });
    const timeoutMs = this.opts.connectTimeoutMs ?? CONNECT_TIMEOUT_MS;
    this.timer = this.pool.clock.setTimeout(() => {
      this.timer = undefined;
      this.cancelStream();
      this.fail(new AmbitError('AMBIT_ERR_TIMEOUT', `HBONE connect to ${this.opts.authority} via ${formatAuthority(this.opts.destination.ip, this.opts.destination.port)} timed out after ${timeoutMs} ms`, {
        hint: `is a network policy blocking HBONE port ${this.opts.destination.port}, or is the destination slow to reach ${this.opts.authority}?`,
      }));
    }, timeoutMs);
    this.attempt();
  }

  private attempt(): void {
    this.attempts++;
    const c = this.pool.acquire(this.key, this.opts);
    this.conn = c;
    if (c.state === 'ready' && c.session) {
      this.onReady(c.session);
    } else {
      this.waiting = true;
      c.waiters.push(this);
    }
  }

  onReady(session: http2.ClientHttp2Session): void {
    this.waiting = false;
    const c = this.conn as PooledConnection;
    if (this.settled) {
      this.pool.release(c);
      return;
    }
    const headers: http2.OutgoingHttpHeaders = { ':method': 'CONNECT', ':authority': this.opts.authority };
    const h = this.opts.headers;
    if (h) {
      if (h.baggage !== undefined) headers.baggage = h.baggage;
      if (h.forwarded !== undefined) headers.forwarded = h.forwarded;
      if (h.traceparent !== undefined) headers.traceparent = h.traceparent;
    }
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.request(headers, { endStream: false });
    } catch (e: unknown) {
      this.pool.release(c);
      // The session went away between ready and now (GOAWAY, destroy): try another one.
      this.pool.unusable(c);
      if (this.attempts < MAX_ATTEMPTS && !this.pool.closed) {
        this.attempt();
        return;
      }
      this.fail(new AmbitError('AMBIT_ERR_HBONE', `cannot open an HBONE stream to ${c.destination}: ${describeError(e).message}`, { cause: e }));
      return;
    }
    this.stream = stream;
    this.pool.streamOpened(c, stream);
    stream.once('error', (e: Error) => { this.streamError ??= e; });
    stream.once('response', (resHeaders: http2.IncomingHttpHeaders) => this.onResponse(stream, resHeaders));
    stream.once('close', () => this.onCloseBeforeResponse(stream));
  }

  onFailed(error: AmbitError): void {
    this.waiting = false;
    this.fail(error);
  }

  private onResponse(stream: http2.ClientHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    if (this.settled || stream !== this.stream) return;
    const status = Number(headers[':status']);
    if (status === 200) {
      this.succeed(stream);
      return;
    }
    this.stream = undefined;
    resetHttp2Stream(stream, http2.constants.NGHTTP2_CANCEL);
    this.fail(statusError(this.opts.authority, (this.conn as PooledConnection).destination, status));
  }

  private onCloseBeforeResponse(stream: http2.ClientHttp2Stream): void {
    if (this.settled || stream !== this.stream) return;
    this.stream = undefined;
    const code = stream.rstCode ?? 0;
    const c = this.conn as PooledConnection;
    if (code === http2.constants.NGHTTP2_REFUSED_STREAM && this.attempts < MAX_ATTEMPTS) {
      // Not processed by the server (over its limit, or after its GOAWAY): safe to retry.
      this.attempt();
      return;
    }
    const e = this.streamError;
    if (e && /^ERR_SSL|^ERR_TLS|CERT/.test(describeError(e).code)) {
      this.fail(connectError(c.destination, e));
      return;
    }
    const sessionProblem = c.session?.destroyed ? ` (the connection was lost${e ? `: ${e.message}` : ''})` : '';
    this.fail(new AmbitError('AMBIT_ERR_HBONE', `HBONE stream to ${this.opts.authority} via ${c.destination} closed before an answer (RST_STREAM code ${code})${sessionProblem}`, {
      hint: sessionProblem ? 'the destination closed the connection; if right after the handshake, it may not trust this client\'s certificate' : undefined,
      cause: e,
      details: { rstCode: code, destination: c.destination },
    }));
  }

  private cancelStream(): void {
    const s = this.stream;
    this.stream = undefined;
    if (s) resetHttp2Stream(s, http2.constants.NGHTTP2_CANCEL);
  }

  private cleanup(): void {
    this.settled = true;
    this.timer?.cancel();
    this.timer = undefined;
    this.opts.signal?.removeEventListener('abort', this.onAbort);
  }

  private succeed(stream: http2.ClientHttp2Stream): void {
    this.cleanup();
    this.pool.tunnelSettled(true);
    this.resolve(stream);
  }

  private fail(error: AmbitError): void {
    if (this.settled) return;
    this.cleanup();
    if (this.waiting && this.conn) {
      // Give our slot back now rather than when the connection resolves.
      const i = this.conn.waiters.indexOf(this);
      if (i >= 0) {
        this.conn.waiters.splice(i, 1);
        if (this.conn.state !== 'closed') this.pool.release(this.conn);
      }
      this.waiting = false;
    }
    this.pool.tunnelSettled(false);
    this.reject(error);
  }
}
