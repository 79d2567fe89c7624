// The client side of the waypoint's HTTP/1.1 codec: requests to one upstream endpoint over
// keep-alive connections (HBONE tunnels), without node:http's agent and request objects.
//
// Invariants:
// - A connection carries one request at a time and goes back to the idle list (newest used
//   first) only when its request was written in full and its response read in full, and both
//   sides allow keep-alive. Anything else ends it.
// - Idle connections older than `idleTimeoutMs` are closed, before a typical server's own
//   keep-alive timeout, so a request is rarely sent on a connection the server is closing.
// - A reused connection that dies before any byte of the answer is `connect-failed` (nothing
//   reached the app: safe to retry elsewhere); a new one that dies after the request was sent
//   is `reset`.
// - 1xx interim answers are skipped; the first final answer resolves the exchange.
// - An answer that arrived whole in the read that brought its head (the common small
//   response) resolves with `whole`, its body as one Buffer, and no stream to pump; a longer
//   one resolves, at the end of that read, with a stream that carries the rest.
// - A 101 (switching protocols, to a request that asked for it) takes the connection out of
//   the pool for good: the response body is the raw stream, the bytes after the head first.
import type { Clock, TimerHandle } from '../../core/clock.js';
import { Readable, type Duplex } from 'node:stream';
import { describeError } from '../../core/errors.js';
import { headerRecord, Http1Parser, type MessageHead } from './parser.js';
import { headerLines, LAST_CHUNK, writeChunk, type HeaderValue } from './head.js';
import { destroyCut, releaseStream } from './release.js';

export interface UpstreamResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** The body as a stream (for a `whole` answer, an ended one made on first use). */
  body: Readable;
  /** The whole body, when it had all arrived with the head. */
  whole?: Buffer;
  trailers: Promise<Record<string, string | string[] | undefined> | undefined>;
}

export type Exchange = { kind: 'response'; res: UpstreamResponse } | { kind: 'connect-failed' | 'reset'; message: string };

export interface Http1ClientOptions {
  open(): Promise<Duplex>;
  clock: Clock;
  maxIdle: number;
  idleTimeoutMs: number;
  /** A connection is closed after this many requests (DestinationRule maxRequestsPerConnection); 0: never. */
  maxRequestsPerConnection?: number;
}

const HOST_AND_TE: ReadonlySet<string> = new Set(['host', 'transfer-encoding']);
const FRAMING_HEADERS: ReadonlySet<string> = new Set([...HOST_AND_TE, 'content-length']);

/** Methods whose request carries no body unless it says so. */
const NO_BODY_BY_DEFAULT = new Set(['GET', 'HEAD', 'DELETE', 'OPTIONS', 'TRACE']);

/** Keep-alive HTTP/1.1 connections to one endpoint. */
export class Http1Client {
  /** Oldest first; reuse takes the newest. */
  private idle: Http1ClientConnection[] = [];
  private timer: TimerHandle | undefined;
  private closed = false;
  connectionsMade = 0;

  constructor(private readonly opts: Http1ClientOptions) {}

  /** `signal` abandons the exchange: if no answer has come, its connection is closed. */
  async request(method: string, path: string, host: string, headers: Record<string, HeaderValue>, body: Buffer | Readable | undefined, signal?: AbortSignal): Promise<Exchange> {
    let conn = this.takeIdle();
    const reused = conn !== undefined;
    if (!conn) {
      try {
        this.connectionsMade++;
        conn = new Http1ClientConnection(await this.opts.open(), (c) => this.release(c));
      } catch (e: unknown) {
        return { kind: 'connect-failed', message: describeError(e).message };
      }
    }
    conn.served++;
    return conn.send(method, path, host, headers, body, reused, signal);
  }

  /** Closes idle connections past their time; runs when the oldest one expires. */
  private sweep(): void {
    this.timer = undefined;
    const cutoff = this.opts.clock.now() - this.opts.idleTimeoutMs;
    this.idle = this.idle.filter((c) => (c.idleSinceMs > cutoff && c.alive) || (c.destroy(), false));
    this.arm();
  }

  private arm(): void {
    const oldest = this.idle[0];
    if (this.timer || !oldest) return;
    this.timer = this.opts.clock.setTimeout(() => this.sweep(), Math.max(1, oldest.idleSinceMs + this.opts.idleTimeoutMs - this.opts.clock.now()));
  }

  /** Closes the idle connections; those in use close when their exchange is done. */
  close(): void {
    this.closed = true;
    this.timer?.cancel();
    this.timer = undefined;
    for (const c of this.idle.splice(0)) c.destroy();
  }

  private takeIdle(): Http1ClientConnection | undefined {
    const cutoff = this.opts.clock.now() - this.opts.idleTimeoutMs;
    for (let c = this.idle.pop(); c; c = this.idle.pop()) {
      if (c.alive && c.idleSinceMs > cutoff) return c;
      c.destroy();
    }
    return undefined;
  }

  private release(c: Http1ClientConnection): void {
    const max = this.opts.maxRequestsPerConnection ?? 0;
    if (this.closed || this.idle.length >= this.opts.maxIdle || (max > 0 && c.served >= max)) { c.destroy(); return; }
    c.idleSinceMs = this.opts.clock.now();
    this.idle.push(c);
    this.arm();
  }
}

interface InFlight {
  method: string;
  reused: boolean;
  resolve(x: Exchange): void;
  written: boolean;
  keepAlive: boolean;
  /** A final head arrived (not yet necessarily handed to the caller). */
  answered: boolean;
  resolved: boolean;
  head?: { status: number; headers: Record<string, string | string[]> };
  /** Body bytes read before a stream was needed. */
  chunks: Buffer[];
  stream?: ResponseBody;
  bodyDone: boolean;
  trailers?: Promise<Record<string, string | string[]> | undefined>;
  setTrailers?(t: Record<string, string | string[]> | undefined): void;
}

class ResponseBody extends Readable {
  constructor(private readonly conn: Http1ClientConnection) { super(); }
  override _read(): void { this.conn.stream.resume(); }
  override _destroy(e: Error | null, cb: (e?: Error | null) => void): void {
    // Dropped before its end: the rest of it would arrive on this connection, so it goes.
    if (!this.readableEnded) this.conn.destroy();
    cb(e);
  }
}

class Http1ClientConnection {
  alive = true;
  idleSinceMs = 0;
  /** Requests sent on it so far. */
  served = 0;
  private readonly parser: Http1Parser;
  private current: InFlight | undefined;
  private switched: ((raw: Duplex) => void) | undefined;
  private readonly listeners: { data: (b: Buffer) => void; end: () => void; close: () => void; error: (e: Error) => void };

  constructor(readonly stream: Duplex, private readonly onFree: (c: Http1ClientConnection) => void) {
    this.parser = new Http1Parser('response', {
      head: (h) => this.onHead(h),
      body: (b) => {
        const x = this.current;
        if (!x) return;
        if (!x.stream) x.chunks.push(b);
        else if (!x.stream.push(b)) this.stream.pause();
      },
      complete: (t) => this.onComplete(t),
    });
    this.listeners = {
      data: (b) => {
        const r = this.parser.execute(b);
        if (r instanceof Error) return this.fail(`invalid HTTP/1.1 response: ${r.message}${r.code ? ` (${r.code})` : ''}`);
        if (this.switched) return this.handOver(b.subarray(r));
        // The head came and the body goes on past this read: the caller gets a stream.
        const x = this.current;
        if (x?.answered && !x.resolved) this.resolveStreaming(x);
      },
      end: () => {
        const e = this.parser.finish();
        this.fail(e ? 'the upstream closed the connection in the middle of a response' : 'the upstream closed the connection');
      },
      close: () => this.fail('the connection closed'),
      error: (e) => this.fail(e.message),
    };
    stream.on('data', this.listeners.data);
    stream.once('end', this.listeners.end);
    stream.once('close', this.listeners.close);
    stream.on('error', this.listeners.error);
  }

  /** After a 101: the stream leaves this connection, the bytes after the head put back in front. */
  private handOver(rest: Buffer): void {
    const give = this.switched!;
    this.switched = undefined;
    this.alive = false;
    this.current = undefined;
    this.parser.close();
    give(releaseStream(this.stream, this.listeners, rest));
  }

  send(method: string, path: string, host: string, headers: Record<string, HeaderValue>, body: Buffer | Readable | undefined, reused: boolean, signal?: AbortSignal): Promise<Exchange> {
    return new Promise((resolve) => {
      const x: InFlight = { method, reused, resolve, written: false, keepAlive: false, answered: false, resolved: false, chunks: [], bodyDone: false };
      this.current = x;
      signal?.addEventListener('abort', () => { if (this.current === x && !x.answered) this.destroy(); }, { once: true });
      // Framing is ours: the client's Content-Length is kept only for a body streamed as is.
      let framing = '';
      let skip = FRAMING_HEADERS;
      if (body === undefined) {
        if (!NO_BODY_BY_DEFAULT.has(method)) framing = 'content-length: 0\r\n';
      } else if (Buffer.isBuffer(body)) {
        framing = `content-length: ${body.length}\r\n`;
      } else if (headers['content-length'] === undefined) framing = 'transfer-encoding: chunked\r\n';
      else skip = HOST_AND_TE;
      let head: Buffer;
      try {
        head = Buffer.from(`${method} ${path} HTTP/1.1\r\nhost: ${host}\r\n${headerLines(headers, skip)}${framing}\r\n`, 'latin1');
      } catch (e: unknown) {
        this.current = undefined;
        this.onFree(this);
        throw e;
      }
      if (body === undefined || Buffer.isBuffer(body)) {
        this.stream.write(body?.length ? Buffer.concat([head, body]) : head);
        x.written = true;
        return;
      }
      this.stream.write(head);
      this.pipeBody(body, x, framing !== '');
    });
  }

  destroy(): void {
    this.alive = false;
    this.stream.destroy();
  }

  private pipeBody(body: Readable, x: InFlight, chunked: boolean): void {
    const s = this.stream;
    body.on('data', (c: Buffer) => {
      const ok = chunked ? writeChunk(s, c) : s.write(c);
      if (!ok) { body.pause(); s.once('drain', () => body.resume()); }
    });
    body.once('end', () => {
      if (chunked) s.write(LAST_CHUNK);
      x.written = true;
      this.maybeFree(x);
    });
    body.once('error', () => this.destroy());
  }

  private onHead(h: MessageHead): boolean {
    const x = this.current;
    if (!x) return false;
    if (h.status === 101 && h.upgrade) {
      x.answered = true;
      x.resolved = true;
      const trailers = Promise.resolve(undefined);
      this.switched = (raw) => x.resolve({ kind: 'response', res: { status: 101, headers: headerRecord(h.rawHeaders), body: raw, trailers } });
      return true;
    }
    if (h.status < 200) return false; // 1xx: the final answer follows
    x.answered = true;
    x.keepAlive = h.keepAlive;
    x.head = { status: h.status, headers: headerRecord(h.rawHeaders) };
    x.trailers = new Promise((r) => { x.setTrailers = r; });
    return x.method === 'HEAD';
  }

  /** The whole answer is here: handed over as one Buffer. */
  private resolveWhole(x: InFlight): void {
    x.resolved = true;
    const whole = x.chunks.length === 1 ? x.chunks[0]! : Buffer.concat(x.chunks);
    x.chunks = [];
    let body: Readable | undefined;
    x.resolve({
      kind: 'response',
      res: {
        status: x.head!.status, headers: x.head!.headers, whole, trailers: x.trailers!,
        get body(): Readable {
          if (!body) {
            body = new Readable({ read() {} });
            if (whole.length) body.push(whole);
            body.push(null);
          }
          return body;
        },
      },
    });
  }

  /** The answer goes on past the read that brought its head: handed over as a stream. */
  private resolveStreaming(x: InFlight): void {
    x.resolved = true;
    const stream = new ResponseBody(this);
    x.stream = stream;
    for (const c of x.chunks) stream.push(c);
    x.chunks = [];
    x.resolve({ kind: 'response', res: { status: x.head!.status, headers: x.head!.headers, body: stream, trailers: x.trailers! } });
  }

  private onComplete(t: string[]): void {
    const x = this.current;
    if (!x?.answered || this.switched) return; // the end of a 1xx, or of a 101 being handed over
    x.setTrailers?.(t.length ? headerRecord(t) : undefined);
    x.bodyDone = true;
    if (x.stream) x.stream.push(null);
    else if (!x.resolved) this.resolveWhole(x);
    this.maybeFree(x);
  }

  /** Both halves of the exchange are done: the connection is free, or it goes. */
  private maybeFree(x: InFlight): void {
    if (this.current !== x || !x.written || !x.bodyDone) return;
    this.current = undefined;
    if (x.keepAlive && this.alive) this.onFree(this);
    else this.destroy();
  }

  private fail(message: string): void {
    this.alive = false;
    const x = this.current;
    this.current = undefined;
    this.parser.close();
    this.stream.destroy();
    if (!x) return;
    if (!x.answered) x.resolve({ kind: x.reused ? 'connect-failed' : 'reset', message });
    else if (!x.bodyDone && !this.switched) {
      if (!x.resolved) this.resolveStreaming(x);
      x.setTrailers?.(undefined);
      destroyCut(x.stream!, Object.assign(new Error(message), { code: 'ECONNRESET' }));
    }
  }
}
