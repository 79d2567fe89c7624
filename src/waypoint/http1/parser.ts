// HTTP/1.1 message parsing for the waypoint's own HTTP/1.1 codec: Node's llhttp binding (the
// parser node:http itself uses), driven directly, without node:http's request, response and
// agent objects around it.
//
// Invariants:
// - Strict parsing (no lenient flags): a request with both Content-Length and
//   Transfer-Encoding, a bad chunk size or an invalid header is an error, never guessed at —
//   the request-smuggling defences of node:http are kept.
// - Header lines reach `head()` in the order received, names as sent; a head longer than
//   llhttp flushes in one callback (over 32 lines) is put together first. Lines that come
//   after the body (chunked trailers) reach `complete()`.
// - `head()` returning true tells the parser the message has no body (a response to HEAD).
import { createRequire } from 'node:module';

interface NativeParser {
  initialize(kind: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(b: Buffer): number | Error;
  finish(): number | Error | undefined;
  close(): void;
  [key: number]: unknown;
}
interface ParserBinding {
  new (): NativeParser;
  REQUEST: number;
  RESPONSE: number;
  kOnMessageBegin: number;
  kOnHeaders: number;
  kOnHeadersComplete: number;
  kOnBody: number;
  kOnMessageComplete: number;
  kOnExecute: number;
}

const common = createRequire(import.meta.url)('_http_common') as { HTTPParser: ParserBinding; methods: string[] };
const { HTTPParser, methods } = common;

export const MAX_HEADER_BYTES = 16 * 1024;

export interface MessageHead {
  versionMajor: number;
  versionMinor: number;
  /** name, value, name, value, ... */
  rawHeaders: string[];
  /** Requests only. */
  method: string;
  url: string;
  /** Responses only. */
  status: number;
  statusText: string;
  /** Upgrade header or CONNECT: the bytes after the head are not HTTP any more. */
  upgrade: boolean;
  /** What the peer's version and Connection header allow. */
  keepAlive: boolean;
}

export interface ParserEvents {
  /** The first byte of a message was read (its head is now being read). */
  begin?(): void;
  /** Return true for "no body follows" (the answer to a HEAD request). */
  head(h: MessageHead): boolean;
  body(chunk: Buffer): void;
  complete(trailers: string[]): void;
}

export interface ParseError extends Error {
  code?: string;
  bytesParsed?: number;
}

export class Http1Parser {
  private readonly p: NativeParser;
  private pending: string[] = [];
  private pendingUrl = '';
  private closed = false;

  constructor(kind: 'request' | 'response', ev: ParserEvents) {
    const p = new HTTPParser();
    p.initialize(kind === 'request' ? HTTPParser.REQUEST : HTTPParser.RESPONSE, {}, MAX_HEADER_BYTES, 0);
    if (ev.begin) p[HTTPParser.kOnMessageBegin] = ev.begin;
    p[HTTPParser.kOnHeaders] = (headers: string[], url: string): void => {
      for (const h of headers) this.pending.push(h);
      this.pendingUrl += url;
    };
    p[HTTPParser.kOnHeadersComplete] = (major: number, minor: number, headers: string[] | undefined, method: number | undefined, url: string | undefined, status: number | undefined, statusText: string | undefined, upgrade: boolean, keepAlive: boolean): number => {
      const rawHeaders = headers ?? this.pending;
      const fullUrl = url ?? this.pendingUrl;
      this.pending = [];
      this.pendingUrl = '';
      const skipBody = ev.head({
        versionMajor: major, versionMinor: minor, rawHeaders, method: method === undefined ? '' : (methods[method] ?? ''), url: fullUrl,
        status: status ?? 0, statusText: statusText ?? '', upgrade, keepAlive,
      });
      return skipBody ? 1 : 0;
    };
    p[HTTPParser.kOnBody] = (b: Buffer): void => ev.body(b);
    p[HTTPParser.kOnMessageComplete] = (): void => {
      const trailers = this.pending;
      this.pending = [];
      ev.complete(trailers);
    };
    this.p = p;
  }

  /**
   * Feeds bytes; returns how many were used (fewer than given when the parser stopped after a
   * message with an Upgrade header), or an error: the stream is not valid HTTP/1.1 and must be closed.
   */
  execute(b: Buffer): number | ParseError {
    return this.p.execute(b);
  }

  /** The peer closed: completes a message that ends at close; an error if one was cut short. */
  finish(): ParseError | undefined {
    const r = this.p.finish();
    return r instanceof Error ? r : undefined;
  }

  /** Frees the native parser; deferred, as this may run inside one of its own callbacks. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const p = this.p;
    setImmediate(() => p.close());
  }
}

/** Header lines as node:http presents them: lower-case names, repeated ones joined (with "," as Envoy joins them, so `request.headers[...]` conditions see one value). */
export function headerRecord(raw: string[]): Record<string, string | string[]> {
  const h: Record<string, string | string[]> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const k = raw[i]!.toLowerCase();
    const v = raw[i + 1]!;
    const cur = h[k];
    if (cur === undefined) h[k] = k === 'set-cookie' ? [v] : v;
    else if (Array.isArray(cur)) cur.push(v);
    else if (!SINGLE.has(k)) h[k] = `${cur}${k === 'cookie' ? '; ' : ','}${v}`;
  }
  return h;
}

/** Headers node:http keeps the first of when repeated. */
const SINGLE = new Set(['content-type', 'content-length', 'user-agent', 'referer', 'host', 'authorization', 'proxy-authorization',
  'if-modified-since', 'if-unmodified-since', 'from', 'location', 'max-forwards', 'retry-after', 'etag', 'last-modified', 'server', 'age', 'expires']);
