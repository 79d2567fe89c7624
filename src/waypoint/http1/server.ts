// The server side of the waypoint's HTTP/1.1 codec: requests read from a tunnel (or any
// Duplex), handed one at a time to the L7 pipeline, answers written back in order.
//
// Invariants:
// - Answers leave in request order: a pipelined request waits (its body buffered) until the
//   one before it is answered in full.
// - The connection stays open only when both the request (version, Connection header) and the
//   answer (framed by Content-Length or chunks) allow it; otherwise it is ended after the answer.
// - A request that is not valid HTTP/1.1 gets 400 (431 for a head over MAX_HEADER_BYTES) with
//   `connection: close`, and the connection ends; the pipeline never sees it. CONNECT gets 501
//   (or, behind requests not yet answered, the connection is cut: an answer out of turn would
//   be taken for theirs).
// - Only HTTP/1.0 and HTTP/1.1 are served: another version llhttp reads (HTTP/2.0, HTTP/0.9
//   with headers) gets 505 the same way — never read as HTTP/1.0 or 1.1, whose framing its
//   sender may not share; the versions llhttp refuses itself (HTTP/1.2, HTTP/3.0) get 400.
// - `Expect: 100-continue` is answered here, when the request's turn comes (never inside the
//   answer to an earlier one), and not forwarded.
// - Nothing after a refused request reaches the pipeline, even when it came in the same read.
//   After a request that asked to close, the client may send nothing more (RFC 9112 section
//   9.6): what it sends anyway is dropped unread, and the answer still goes out.
// - An HTTP/1.0 request with Transfer-Encoding has a framing its sender may not share: the
//   connection ends after its answer (RFC 9112 section 6.1).
// - A request asking to switch protocols (Upgrade, e.g. WebSocket) stops the reading: what
//   follows it stays unread until the answer. A 101 hands the raw stream (those bytes first)
//   to the pipeline (`switchProtocols()`); any other answer resumes HTTP/1.1 parsing.
// - A response emits 'close' exactly once: after its last byte is handed to the stream, or
//   when the connection dies first.
// - Limits (Http1Limits), each counted by the caller through `limitHit`: a head must arrive
//   whole within headerTimeoutMs of its first byte (else 408 and the connection ends); a
//   request body must make progress every bodyProgressTimeoutMs (else the connection is cut);
//   a connection with nothing in flight is closed after idleTimeoutMs.
// - Pipelining is bounded per connection, not per read: at most maxPipelined requests are
//   queued (parsed and not yet answered in full, the one being served included), however the
//   bytes arrive — one request per read or a thousand in one. When a head arrives with the
//   queue full, the parser stops right after that head (llhttp paused): the head is kept aside
//   (one, at most MAX_HEADER_BYTES), the bytes after it stay unparsed, and the connection is
//   not read (backpressure, not a growing queue). When an answer frees a place, that head
//   becomes a request and parsing goes on from where it stopped. While the queue is full and
//   nothing is kept aside, the connection is still read for the body of the request being
//   served, which its answer may need.
import { EventEmitter } from 'node:events';
import type { Clock, TimerHandle } from '../../core/clock.js';
import { Readable, type Duplex } from 'node:stream';
import { bodiless, headerLines, lastChunk, statusLine, writeChunk, type HeaderValue } from './head.js';
import { headerRecord, Http1Parser, type MessageHead, type ParseError } from './parser.js';
import { destroyCut, releaseStream } from './release.js';

export interface Http1ServerEvents {
  request(req: Http1Request, res: Http1Response): void;
  /** A request could not be parsed; it was answered with `status` and the connection ended. */
  badRequest?(status: number, error: ParseError): void;
  /** A limit ended the connection (or paused it: `pipelined`). */
  limitHit?(limit: 'header_timeout' | 'body_timeout' | 'idle_timeout' | 'pipelined'): void;
}

export interface Http1Limits {
  headerTimeoutMs: number;
  bodyProgressTimeoutMs: number;
  idleTimeoutMs: number;
  maxPipelined: number;
}

export const DEFAULT_HTTP1_LIMITS: Http1Limits = Object.freeze({
  headerTimeoutMs: 15_000,
  bodyProgressTimeoutMs: 60_000,
  idleTimeoutMs: 300_000,
  maxPipelined: 32,
});

/** A request as the pipeline reads it (the shape of node's IncomingMessage it uses); the body is the stream. */
export class Http1Request extends Readable {
  readonly httpVersionMajor = 1;
  readonly httpVersionMinor: number;
  readonly httpVersion: string;
  readonly method: string;
  readonly url: string;
  readonly headers: Record<string, string | string[]>;
  /** The whole body has been read off the connection (not necessarily by the pipeline). */
  complete = false;
  /** The client asks to switch protocols (an Upgrade header). */
  upgrade = false;

  constructor(head: MessageHead, private readonly conn: Http1ServerConnection) {
    super();
    this.httpVersionMinor = head.versionMinor;
    this.httpVersion = head.versionMinor === 0 ? '1.0' : '1.1';
    this.method = head.method;
    this.url = head.url;
    this.headers = headerRecord(head.rawHeaders);
  }

  override _read(): void {
    this.conn.resumeReading();
  }
}

export function serveHttp1(stream: Duplex, events: Http1ServerEvents, opts: { clock: Clock; limits?: Http1Limits }): Http1ServerConnection {
  return new Http1ServerConnection(stream, events, opts.clock, opts.limits ?? DEFAULT_HTTP1_LIMITS);
}

interface Exchange { req: Http1Request; res: Http1Response; sendContinue: boolean }

export class Http1ServerConnection {
  private readonly parser: Http1Parser;
  /** Requests received and not yet answered in full; the first one is being served. */
  private readonly queue: Exchange[] = [];
  /** The request whose body is being read. */
  private reading: Http1Request | undefined;
  private closed = false;
  private takenOver = false;
  /** An upgrade request is waiting for its answer; bytes after it are held here. */
  private upgradeWait: { req: Http1Request; held: Buffer } | undefined;
  private readonly listeners: { data: (b: Buffer) => void; end: () => void; close: () => void; drain: () => void };
  /** A head has begun and not ended. */
  private headPending = false;
  private timer: TimerHandle | undefined;
  private timerKind: 'idle' | 'head' | 'body' | undefined;
  /** Reading stopped because maxPipelined requests wait. */
  private pipelineFull = false;
  /** A head that came while the queue was full: the parser stopped after it (see the invariants). */
  private parked: MessageHead | undefined;
  /** The bytes after the parked head, not parsed yet. */
  private parkedRest: Buffer = EMPTY;
  /** The client half-closed while a head was parked: handled once the bytes before the end are parsed. */
  private endedWhileParked = false;
  /** The client sent more after a request that asked to close: the rest is dropped. */
  private dropping = false;

  constructor(readonly stream: Duplex, private readonly events: Http1ServerEvents, private readonly clock: Clock, private readonly limits: Http1Limits = DEFAULT_HTTP1_LIMITS) {
    this.parser = new Http1Parser('request', {
      begin: () => { this.headPending = true; },
      // A refusal or a closing answer may come while llhttp still has bytes of this read to
      // parse: later heads are skipped, never handed on.
      head: (h) => { this.headPending = false; return this.closed ? true : this.onHead(h); },
      body: (b) => {
        if (this.timerKind === 'body') this.arm('body');
        if (this.reading && !this.reading.push(b)) {
          // Our reader is behind: the body is not late, we are. No progress deadline meanwhile.
          this.stream.pause();
          this.cancelTimer();
        }
      },
      complete: () => {
        if (this.reading) {
          this.reading.complete = true;
          this.reading.push(null);
        }
        this.reading = undefined;
      },
    });
    this.listeners = {
      data: (b) => this.onData(b),
      end: () => this.onEnd(),
      close: () => this.onClose(),
      drain: () => { for (const x of this.queue) if (x.res.waitingDrain) x.res.drained(); },
    };
    stream.on('data', this.listeners.data);
    stream.once('end', this.listeners.end);
    stream.once('close', this.listeners.close);
    stream.on('error', () => {});
    stream.on('drain', this.listeners.drain);
  }

  /** Requests parsed and not yet answered in full (the one being served included). */
  get queued(): number {
    return this.queue.length;
  }

  resumeReading(): void {
    if (this.closed || this.upgradeWait || this.parked || (this.pipelineFull && !this.servedBodyPending())) return;
    this.stream.resume();
    this.updateTimer();
  }

  /** The request being served has not been read whole: its answer may wait for that body. */
  private servedBodyPending(): boolean {
    return this.reading !== undefined && !this.reading.complete && this.queue[0]?.req === this.reading;
  }

  private onData(b: Buffer): void {
    this.feed(b);
    this.updateTimer();
    if (!this.closed && this.queue.length >= this.limits.maxPipelined && !this.servedBodyPending()) this.full();
  }

  /** The queue is full: stop reading until an answer frees a place. */
  private full(): void {
    this.stream.pause();
    if (!this.pipelineFull) {
      this.pipelineFull = true;
      this.events.limitHit?.('pipelined');
    }
  }

  /** What drives the one timer of the connection (see the invariants). */
  private updateTimer(): void {
    const want = this.closed || this.takenOver ? undefined : this.reading && !this.reading.complete ? 'body' : this.headPending ? 'head' : this.queue.length === 0 ? 'idle' : undefined;
    if (want === this.timerKind) return;
    if (want) this.arm(want);
    else this.cancelTimer();
  }

  private arm(kind: 'idle' | 'head' | 'body'): void {
    this.timer?.cancel();
    this.timerKind = kind;
    const ms = kind === 'idle' ? this.limits.idleTimeoutMs : kind === 'head' ? this.limits.headerTimeoutMs : this.limits.bodyProgressTimeoutMs;
    this.timer = this.clock.setTimeout(() => this.expired(kind), ms);
  }

  private cancelTimer(): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.timerKind = undefined;
  }

  private expired(kind: 'idle' | 'head' | 'body'): void {
    this.timer = undefined;
    this.timerKind = undefined;
    if (this.closed) return;
    if (kind === 'idle') {
      this.events.limitHit?.('idle_timeout');
      this.closed = true;
      this.stream.end();
    } else if (kind === 'head') {
      this.events.limitHit?.('header_timeout');
      this.refuse(Object.assign(new Error('the request head did not arrive in time'), { code: 'HPE_HEADER_TIMEOUT' }));
    } else {
      this.events.limitHit?.('body_timeout');
      this.closed = true;
      this.stream.destroy();
    }
  }

  private feed(b: Buffer): void {
    if (this.dropping) return;
    if (this.parked) {
      // Read before the pause took effect: kept behind the parked head, in order.
      this.parkedRest = Buffer.concat([this.parkedRest, b]);
      return;
    }
    if (this.upgradeWait) {
      this.upgradeWait.held = Buffer.concat([this.upgradeWait.held, b]);
      return;
    }
    this.parse(b, false);
  }

  /** Runs the parser over `b` (at least once when `always`: a resumed parser may complete a message without new bytes). */
  private parse(b: Buffer, always: boolean): void {
    let rest = b;
    let first = always;
    while ((rest.length > 0 || first) && !this.closed) {
      first = false;
      const used = this.parser.execute(rest);
      if (this.isParked()) {
        // The parser stopped after the parked head (an Error HPE_PAUSED, or a count for a head
        // with Upgrade): what follows it waits, unparsed.
        const at = typeof used === 'number' ? used : (used.bytesParsed ?? rest.length);
        this.parkedRest = Buffer.from(rest.subarray(at));
        this.full();
        return;
      }
      if (this.takenOver) {
        // Switched while parsing (the answer came at once): the rest is the new protocol's.
        if (typeof used === 'number' && used < rest.length) this.stream.unshift(Buffer.from(rest.subarray(used)));
        return;
      }
      if (used instanceof Error) {
        if (this.closed) return;
        if (used.code === 'HPE_CLOSED_CONNECTION') { this.dropping = true; return; }
        return this.refuse(used);
      }
      if (used >= rest.length) break;
      rest = rest.subarray(used);
      // The parser stopped after an upgrade request: the rest waits for the answer.
      const wait = this.waitingUpgrade();
      if (wait) {
        wait.held = Buffer.from(rest);
        return;
      }
    }
  }

  /** (A method, so the compiler sees that parsing may have set it.) */
  private waitingUpgrade(): { held: Buffer } | undefined {
    return this.upgradeWait;
  }

  /** (The same.) */
  private isParked(): boolean {
    return this.parked !== undefined;
  }

  /** A place is free: the parked head becomes a request, and parsing goes on after it. */
  private unpark(): void {
    const h = this.parked!;
    const rest = this.parkedRest;
    this.parked = undefined;
    this.parkedRest = EMPTY;
    this.parser.resume();
    if (h.upgrade) {
      // What follows an upgrade request is held for its answer (the new protocol's on a 101),
      // before the request is served: a 101 may come at once.
      if (this.accept(h, rest)) return;
      this.parse(EMPTY, true);
    } else {
      if (this.accept(h)) return;
      // Even with no bytes left, the resumed parser completes a request without a body.
      this.parse(rest, true);
    }
    if (!this.parked && this.endedWhileParked) {
      this.endedWhileParked = false;
      this.onEnd();
    }
  }

  /**
   * The answer to the upgrade request is 101: the connection stops being HTTP/1.1. Returns the
   * raw stream, paused, with the bytes that followed the request put back in front.
   */
  takeOver(req: Http1Request): Duplex {
    const held = this.upgradeWait?.req === req ? this.upgradeWait.held : Buffer.alloc(0);
    this.upgradeWait = undefined;
    this.closed = true;
    this.takenOver = true;
    this.cancelTimer();
    this.queue.splice(0);
    this.parked = undefined;
    this.parser.close();
    return releaseStream(this.stream, this.listeners, held);
  }

  /** A head from the parser: a request, or (the queue full) parked with the parser stopped. */
  private onHead(h: MessageHead): boolean | 'pause' {
    if (this.queue.length >= this.limits.maxPipelined) {
      this.parked = h;
      return 'pause';
    }
    return this.accept(h);
  }

  /**
   * Returns true when the request was refused (the connection is closing; no body follows).
   * `upgradeHeld`: the bytes already read after an upgrade request.
   */
  private accept(h: MessageHead, upgradeHeld: Buffer = EMPTY): boolean {
    if (h.versionMajor !== 1 || h.versionMinor > 1) {
      this.refuse(Object.assign(new Error(`HTTP/${h.versionMajor}.${h.versionMinor} is not HTTP/1.0 or HTTP/1.1`), { code: 'HPE_UNSUPPORTED_VERSION' }));
      return true;
    }
    const hosts = countHeader(h.rawHeaders, 'host');
    if (hosts > 1 || (hosts === 0 && h.versionMinor >= 1)) {
      // RFC 9112 section 3.2: exactly one Host in HTTP/1.1; two would let the proxy and the
      // application disagree on where the request goes.
      this.refuse(Object.assign(new Error(hosts > 1 ? 'more than one Host header' : 'no Host header'), { code: 'HPE_BAD_HOST' }));
      return true;
    }
    if (h.method === 'CONNECT') {
      this.closed = true;
      // Answered only in turn: behind requests still being answered, a 501 written now would
      // reach the client as their answer. As with a bad request, the connection is cut instead.
      if (this.queue.length === 0) this.stream.end(Buffer.from(`${statusLine(501, 1)}content-length: 0\r\nconnection: close\r\n\r\n`, 'latin1'));
      else this.stream.destroy();
      return true;
    }
    const req = new Http1Request(h, this);
    const keepAlive = h.keepAlive && !(h.versionMinor === 0 && countHeader(h.rawHeaders, 'transfer-encoding') > 0);
    const res = new Http1Response(this, req.method, keepAlive, h.versionMinor);
    const sendContinue = req.headers.expect !== undefined && String(req.headers.expect).toLowerCase() === '100-continue' && h.versionMinor >= 1;
    if (sendContinue) delete req.headers.expect;
    this.reading = req;
    if (h.upgrade) {
      req.upgrade = true;
      this.upgradeWait = { req, held: upgradeHeld };
      this.stream.pause();
    }
    this.queue.push({ req, res, sendContinue });
    if (this.queue.length === 1) this.dispatch(this.queue[0]!);
    return false;
  }

  /** The request's turn: the pipeline gets it (after the interim 100 it asked for). */
  private dispatch(x: Exchange): void {
    if (x.sendContinue) this.stream.write(Buffer.from('HTTP/1.1 100 Continue\r\n\r\n', 'latin1'));
    this.events.request(x.req, x.res);
  }

  /** The answer at the head of the queue is complete: serve the next request, or end. */
  answered(res: Http1Response, keepAlive: boolean): void {
    const x = this.queue[0];
    if (x?.res !== res) return;
    this.queue.shift();
    // A body still arriving that nobody reads (a local answer came first) is dropped as it
    // comes, so the connection is not left paused and the next request parses.
    if (!x.req.complete) x.req.resume();
    if (!keepAlive) {
      this.closed = true;
      this.parked = undefined;
      this.stream.end();
      for (const x of this.queue.splice(0)) x.res.abandon();
      return;
    }
    if (this.upgradeWait?.req === x.req) {
      // Not switched: what followed the request is HTTP/1.1 again (nothing after it was
      // parsed, so the queue is empty; parsing the held bytes serves the next request).
      const held = this.upgradeWait.held;
      this.upgradeWait = undefined;
      this.stream.resume();
      if (held.length) this.onData(held);
      return;
    }
    const next = this.queue[0];
    if (next) this.dispatch(next);
    if (this.parked && !this.closed && this.queue.length < this.limits.maxPipelined) this.unpark();
    if (this.pipelineFull && this.queue.length < this.limits.maxPipelined && !this.parked) {
      this.pipelineFull = false;
      this.resumeReading();
    } else if (this.pipelineFull && this.servedBodyPending()) {
      // The next one's body was cut off by the limit; its reader asked once, before its turn.
      this.resumeReading();
    }
    this.updateTimer();
  }

  private refuse(e: ParseError): void {
    this.closed = true;
    const status = e.code === 'HPE_HEADER_OVERFLOW' ? 431 : e.code === 'HPE_HEADER_TIMEOUT' ? 408 : e.code === 'HPE_UNSUPPORTED_VERSION' ? 505 : 400;
    this.events.badRequest?.(status, e);
    // Answers already under way are cut: the stream is no longer in step with the client.
    if (this.queue.length === 0) {
      this.stream.end(Buffer.from(`${statusLine(status, 1)}content-length: 0\r\nconnection: close\r\n\r\n`, 'latin1'));
    } else this.stream.destroy();
  }

  private onEnd(): void {
    if (this.parked) {
      // Requests are still unparsed behind the parked head: the end is theirs to see.
      this.endedWhileParked = true;
      return;
    }
    // The client half-closed: requests already read are still answered, then the stream ends.
    const e = this.parser.finish();
    if (e && this.reading) destroyCut(this.reading, e);
    if (this.queue.length === 0) { if (!this.stream.writableEnded) this.stream.end(); }
    else this.queue[this.queue.length - 1]!.res.lastOnConnection = true;
  }

  private onClose(): void {
    this.closed = true;
    this.parked = undefined;
    this.cancelTimer();
    this.parser.close();
    if (this.reading) destroyCut(this.reading);
    for (const x of this.queue.splice(0)) x.res.abandon();
  }
}

const EMPTY = Buffer.alloc(0);

function countHeader(raw: readonly string[], lowerName: string): number {
  let n = 0;
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.length === lowerName.length && raw[i]!.toLowerCase() === lowerName) n++;
  return n;
}

/** A response as the pipeline writes it (the shape of node's ServerResponse it uses). */
export class Http1Response extends EventEmitter {
  headersSent = false;
  writableEnded = false;
  destroyed = false;
  /** The client half-closed after this request: end the connection after the answer. */
  lastOnConnection = false;
  waitingDrain = false;
  private framing: 'length' | 'chunked' | 'close' | 'none' = 'none';
  private pendingHead: Buffer | undefined;
  private trailers: Record<string, HeaderValue> | undefined;
  private keepAlive: boolean;
  private done = false;

  constructor(private readonly conn: Http1ServerConnection, private readonly method: string, keepAlive: boolean, private readonly minor: number) {
    super();
    this.keepAlive = keepAlive;
  }

  writeHead(status: number, headers: Record<string, HeaderValue>): this {
    if (this.headersSent) return this;
    let extra = '';
    if (bodiless(status, this.method)) this.framing = 'none';
    else if (headers['content-length'] !== undefined) this.framing = 'length';
    else if (this.minor >= 1) { this.framing = 'chunked'; extra += 'transfer-encoding: chunked\r\n'; }
    else { this.framing = 'close'; this.keepAlive = false; }
    if (!this.keepAlive) extra += 'connection: close\r\n';
    else if (this.minor === 0) extra += 'connection: keep-alive\r\n';
    const head = `${statusLine(status, this.minor)}${headerLines(headers)}${extra}\r\n`;
    this.headersSent = true;
    this.pendingHead = Buffer.from(head, 'latin1');
    return this;
  }

  addTrailers(t: Record<string, HeaderValue>): void {
    this.trailers = t;
  }

  write(chunk: Buffer): boolean {
    if (this.done || chunk.length === 0) return true;
    const s = this.conn.stream;
    const head = this.takeHead();
    if (this.framing === 'none') return head ? s.write(head) : true;
    let ok: boolean;
    if (this.framing === 'chunked') ok = writeChunk(s, chunk, head);
    else ok = s.write(head ? Buffer.concat([head, chunk]) : chunk);
    if (!ok) this.waitingDrain = true;
    return ok;
  }

  drained(): void {
    this.waitingDrain = false;
    this.emit('drain');
  }

  end(chunk?: Buffer): void {
    if (this.done) return;
    if (!this.headersSent) this.writeHead(200, { 'content-length': String(chunk?.length ?? 0) });
    if (chunk && chunk.length) this.write(chunk);
    const s = this.conn.stream;
    const head = this.takeHead();
    if (this.framing === 'chunked') s.write(head ? Buffer.concat([head, lastChunk(this.trailers)]) : lastChunk(this.trailers));
    else if (head) s.write(head);
    this.done = true;
    this.writableEnded = true;
    this.emit('finish');
    this.emit('close');
    this.conn.answered(this, this.keepAlive && !this.lastOnConnection && this.framing !== 'close');
  }

  /**
   * Sends the 101 head given to writeHead and returns the raw connection for the new protocol.
   * 'close' is left to the caller (emitted when the switched connection ends).
   */
  switchProtocols(req: Http1Request): Duplex {
    const head = this.takeHead();
    if (head) this.conn.stream.write(head);
    this.done = true;
    this.writableEnded = true;
    return this.conn.takeOver(req);
  }

  /** The pipeline gives up on this answer: the connection is no longer usable. */
  destroy(): void {
    if (this.done) return;
    this.conn.stream.destroy();
    this.abandon();
  }

  /** The connection died before the answer was complete. */
  abandon(): void {
    if (this.done) return;
    this.done = true;
    this.destroyed = true;
    this.emit('close');
  }

  private takeHead(): Buffer | undefined {
    const h = this.pendingHead;
    this.pendingHead = undefined;
    return h;
  }
}
