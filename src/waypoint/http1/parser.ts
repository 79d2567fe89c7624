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
//   after the body (chunked trailers) reach `complete()`. Node's binding hands trailer lines on
//   with the URL of the message they end: that URL is dropped with them, never prefixed to the
//   next request's target on the connection.
// - `head()` returning true tells the parser the message has no body (a response to HEAD);
//   returning 'pause' stops the parser right after that head: execute() returns an error with
//   code HPE_PAUSED whose bytesParsed is where the head ended, and after resume() the next
//   execute() goes on from there (the message's body, then the next messages).
// - `_http_common` is a Node internal: its slot numbers are checked when this file loads (a
//   Node whose binding moved refuses to start the codec, naming what is missing), and
//   test/unit/node-internals.test.ts checks the callbacks' arguments on the Node under test.
import { createRequire } from 'node:module';
import { AmbitError } from '../../core/errors.js';

interface NativeParser {
  initialize(kind: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(b: Buffer): number | Error;
  finish(): number | Error | undefined;
  resume(): void;
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
for (const slot of ['REQUEST', 'RESPONSE', 'kOnMessageBegin', 'kOnHeaders', 'kOnHeadersComplete', 'kOnBody', 'kOnMessageComplete', 'kOnExecute'] as const) {
  if (!Number.isInteger(HTTPParser?.[slot])) {
    throw new AmbitError('AMBIT_ERR_INTERNAL', `Node ${process.versions.node}'s _http_common has no HTTPParser.${slot}: the waypoint's HTTP/1.1 codec cannot drive llhttp`, {
      hint: 'run Ambit on the Node.js major that package.json engines names (npm run setup installs it)',
    });
  }
}

export const MAX_HEADER_BYTES = 16 * 1024;
/** llhttp's HPE_PAUSED: returned from on_headers_complete, it stops the parser after the head. */
const HPE_PAUSED = 21;

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
  /** Return true for "no body follows" (the answer to a HEAD request), 'pause' to stop parsing after this head. */
  head(h: MessageHead): boolean | 'pause';
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
    p[HTTPParser.kOnMessageBegin] = (): void => {
      this.pending = [];
      this.pendingUrl = '';
      ev.begin?.();
    };
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
      return skipBody === 'pause' ? HPE_PAUSED : skipBody ? 1 : 0;
    };
    p[HTTPParser.kOnBody] = (b: Buffer): void => ev.body(b);
    p[HTTPParser.kOnMessageComplete] = (): void => {
      const trailers = this.pending;
      this.pending = [];
      this.pendingUrl = '';
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

  /** Goes on after a head that paused the parser. */
  resume(): void {
    this.p.resume();
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
