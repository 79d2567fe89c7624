// A minimal gRPC client on node:http2, for the proxies' two calls to the control plane (the
// delta ADS stream and the CA's CreateCertificate). The proxies load this instead of grpc-js
// (about 13 MB of resident memory less per proxy); the control plane's server stays on grpc-js.
//
// Invariants:
// - One channel = one target. It holds at most one ClientHttp2Session, opened on the first
//   call and again on the first call after it closed, errored or received GOAWAY. There is no
//   background reconnect and no keepalive: callers retry (the ADS client owns its backoff).
//   The session is unref'ed while no call is active, so an idle channel never keeps the
//   process alive. close() lets active calls finish and refuses new ones.
// - Plaintext (h2c) without `tls`; with `tls`, the server is verified against rootCertPem and
//   tls.serverName (when given) is the SNI, the name checked and the :authority.
// - Messages use gRPC's length-prefixed framing (1 byte flag, 4 bytes big-endian length), never
//   compressed; a compressed or oversized (maxReceiveMessageBytes) message ends the call.
// - Every call ends with exactly one status ({code, details, metadata}), as grpc-js reports it:
//   grpc-status / grpc-message (decodeURI'd) from the trailers, or from the headers of a
//   trailers-only response; otherwise an HTTP status other than 200 maps like grpc-js's
//   (401 UNAUTHENTICATED, 403 PERMISSION_DENIED, 404 UNIMPLEMENTED, 429/502/503/504
//   UNAVAILABLE, 400 INTERNAL, others UNKNOWN); a failed or dropped connection is
//   UNAVAILABLE; RST_STREAM codes map like grpc-js's. A call's status is emitted after every
//   message it received. A local deadline ends the call with DEADLINE_EXCEEDED and the server
//   is told the deadline in `grpc-timeout`.
import { systemClock, type TimerHandle } from '../core/clock.js';
import { EventEmitter } from 'node:events';
import http2 from 'node:http2';
import { checkServerIdentity as defaultCheckServerIdentity, type PeerCertificate } from 'node:tls';
import type { ClientTlsOptions, TokenSource } from './credentials.js';

/** gRPC status codes by name (the same numbers as grpc-js's `status`). */
export const GrpcCode = {
  OK: 0, CANCELLED: 1, UNKNOWN: 2, INVALID_ARGUMENT: 3, DEADLINE_EXCEEDED: 4, NOT_FOUND: 5,
  ALREADY_EXISTS: 6, PERMISSION_DENIED: 7, RESOURCE_EXHAUSTED: 8, FAILED_PRECONDITION: 9,
  ABORTED: 10, OUT_OF_RANGE: 11, UNIMPLEMENTED: 12, INTERNAL: 13, UNAVAILABLE: 14,
  DATA_LOSS: 15, UNAUTHENTICATED: 16,
} as const;

const CODE_NAMES = Object.keys(GrpcCode);

/** The status name of a code (`PERMISSION_DENIED`), its number for an unknown code, UNKNOWN for none. */
export function grpcStatusName(code: number | undefined): string {
  if (code === undefined) return 'UNKNOWN';
  return CODE_NAMES[code] ?? String(code);
}

export type GrpcMetadata = Record<string, string | string[]>;

export interface GrpcStatus {
  code: number;
  details: string;
  /** Trailers (or trailers-only headers) other than grpc-status / grpc-message and pseudo-headers. */
  metadata: GrpcMetadata;
}

/** A call that ended with a status other than OK. `message` reads like grpc-js's (`7 PERMISSION_DENIED: ...`). */
export class GrpcCallError extends Error {
  readonly code: number;
  readonly details: string;
  readonly metadata: GrpcMetadata;
  constructor(status: GrpcStatus) {
    super(`${status.code} ${grpcStatusName(status.code)}: ${status.details}`);
    this.name = 'GrpcCallError';
    this.code = status.code;
    this.details = status.details;
    this.metadata = status.metadata;
  }
}

/** `authorization: Bearer <token>` call metadata; the token source is asked on every call. */
export async function bearerMetadata(token: TokenSource | undefined): Promise<Record<string, string>> {
  if (token === undefined) return {};
  const t = typeof token === 'string' ? token : await token();
  return t ? { authorization: `Bearer ${t}` } : {};
}

/** The `grpc-timeout` header value for a timeout: at most 8 digits, in the finest unit that fits. */
export function grpcTimeoutHeader(timeoutMs: number): string {
  const ms = Math.max(0, Math.ceil(timeoutMs));
  if (ms < 1e8) return `${ms}m`;
  const s = Math.ceil(ms / 1000);
  if (s < 1e8) return `${s}S`;
  return `${Math.min(99_999_999, Math.ceil(s / 3600))}H`;
}

/** The status grpc-js derives from an HTTP status other than 200. */
export function httpStatusToGrpc(httpStatus: number): { code: number; details: string } {
  const details = `Received HTTP status code ${httpStatus}`;
  switch (httpStatus) {
    case 400: return { code: GrpcCode.INTERNAL, details };
    case 401: return { code: GrpcCode.UNAUTHENTICATED, details };
    case 403: return { code: GrpcCode.PERMISSION_DENIED, details };
    case 404: return { code: GrpcCode.UNIMPLEMENTED, details };
    case 429: case 502: case 503: case 504: return { code: GrpcCode.UNAVAILABLE, details };
    default: return { code: GrpcCode.UNKNOWN, details };
  }
}

/** The status in a trailers (or trailers-only headers) block, or undefined when it has none. */
export function statusFromTrailers(headers: http2.IncomingHttpHeaders): GrpcStatus | undefined {
  const raw = headers['grpc-status'];
  const value = Array.isArray(raw) ? raw[0] : raw;
  if (value === undefined) return undefined;
  const code = Number(value);
  const rawMessage = headers['grpc-message'];
  const message = (Array.isArray(rawMessage) ? rawMessage[0] : rawMessage) ?? '';
  let details = message;
  try {
    details = decodeURI(message);
  } catch {
    details = message;
  }
  return { code: Number.isInteger(code) ? code : GrpcCode.UNKNOWN, details, metadata: userMetadata(headers) };
}

function userMetadata(headers: http2.IncomingHttpHeaders): GrpcMetadata {
  const md: GrpcMetadata = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || k.startsWith(':') || k === 'grpc-status' || k === 'grpc-message') continue;
    md[k] = typeof v === 'number' ? String(v) : v;
  }
  return md;
}

/** Splits gRPC length-prefixed messages out of DATA chunks. */
export class MessageDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  constructor(private readonly maxMessageBytes: number) {}

  /** The complete messages so far; throws on a compressed or oversized message. */
  push(chunk: Buffer): Buffer[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const out: Buffer[] = [];
    for (;;) {
      if (this.buffered < 5) break;
      const head = this.peek(5);
      if (head[0] !== 0) throw new Error('received a compressed message; this client negotiates no compression');
      const length = head.readUInt32BE(1);
      if (length > this.maxMessageBytes) throw new Error(`Received message larger than max (${length} vs. ${this.maxMessageBytes})`);
      if (this.buffered < 5 + length) break;
      const all = this.take(5 + length);
      out.push(all.subarray(5));
    }
    return out;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length < n) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0]!.subarray(0, n);
  }

  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const rest = all.subarray(n);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    return all.subarray(0, n);
  }
}

/** One message with its 5-byte gRPC prefix. */
export function frameMessage(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

export interface GrpcLiteChannelOptions {
  /** `host:port` (or `[v6]:port`, optionally `dns:` prefixed). */
  address: string;
  /** Absent: plaintext (h2c). */
  tls?: ClientTlsOptions;
  /** The :authority; default tls.serverName, else the address. */
  authority?: string;
  /** Largest message accepted; default 256 MiB (workload API snapshots of a large mesh are big). */
  maxReceiveMessageBytes?: number;
}

export interface GrpcCallEvents {
  /** Response headers of a call the server accepted (not sent for a trailers-only response). */
  metadata: [GrpcMetadata];
  data: [Buffer];
  /** Always, exactly once, last. */
  status: [GrpcStatus];
  /** Before `status` when it is not OK; only emitted when someone listens. */
  error: [GrpcCallError];
}

/** @internal A call's stream and what it knows of its session. */
export interface StreamLink {
  stream: http2.ClientHttp2Stream;
  /** The session had connected (vs. failed before it could). */
  connected(): boolean;
  /** The session is gone (so a stream without status was cut by the connection). */
  sessionDestroyed(): boolean;
}

/** A streaming call: write() framed messages, end() the request side, cancel() the call. */
export class GrpcCall extends EventEmitter<GrpcCallEvents> {
  private stream: http2.ClientHttp2Stream | undefined;
  private finalStatus: GrpcStatus | undefined;
  private received: GrpcStatus | undefined;
  private httpStatus: number | undefined;
  private streamError: Error | undefined;
  private timer: TimerHandle | undefined;
  private done = false;
  /** Messages written before the stream opened; undefined once it did. */
  private pendingWrites: Uint8Array[] | undefined = [];
  private pendingEnd = false;

  /** @internal Started by GrpcLiteChannel. */
  constructor(
    private readonly open: () => StreamLink,
    private readonly maxMessageBytes: number,
    timeoutMs: number | undefined,
    private readonly onDone: () => void,
  ) {
    super();
    if (timeoutMs !== undefined) {
      this.timer = systemClock.setTimeout(() => this.finish({ code: GrpcCode.DEADLINE_EXCEEDED, details: 'Deadline exceeded', metadata: {} }, http2.constants.NGHTTP2_CANCEL), Math.max(0, timeoutMs));
    }
    // Started on the next tick so the caller can attach listeners first.
    process.nextTick(() => this.begin());
  }

  get ended(): boolean {
    return this.done;
  }

  /** Sends one message; before the stream opens (the call starts on the next tick) it is queued. */
  write(message: Uint8Array): void {
    if (this.done) return;
    if (this.pendingWrites) this.pendingWrites.push(message);
    else if (this.stream && !this.stream.closed) this.stream.write(frameMessage(message));
  }

  /** Half-closes the request side (after the queued messages). */
  end(): void {
    if (this.done) return;
    if (this.pendingWrites) this.pendingEnd = true;
    else if (this.stream && !this.stream.closed) this.stream.end();
  }

  cancel(): void {
    this.finish({ code: GrpcCode.CANCELLED, details: 'Cancelled on client', metadata: {} }, http2.constants.NGHTTP2_CANCEL);
  }

  private begin(): void {
    if (this.done) return;
    let opened: ReturnType<typeof this.open>;
    try {
      opened = this.open();
    } catch (e: unknown) {
      this.finish({ code: GrpcCode.UNAVAILABLE, details: e instanceof Error ? e.message : String(e), metadata: {} });
      return;
    }
    const stream = opened.stream;
    this.stream = stream;
    const decoder = new MessageDecoder(this.maxMessageBytes);
    stream.on('response', (headers, flags) => {
      this.httpStatus = Number(headers[':status']);
      if (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) {
        this.received = statusFromTrailers(headers) ?? this.missingStatus(headers);
      } else if (!this.done) {
        this.emit('metadata', userMetadata(headers));
      }
    });
    stream.on('trailers', (headers) => {
      this.received = statusFromTrailers(headers) ?? this.missingStatus(headers);
    });
    stream.on('data', (chunk: Buffer) => {
      if (this.done) return;
      let messages: Buffer[];
      try {
        messages = decoder.push(chunk);
      } catch (e: unknown) {
        const status = this.httpStatus !== undefined && this.httpStatus !== 200
          ? { ...httpStatusToGrpc(this.httpStatus), metadata: {} }
          : { code: GrpcCode.RESOURCE_EXHAUSTED, details: e instanceof Error ? e.message : String(e), metadata: {} };
        this.finish(status, http2.constants.NGHTTP2_CANCEL);
        return;
      }
      for (const m of messages) {
        if (this.done) return;
        this.emit('data', m);
      }
    });
    stream.on('end', () => {
      if (this.received) this.finish(this.received, http2.constants.NGHTTP2_NO_ERROR);
    });
    stream.on('error', (e: Error) => {
      this.streamError = e;
    });
    stream.on('close', () => {
      if (this.received) {
        this.finish(this.received);
        return;
      }
      this.finish(this.closedWithoutStatus(stream.rstCode, opened));
    });
    const queued = this.pendingWrites ?? [];
    this.pendingWrites = undefined;
    for (const m of queued) stream.write(frameMessage(m));
    if (this.pendingEnd) stream.end();
  }

  private missingStatus(headers: http2.IncomingHttpHeaders): GrpcStatus {
    if (this.httpStatus !== undefined && this.httpStatus !== 200) return { ...httpStatusToGrpc(this.httpStatus), metadata: userMetadata(headers) };
    return { code: GrpcCode.UNKNOWN, details: 'No status information received', metadata: userMetadata(headers) };
  }

  private closedWithoutStatus(rstCode: number | undefined, link: StreamLink): GrpcStatus {
    const c = http2.constants;
    const md = {};
    const err = this.streamError;
    const errCode = (err as { code?: unknown } | undefined)?.code;
    // The session failed (refused, TLS, reset, GOAWAY'd away) rather than this stream.
    if (link.sessionDestroyed() || (err && errCode !== 'ERR_HTTP2_STREAM_ERROR')) {
      const why = err?.message ?? 'the connection closed';
      return { code: GrpcCode.UNAVAILABLE, details: link.connected() ? `Connection dropped: ${why}` : `No connection established. Last error: ${why}`, metadata: md };
    }
    switch (rstCode) {
      case c.NGHTTP2_REFUSED_STREAM: return { code: GrpcCode.UNAVAILABLE, details: 'Stream refused by server', metadata: md };
      case c.NGHTTP2_CANCEL: return { code: GrpcCode.CANCELLED, details: 'Call cancelled', metadata: md };
      case c.NGHTTP2_ENHANCE_YOUR_CALM: return { code: GrpcCode.RESOURCE_EXHAUSTED, details: 'Bandwidth exhausted or memory limit exceeded', metadata: md };
      case c.NGHTTP2_INADEQUATE_SECURITY: return { code: GrpcCode.PERMISSION_DENIED, details: 'Protocol not secure enough', metadata: md };
      case c.NGHTTP2_INTERNAL_ERROR: return { code: GrpcCode.INTERNAL, details: `Received RST_STREAM with code ${rstCode} (Internal server error)`, metadata: md };
      case undefined:
      case c.NGHTTP2_NO_ERROR:
        if (this.httpStatus !== undefined && this.httpStatus !== 200) return { ...httpStatusToGrpc(this.httpStatus), metadata: md };
        return { code: GrpcCode.INTERNAL, details: `Received RST_STREAM with code ${rstCode ?? 0} (Call ended without gRPC status)`, metadata: md };
      default:
        return { code: GrpcCode.INTERNAL, details: `Received RST_STREAM with code ${rstCode}`, metadata: md };
    }
  }

  /** Ends the call with this status (once); closes the stream with rstCode if it is still open. */
  private finish(status: GrpcStatus, rstCode?: number): void {
    if (this.done) return;
    this.done = true;
    this.timer?.cancel();
    const s = this.stream;
    if (s && !s.closed && !s.destroyed && rstCode !== undefined) s.close(rstCode);
    this.finalStatus = status;
    this.onDone();
    if (status.code !== GrpcCode.OK && this.listenerCount('error') > 0) this.emit('error', new GrpcCallError(status));
    this.emit('status', status);
  }

  get status(): GrpcStatus | undefined {
    return this.finalStatus;
  }
}

/** A gRPC client channel to one target over one HTTP/2 session. */
export class GrpcLiteChannel {
  private readonly options: GrpcLiteChannelOptions;
  private readonly url: string;
  private readonly authority: string;
  private session: http2.ClientHttp2Session | undefined;
  private readonly connected = new WeakSet<http2.ClientHttp2Session>();
  private active = 0;
  private closed = false;

  constructor(options: GrpcLiteChannelOptions) {
    this.options = options;
    const address = options.address.replace(/^dns:(\/\/\/)?/, '');
    const host = hostOf(address);
    this.url = `${options.tls ? 'https' : 'http'}://${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${portOf(address)}`;
    this.authority = options.authority ?? options.tls?.serverName ?? address;
  }

  /** A bidi (or server-streaming) call. Messages written before the stream opens are queued. */
  call(path: string, metadata: Record<string, string> = {}, timeoutMs?: number): GrpcLiteStream {
    return new GrpcLiteStream(this.startCall(path, metadata, timeoutMs));
  }

  /** A unary call: resolves to the one response message, rejects with GrpcCallError. */
  unary(path: string, request: Uint8Array, metadata: Record<string, string> = {}, timeoutMs?: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const call = this.startCall(path, metadata, timeoutMs);
      let response: Buffer | undefined;
      let tooMany = false;
      call.on('data', (m) => {
        if (response !== undefined) {
          tooMany = true;
          return;
        }
        response = m;
      });
      call.on('status', (s) => {
        if (s.code !== GrpcCode.OK) reject(new GrpcCallError(s));
        else if (tooMany) reject(new GrpcCallError({ code: GrpcCode.UNIMPLEMENTED, details: 'Too many responses received', metadata: s.metadata }));
        else if (response === undefined) reject(new GrpcCallError({ code: GrpcCode.UNIMPLEMENTED, details: 'No message received', metadata: s.metadata }));
        else resolve(response);
      });
      call.write(request);
      call.end();
    });
  }

  /** Lets active calls finish, then closes the session; later calls fail with UNAVAILABLE. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const s = this.session;
    this.session = undefined;
    if (s && !s.closed) s.close();
  }

  private startCall(path: string, metadata: Record<string, string>, timeoutMs: number | undefined): GrpcCall {
    this.active++;
    this.session?.ref();
    let counted = true;
    return new GrpcCall(() => this.openStream(path, metadata, timeoutMs), this.options.maxReceiveMessageBytes ?? 256 * 1024 * 1024, timeoutMs, () => {
      if (!counted) return;
      counted = false;
      this.active--;
      if (this.active === 0) this.session?.unref();
    });
  }

  private openStream(path: string, metadata: Record<string, string>, timeoutMs: number | undefined): StreamLink {
    if (this.closed) throw new Error('Channel has been shut down');
    const session = this.ensureSession();
    const headers: http2.OutgoingHttpHeaders = {
      ':method': 'POST',
      ':path': path,
      ':authority': this.authority,
      'content-type': 'application/grpc',
      te: 'trailers',
      'user-agent': 'ambit-grpc-lite/1',
      'grpc-accept-encoding': 'identity',
    };
    if (timeoutMs !== undefined) headers['grpc-timeout'] = grpcTimeoutHeader(timeoutMs);
    for (const [k, v] of Object.entries(metadata)) headers[k.toLowerCase()] = v;
    const stream = session.request(headers);
    return { stream, connected: () => this.connected.has(session), sessionDestroyed: () => session.destroyed };
  }

  private ensureSession(): http2.ClientHttp2Session {
    const current = this.session;
    if (current && !current.closed && !current.destroyed) return current;
    const tls = this.options.tls;
    const serverName = tls?.serverName;
    const session = http2.connect(this.url, tls ? {
      ca: tls.rootCertPem,
      ...(tls.certChainPem ? { cert: tls.certChainPem } : {}),
      ...(tls.privateKeyPem ? { key: tls.privateKeyPem } : {}),
      ...(serverName ? { servername: serverName } : {}),
      checkServerIdentity: (host: string, cert: PeerCertificate): Error | undefined =>
        (tls.checkServerIdentity ?? defaultCheckServerIdentity)(serverName ?? host, cert),
    } : {});
    this.session = session;
    session.once('connect', () => this.connected.add(session));
    const forget = (): void => {
      if (this.session === session) this.session = undefined;
    };
    // Errors reach the streams (each ends with a status); here the session is only forgotten.
    session.on('error', forget);
    session.on('close', forget);
    session.on('goaway', forget);
    if (this.active === 0) session.unref();
    return session;
  }
}

/** The caller's side of a streaming call. */
export class GrpcLiteStream {
  constructor(private readonly call: GrpcCall) {}

  write(message: Uint8Array): void {
    this.call.write(message);
  }

  end(): void {
    this.call.end();
  }

  cancel(): void {
    this.call.cancel();
  }

  get ended(): boolean {
    return this.call.ended;
  }

  on<E extends keyof GrpcCallEvents>(event: E, listener: (...args: GrpcCallEvents[E]) => void): this {
    (this.call as EventEmitter).on(event, listener as (...args: unknown[]) => void);
    return this;
  }
}

function hostOf(address: string): string {
  if (address.startsWith('[')) return address.slice(1, address.indexOf(']'));
  const i = address.lastIndexOf(':');
  return i < 0 ? address : address.slice(0, i);
}

function portOf(address: string): string {
  const i = address.lastIndexOf(':');
  const close = address.lastIndexOf(']');
  return i < 0 || i < close ? '443' : address.slice(i + 1);
}
