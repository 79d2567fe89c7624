// The HBONE listener: mutual TLS, then HTTP/2, then one CONNECT per tunnel, handed to the
// owner (the ztunnel) to decide.
//
// Invariants:
// - TLS: the certificate is asked for on every accepted connection (certificate()), and the
//   secure context is rebuilt only when a different certificate object comes back, so
//   rotation takes effect on the next handshake at no per-handshake cost.
// - A connection becomes an HTTP/2 session only after checkClientPeer() accepts the client
//   (certificate present and chained to the mesh root, ALPN h2, one SPIFFE URI SAN in our
//   trust domain). Every refusal (TLS failure, untrusted or foreign client, bad method, bad
//   authority) calls onRefused once and is logged; the refused connection or stream never
//   reaches onRequest.
// - A request reaches onRequest only with a parsed ip:port target. It is decided once:
//   accept() answers 200 and returns the stream, reject() answers the status with an empty
//   body and then RST_STREAM(NO_ERROR) so the client stops sending. Refusing or failing one
//   stream never touches the other streams of its connection.
// - Every stream and session carries an 'error' listener from the moment it exists, so an
//   unobserved stream error can never crash the process (the owner's listeners still run).
// - `cancelled` turns true when the client cancels (RST_STREAM or connection loss) before
//   accept() or reject(); after a decision it never changes. It is read from the stream's
//   state, so a tunnel costs no controller or listener for it.
// - close(deadlineMs): stop accepting (attached servers are closed too: they were handed
//   over), send GOAWAY on every session so running tunnels finish, then destroy whatever is
//   left at the deadline.
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { delay, systemClock, type Clock, type TimerHandle } from '../core/clock.js';
import { AmbitError, describeError } from '../core/errors.js';
import type { Logger, Tracer } from '../core/logger.js';
import type { WorkloadCertificate } from '../identity/workload-certificate.js';
import { parseConnectRequest, type TunnelHeaders } from './connect-request.js';
import { SessionKeepalive } from './keepalive.js';
import { HboneAdmission, type AdmissionTicket } from './admission.js';
import { checkClientPeer, type PeerRefusalKind } from './peer-check.js';
import { LogLimiter } from '../core/log-limiter.js';
import {
  CONNECTION_WINDOW_BYTES, HANDSHAKE_TIMEOUT_MS, HBONE_ALPN, MAX_SESSION_MEMORY_MB, PING_INTERVAL_MS, PING_TIMEOUT_MS,
  SERVER_MAX_STREAMS, SESSION_IDLE_TIMEOUT_MS, http2Settings, serverTlsOptions,
} from './wire.js';

export interface HboneRequest {
  /** The raw :authority. */
  authority: string;
  /** Parsed from :authority (only valid ones reach the handler). */
  target: { ip: string; port: number };
  /** spiffe://... of the client certificate (always present: mTLS). */
  peerIdentity: string;
  /** Remote address of the TLS connection. */
  peerAddress: { ip: string; port: number };
  headers: TunnelHeaders;
  /** Respond 200 (only call once the upstream is connected) and get the tunnel as a Duplex. */
  accept(responseHeaders?: Record<string, string>): Duplex;
  /** Refuse with 400/401/403/503 etc.; `reason` is logged, never sent in detail. */
  reject(status: number, reason: string): void;
  /** The client cancelled (RST_STREAM or connection loss) before a decision was made. */
  readonly cancelled: boolean;
}

/** Why a connection or stream was refused: one of a fixed set (metric labels, log fields). */
export type HboneRefusalKind = PeerRefusalKind | 'tls' | 'limit' | 'no_server_certificate' | 'method' | 'authority' | 'closing';

export interface HboneRefusal {
  kind: HboneRefusalKind;
  reason: string;
  status?: number;
  peerIdentity?: string;
  /** `ip:port` of the TLS connection. */
  peerAddress: string;
}

export interface HboneServerOptions {
  /** The certificate presented by this listener (called per handshake, so rotation works). */
  certificate: () => WorkloadCertificate;
  trustDomain: string;
  /** The handler decides, asynchronously, by calling accept() or reject(). */
  onRequest(req: HboneRequest): void;
  logger: Logger;
  /** For counting: bad method, bad authority, TLS failures, wrong trust domain. */
  onRefused?(event: HboneRefusal): void;
  /** Default 10 s; 0 disables keepalive pings from this side. */
  pingIntervalMs?: number;
  /** Default 20 s: a PING unanswered this long drops the connection. */
  pingTimeoutMs?: number;
  /** TLS handshake deadline, default 10 s. */
  handshakeTimeoutMs?: number;
  /** A session without a stream for this long is closed (GOAWAY); default 10 min, 0 = never. */
  sessionIdleTimeoutMs?: number;
  /** Bounds on pending handshakes and sessions, shared by every listener of a process. */
  admission?: HboneAdmission;
  clock?: Clock;
}

export interface HboneServerStats {
  /** Open HTTP/2 connections (after a successful handshake and peer check). */
  connections: number;
  /** Open streams. */
  streams: number;
  /** TLS handshakes completed since start (including those refused by the peer check). */
  handshakes: number;
  /** Refusals reported through onRefused since start. */
  refused: number;
  /** Streams opened since start. */
  streamsTotal: number;
}

interface SessionInfo {
  peerIdentity: string;
  peerAddress: { ip: string; port: number };
}

function ignoreError(): void {
  // Errors are handled through 'close' (rstCode, destroyed); see the invariants.
}

function formatAddress(ip: string | undefined, port: number | undefined): string {
  if (!ip) return 'unknown';
  return net.isIPv6(ip) ? `[${ip}]:${port ?? 0}` : `${ip}:${port ?? 0}`;
}

export class HboneServer {
  private readonly tlsServer: tls.Server;
  private readonly logger: Logger;
  private readonly trace: Tracer;
  private readonly clock: Clock;
  private currentCert: WorkloadCertificate | undefined;
  private readonly netServers = new Set<net.Server>();
  private readonly rawSockets = new Set<net.Socket>();
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private streamCount = 0;
  private streamsTotal = 0;
  private handshakeCount = 0;
  private refusedCount = 0;
  private closing = false;
  private readonly admission: HboneAdmission;
  /** Tickets of connections still in their handshake, by `ip:port`. */
  private readonly tickets = new Map<string, AdmissionTicket>();
  private readonly refusalLog: LogLimiter;

  private readonly onRawConnection = (raw: net.Socket): void => this.acceptRaw(raw);
  private readonly onStreamClosed = (): void => { this.streamCount--; };

  constructor(private readonly opts: HboneServerOptions) {
    this.logger = opts.logger;
    this.trace = opts.logger.tracer('hbone');
    this.clock = opts.clock ?? systemClock;
    this.admission = opts.admission ?? new HboneAdmission();
    this.refusalLog = new LogLimiter(this.clock);
    if (typeof http2.performServerHandshake !== 'function') {
      throw new AmbitError('AMBIT_ERR_HBONE', 'this Node.js has no http2.performServerHandshake', { hint: 'run Ambit on Node.js 24 (npm run setup installs it)' });
    }
    this.tlsServer = tls.createServer({
      requestCert: true,
      // Verification is checked in secureConnection (checkClientPeer), so that every refusal
      // is seen and counted instead of the socket being destroyed silently.
      rejectUnauthorized: false,
      ALPNProtocols: [HBONE_ALPN],
      handshakeTimeout: opts.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS,
    });
    this.tlsServer.on('secureConnection', (socket: tls.TLSSocket) => this.onSecureConnection(socket));
    this.tlsServer.on('tlsClientError', (e: Error, socket: tls.TLSSocket) => {
      this.refuse({ kind: 'tls', reason: `TLS handshake failed: ${describeError(e).code}: ${e.message}`, peerAddress: formatAddress(socket.remoteAddress, socket.remotePort) });
    });
  }

  /** Take over a listening TCP server's connections (e.g. one created inside a network namespace). */
  attach(server: net.Server): void {
    if (this.closing) throw new AmbitError('AMBIT_ERR_HBONE', 'the HBONE server is closed');
    this.netServers.add(server);
    server.on('connection', this.onRawConnection);
  }

  /** Listen on host:port (port 0 for any) and resolve with the bound address. */
  async listen(host: string, port: number): Promise<AddressInfo> {
    const server = net.createServer({ noDelay: true });
    this.attach(server);
    await new Promise<void>((resolve, reject) => {
      const onError = (e: Error): void => reject(new AmbitError('AMBIT_ERR_HBONE', `cannot listen on ${formatAddress(host, port)}: ${e.message}`, {
        cause: e,
        hint: (e as NodeJS.ErrnoException).code === 'EADDRINUSE' ? `another process holds port ${port}` : undefined,
      }));
      server.once('error', onError);
      server.listen(port, host, () => {
        server.off('error', onError);
        resolve();
      });
    });
    server.on('error', (e: Error) => this.logger.error('hbone listener error', { error: e }));
    return server.address() as AddressInfo;
  }

  stats(): HboneServerStats {
    return {
      connections: this.sessions.size,
      streams: this.streamCount,
      handshakes: this.handshakeCount,
      refused: this.refusedCount,
      streamsTotal: this.streamsTotal,
    };
  }

  /** Stop accepting, GOAWAY every connection, and destroy what is left after deadlineMs. */
  async close(deadlineMs = 5000): Promise<void> {
    this.closing = true;
    for (const s of this.netServers) {
      s.off('connection', this.onRawConnection);
      s.close();
    }
    this.netServers.clear();
    for (const session of this.sessions) {
      if (!session.closed) session.close();
    }
    // Real time, not this.clock: a drain deadline is about sockets, not about test time.
    const deadline = Date.now() + deadlineMs;
    while (this.sessions.size > 0 && Date.now() < deadline) {
      await delay(systemClock, Math.min(20, Math.max(1, deadline - Date.now())));
    }
    this.destroy();
  }

  /** Tear everything down now. */
  destroy(): void {
    this.closing = true;
    for (const s of this.netServers) {
      s.off('connection', this.onRawConnection);
      s.close();
    }
    this.netServers.clear();
    for (const session of this.sessions) session.destroy();
    for (const raw of this.rawSockets) raw.destroy();
  }

  private acceptRaw(raw: net.Socket): void {
    if (this.closing) {
      raw.destroy();
      return;
    }
    const peerAddress = formatAddress(raw.remoteAddress, raw.remotePort);
    const ticket = this.admission.admit(raw.remoteAddress ?? '');
    if (typeof ticket === 'string') {
      raw.destroy();
      this.refuse({ kind: 'limit', reason: `too many connections (${ticket.replace(/_/g, ' ')})`, peerAddress });
      return;
    }
    raw.setNoDelay(true);
    this.rawSockets.add(raw);
    this.tickets.set(peerAddress, ticket);
    raw.once('close', () => {
      this.rawSockets.delete(raw);
      this.tickets.delete(peerAddress);
      ticket.release();
    });
    try {
      const cert = this.opts.certificate();
      if (cert !== this.currentCert) {
        this.tlsServer.setSecureContext(serverTlsOptions(cert));
        this.currentCert = cert;
      }
    } catch (e: unknown) {
      this.refuse({ kind: 'no_server_certificate', reason: `no certificate to present: ${describeError(e).message}`, peerAddress });
      raw.destroy();
      return;
    }
    this.tlsServer.emit('connection', raw);
  }

  private onSecureConnection(socket: tls.TLSSocket): void {
    this.handshakeCount++;
    const peerAddress = { ip: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 };
    const peerCert = socket.getPeerCertificate();
    const verdict = checkClientPeer({
      authorized: socket.authorized,
      authorizationError: socket.authorizationError === undefined || socket.authorizationError === null ? undefined : String(socket.authorizationError),
      hasCertificate: peerCert !== null && peerCert !== undefined && Object.keys(peerCert).length > 0,
      subjectAltName: peerCert?.subjectaltname,
      alpnProtocol: socket.alpnProtocol,
    }, this.opts.trustDomain);
    if (!verdict.ok) {
      this.refuse({ kind: verdict.kind, reason: verdict.reason, peerIdentity: verdict.identity, peerAddress: formatAddress(peerAddress.ip, peerAddress.port) });
      socket.destroy();
      return;
    }
    if (this.closing) {
      socket.destroy();
      return;
    }
    const key = formatAddress(peerAddress.ip, peerAddress.port);
    const over = this.tickets.get(key)?.established();
    this.tickets.delete(key);
    if (over) {
      this.refuse({ kind: 'limit', reason: `too many sessions (${over.replace(/_/g, ' ')})`, peerIdentity: verdict.identity, peerAddress: key });
      socket.destroy();
      return;
    }
    socket.on('error', ignoreError);
    const session = http2.performServerHandshake(socket, {
      settings: http2Settings(SERVER_MAX_STREAMS),
      maxSessionMemory: MAX_SESSION_MEMORY_MB,
    });
    const info: SessionInfo = { peerIdentity: verdict.identity, peerAddress };
    this.sessions.add(session);
    session.setLocalWindowSize(CONNECTION_WINDOW_BYTES);
    const keepalive = new SessionKeepalive(session, this.clock, this.opts.pingIntervalMs ?? PING_INTERVAL_MS,
      this.opts.pingTimeoutMs ?? PING_TIMEOUT_MS, (silentMs) => {
        this.logger.warn('hbone client stopped answering PINGs; dropping the connection', { peer: info.peerIdentity, peerAddress: formatAddress(peerAddress.ip, peerAddress.port), silentMs });
        session.destroy();
      });
    const idle = new SessionIdle(this.clock, this.opts.sessionIdleTimeoutMs ?? SESSION_IDLE_TIMEOUT_MS, () => {
      if (this.trace.enabled) this.trace.log('idle session closed', { peer: info.peerIdentity });
      session.close();
    });
    session.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => {
      idle.streamOpened();
      stream.once('close', () => idle.streamClosed());
      this.onStream(stream, headers, info);
    });
    session.on('error', (e: Error) => {
      if (this.trace.enabled) this.trace.log('session error', { peer: info.peerIdentity, error: e });
    });
    session.once('close', () => {
      keepalive.stop();
      idle.stop();
      this.sessions.delete(session);
      if (this.trace.enabled) this.trace.log('connection closed', { peer: info.peerIdentity });
    });
    keepalive.start();
    if (this.trace.enabled) this.trace.log('connection accepted', { peer: info.peerIdentity, peerAddress });
  }

  private onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, info: SessionInfo): void {
    stream.on('error', ignoreError);
    this.streamCount++;
    this.streamsTotal++;
    stream.once('close', this.onStreamClosed);
    const verdict = parseConnectRequest(headers);
    if (!verdict.ok) {
      this.refuse({ kind: verdict.reason.startsWith('method') ? 'method' : 'authority', reason: verdict.reason, status: verdict.status, peerIdentity: info.peerIdentity, peerAddress: formatAddress(info.peerAddress.ip, info.peerAddress.port) });
      respondAndClose(stream, verdict.status);
      return;
    }
    const req = new IncomingTunnel(stream, verdict.authority, verdict.target, verdict.headers, info, this.logger);
    const failed = (e: unknown): void => {
      this.logger.error('hbone request handler failed', { error: describeError(e), authority: verdict.authority });
      if (!req.decided) req.reject(500, 'handler failed');
    };
    try {
      // An async handler's rejection is caught too, so it cannot become an unhandled rejection.
      const r = this.opts.onRequest(req) as unknown;
      if (r instanceof Promise) r.catch(failed);
    } catch (e: unknown) {
      failed(e);
    }
  }

  /** Counted always; logged at most once per source address and kind per interval (a flood must not become a log flood). */
  private refuse(event: HboneRefusal): void {
    this.refusedCount++;
    const d = this.refusalLog.allow(`${event.kind}|${event.peerAddress.replace(/:\d+$/, '')}`);
    if (d.log) this.logger.warn('hbone refused', { ...event, ...(d.suppressed ? { alsoRefusedSinceLastLine: d.suppressed } : {}) });
    try {
      this.opts.onRefused?.(event);
    } catch (e: unknown) {
      this.logger.error('onRefused threw', { error: describeError(e) });
    }
  }
}

/** A session's streams: when none is open for `idleMs`, `onIdle` (which closes it). */
class SessionIdle {
  private open = 0;
  private timer: TimerHandle | undefined;

  constructor(private readonly clock: Clock, private readonly idleMs: number, private readonly onIdle: () => void) {
    this.arm();
  }

  streamOpened(): void {
    this.open++;
    this.timer?.cancel();
    this.timer = undefined;
  }

  streamClosed(): void {
    this.open--;
    if (this.open === 0) this.arm();
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }

  private arm(): void {
    if (this.idleMs <= 0) return;
    this.timer?.cancel();
    this.timer = this.clock.setTimeout(() => { this.timer = undefined; if (this.open === 0) this.onIdle(); }, this.idleMs);
  }
}

const RESPONSE_OPTIONS = { sendDate: false } as http2.ServerStreamResponseOptions;
const END_RESPONSE_OPTIONS = { endStream: true, sendDate: false } as http2.ServerStreamResponseOptions;

function respondAndClose(stream: http2.ServerHttp2Stream, status: number): void {
  if (stream.destroyed || stream.closed) return;
  try {
    stream.respond({ ':status': status }, END_RESPONSE_OPTIONS);
    // RFC 9113 8.1: after a complete response the server may ask the client to stop sending.
    stream.close(http2.constants.NGHTTP2_NO_ERROR);
  } catch {
    stream.destroy();
  }
}

class IncomingTunnel implements HboneRequest {
  decided = false;

  constructor(
    private readonly stream: http2.ServerHttp2Stream,
    readonly authority: string,
    readonly target: { ip: string; port: number },
    readonly headers: TunnelHeaders,
    private readonly info: SessionInfo,
    private readonly logger: Logger,
  ) {}

  get peerIdentity(): string {
    return this.info.peerIdentity;
  }

  get peerAddress(): { ip: string; port: number } {
    return this.info.peerAddress;
  }

  get cancelled(): boolean {
    // Node destroys a stream on RST_STREAM or when its session goes; nothing else closes it
    // before we answer.
    return !this.decided && (this.stream.destroyed || this.stream.closed);
  }

  accept(responseHeaders?: Record<string, string>): Duplex {
    this.decide('accept');
    const stream = this.stream;
    // A client that already went away gets its closed stream back: a relay over it ends at once.
    if (!stream.destroyed && !stream.closed) {
      stream.respond(responseHeaders ? { ...responseHeaders, ':status': 200 } : { ':status': 200 }, RESPONSE_OPTIONS);
    }
    return stream;
  }

  reject(status: number, reason: string): void {
    if (!Number.isInteger(status) || status < 300 || status > 599) {
      throw new AmbitError('AMBIT_ERR_INTERNAL', `reject() needs a 3xx-5xx status, got ${status}`);
    }
    this.decide('reject');
    this.logger.info('hbone tunnel rejected', { status, reason, authority: this.authority, peer: this.info.peerIdentity });
    respondAndClose(this.stream, status);
  }

  private decide(what: string): void {
    if (this.decided) {
      throw new AmbitError('AMBIT_ERR_INTERNAL', `HBONE request to ${this.authority} was already decided; ${what}() called again`, {
        hint: 'call accept() or reject() exactly once per request',
      });
    }
    this.decided = true;
  }
}
