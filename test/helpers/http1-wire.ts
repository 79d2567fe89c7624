// HTTP/1.1 on the wire, for property tests of the waypoint's codec: generators of valid
// requests (in many legal spellings) and of request-smuggling shapes, the bytes they make,
// what the L7 pipeline must see of them, and a strict reader of the answers that came back.
// Independent of the codec under test: nothing here imports src/.
import fc from 'fast-check';

/** How the test's handler answers a request (varies the codec's paths). */
export type AnswerMode = 'read' | 'early' | 'stream';

export interface WireRequest {
  method: string;
  target: string;
  /** Header lines before the framing ones, names as sent (Host among them). */
  headers: [string, string][];
  /** Optional whitespace around each value: [before, after]. */
  ows: [string, string];
  framing: 'none' | 'length' | 'chunked';
  body: Buffer;
  /** Chunked: the size of each chunk (they add up to body.length). */
  chunkSizes: number[];
  chunkExtension: string;
  /** Chunked: trailer lines after the last chunk. */
  trailers: [string, string][];
  sizeUpperCase: boolean;
  expectContinue: boolean;
  close: boolean;
  answer: AnswerMode;
}

/** What the pipeline must be handed for a request. */
export interface SeenRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  /** latin1; '(unread)' when the handler answered without reading it. */
  body: string;
}


/** A name in random letter case (header names are case-insensitive). */
function anyCase(name: string): fc.Arbitrary<string> {
  return fc.array(fc.boolean(), { minLength: name.length, maxLength: name.length })
    .map((up) => [...name].map((c, i) => (up[i] ? c.toUpperCase() : c.toLowerCase())).join(''));
}

/** A header value: visible ASCII, inner spaces and tabs, obs-text; no leading or trailing whitespace. */
const headerValue = fc.array(fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 0x21, max: 0x7e }) },
  { weight: 1, arbitrary: fc.constantFrom(0x20, 0x09) },
  { weight: 1, arbitrary: fc.integer({ min: 0x80, max: 0xff }) },
), { maxLength: 40 }).map((codes) => String.fromCharCode(...codes).replace(/^[ \t]+|[ \t]+$/g, ''));

const EXTRA_NAMES = ['x-a', 'x-request-id', 'accept', 'user-agent', 'cookie', 'authorization', 'x-forwarded-for', 'content-type', 'accept-encoding', 'x-b3-traceid', 'te'];

const extraHeaders: fc.Arbitrary<[string, string][]> = fc.uniqueArray(fc.constantFrom(...EXTRA_NAMES), { maxLength: 6 })
  .chain((names) => fc.tuple(...names.map((n) => fc.tuple(anyCase(n), n === 'te' ? fc.constant('trailers') : headerValue))))
  .map((pairs) => pairs as [string, string][]);

const pathChars = fc.constantFrom(...'abcXYZ019-._~!$&\'()*+,;=:@/'.split(''), '%2e', '%2F', '%41', '%00', '..', '//');
const originTarget = fc.tuple(fc.array(pathChars, { maxLength: 16 }), fc.option(fc.array(fc.constantFrom('a', '=', '&', '/', '?', '%20', '..'), { maxLength: 8 })))
  .map(([p, q]) => `/${p.join('')}${q === null ? '' : `?${q.join('')}`}`);
const target = fc.oneof(
  { weight: 6, arbitrary: originTarget },
  { weight: 1, arbitrary: originTarget.map((p) => `http://echo.demo:8080${p}`) },
);

const hostValue = fc.constantFrom('a', 'echo.demo.svc.cluster.local:8080', '10.0.0.1', '[fd00::1]:80', 'x');

/** Sizes that add up to `n`, each > 0. */
function chunking(n: number): fc.Arbitrary<number[]> {
  if (n === 0) return fc.constant([]);
  return fc.uniqueArray(fc.integer({ min: 1, max: Math.max(1, n - 1) }), { maxLength: Math.min(6, n - 1) }).map((cuts) => {
    const points = [...new Set(cuts.filter((c) => c < n))].sort((a, b) => a - b);
    const sizes: number[] = [];
    let prev = 0;
    for (const c of [...points, n]) { sizes.push(c - prev); prev = c; }
    return sizes;
  });
}

/** A valid request in one of its many legal spellings. */
export const wireRequest: fc.Arbitrary<WireRequest> = fc.record({
  method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'),
  target,
  host: fc.tuple(anyCase('host'), hostValue),
  extra: extraHeaders,
  multi: fc.option(fc.tuple(headerValue, headerValue)),
  hostAt: fc.nat(),
  ows: fc.tuple(fc.constantFrom('', ' ', '\t', '  '), fc.constantFrom('', '', ' ', '\t ')),
  framing: fc.constantFrom('none', 'length', 'chunked'),
  body: fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
  chunkExtension: fc.constantFrom('', '', ';a=b', ';name="v a l"', ';x'),
  trailers: fc.array(fc.tuple(anyCase('x-trailer'), headerValue), { maxLength: 2 }),
  sizeUpperCase: fc.boolean(),
  expectContinue: fc.boolean(),
  close: fc.boolean(),
  answer: fc.constantFrom<AnswerMode>('read', 'read', 'early', 'stream'),
}).chain((r) => {
  const body = r.framing === 'none' ? Buffer.alloc(0) : r.body;
  return chunking(body.length).map((chunkSizes): WireRequest => {
    const headers = [...r.extra];
    if (r.multi) headers.push(['X-Multi', r.multi[0]], ['x-multi', r.multi[1]]);
    headers.splice(r.hostAt % (headers.length + 1), 0, r.host);
    return {
      method: r.method, target: r.target, headers, ows: r.ows, framing: r.framing, body, chunkSizes,
      chunkExtension: r.chunkExtension, trailers: r.framing === 'chunked' ? r.trailers : [], sizeUpperCase: r.sizeUpperCase,
      // A HEAD answer has no body for the reader to frame, so no early answer races it.
      expectContinue: r.expectContinue, close: r.close, answer: r.method === 'HEAD' && r.answer === 'stream' ? 'read' : r.answer,
    };
  });
});

function line(name: string, value: string, ows: [string, string]): string {
  return `${name}:${ows[0]}${value}${ows[1]}\r\n`;
}

/** The bytes of a request (latin1: every char one byte). */
export function requestBytes(r: WireRequest): Buffer {
  let head = `${r.method} ${r.target} HTTP/1.1\r\n`;
  for (const [n, v] of r.headers) head += line(n, v, r.ows);
  if (r.framing === 'length') head += line('Content-Length', String(r.body.length), r.ows);
  // llhttp refuses a tab after "chunked" (a space passes): strict, and safe, so not varied here.
  if (r.framing === 'chunked') head += line('Transfer-Encoding', 'chunked', [r.ows[0], r.ows[1].replace(/\t/g, ' ')]);
  if (r.expectContinue) head += line('Expect', '100-continue', r.ows);
  if (r.close) head += line('Connection', 'close', r.ows);
  head += '\r\n';
  const parts: Buffer[] = [Buffer.from(head, 'latin1')];
  if (r.framing === 'length') parts.push(r.body);
  if (r.framing === 'chunked') {
    let at = 0;
    for (const size of r.chunkSizes) {
      const hex = size.toString(16);
      parts.push(Buffer.from(`${r.sizeUpperCase ? hex.toUpperCase() : hex}${r.chunkExtension}\r\n`, 'latin1'), r.body.subarray(at, at + size), Buffer.from('\r\n'));
      at += size;
    }
    let last = `0${r.chunkExtension}\r\n`;
    for (const [n, v] of r.trailers) last += `${n}: ${v}\r\n`;
    parts.push(Buffer.from(`${last}\r\n`, 'latin1'));
  }
  return Buffer.concat(parts);
}

/** The request the pipeline must see: header names lower-cased, repeats joined with ",", Expect answered by the codec. */
export function expectedSeen(r: WireRequest): SeenRequest {
  const headers: Record<string, string> = {};
  const add = (n: string, v: string): void => {
    const k = n.toLowerCase();
    headers[k] = headers[k] === undefined ? v : `${headers[k]},${v}`;
  };
  for (const [n, v] of r.headers) add(n, v);
  if (r.framing === 'length') add('content-length', String(r.body.length));
  if (r.framing === 'chunked') add('transfer-encoding', 'chunked');
  if (r.close) add('connection', 'close');
  return { method: r.method, url: r.target, headers, body: r.answer === 'early' ? '(unread)' : r.body.toString('latin1') };
}

/** Cut points inside `n` bytes: each piece is written (and read) separately. */
export function splitPoints(n: number): fc.Arbitrary<number[]> {
  return fc.uniqueArray(fc.integer({ min: 1, max: Math.max(1, n - 1) }), { maxLength: 12 })
    .map((cuts) => cuts.filter((c) => c < n).sort((a, b) => a - b));
}

export function pieces(bytes: Buffer, cuts: readonly number[]): Buffer[] {
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of [...cuts, bytes.length]) {
    if (c > prev) out.push(bytes.subarray(prev, c));
    prev = c;
  }
  return out;
}

// ---- reading the answers ----

export interface ReadResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Interim 100 responses read before it. */
  continues: number;
}

/**
 * Reads a stream of responses strictly: each a status line, header lines, and a body framed by
 * content-length or chunks (none for HEAD and 1xx/204/304). `methods` says which request each
 * answers. Throws at the first byte that does not fit; returns the responses and what is left.
 */
export function readResponses(text: string, methods: readonly string[]): { responses: ReadResponse[]; rest: string } {
  const responses: ReadResponse[] = [];
  let at = 0;
  let continues = 0;
  const lineAt = (): string => {
    const end = text.indexOf('\r\n', at);
    if (end < 0) throw new Error(`cut-short line at byte ${at}: ${JSON.stringify(text.slice(at, at + 80))}`);
    const l = text.slice(at, end);
    at = end + 2;
    return l;
  };
  while (at < text.length && responses.length < methods.length) {
    const status = /^HTTP\/1\.[01] (\d{3}) [^\r\n]*$/.exec(lineAt());
    if (!status) throw new Error(`not a status line at byte ${at}: ${JSON.stringify(text.slice(Math.max(0, at - 60), at + 40))}`);
    const code = Number(status[1]);
    const headers: Record<string, string> = {};
    for (let l = lineAt(); l !== ''; l = lineAt()) {
      const m = /^([^:\s]+): ?(.*)$/.exec(l);
      if (!m) throw new Error(`bad header line ${JSON.stringify(l)}`);
      headers[m[1]!.toLowerCase()] = m[2]!;
    }
    if (code >= 100 && code < 200) { continues++; continue; }
    const method = methods[responses.length]!;
    let body = '';
    if (method !== 'HEAD' && code !== 204 && code !== 304) {
      if (headers['content-length'] !== undefined) {
        const n = Number(headers['content-length']);
        if (at + n > text.length) throw new Error('body cut short');
        body = text.slice(at, at + n);
        at += n;
      } else if (headers['transfer-encoding'] === 'chunked') {
        for (;;) {
          const sizeLine = lineAt();
          if (!/^[0-9a-f]+$/.test(sizeLine)) throw new Error(`bad chunk size line ${JSON.stringify(sizeLine)}`);
          const n = parseInt(sizeLine, 16);
          if (n === 0) { while (lineAt() !== '') { /* trailers */ } break; }
          body += text.slice(at, at + n);
          at += n;
          if (text.slice(at, at + 2) !== '\r\n') throw new Error(`chunk not followed by CRLF at byte ${at}: ${JSON.stringify(text.slice(at, at + 40))}`);
          at += 2;
        }
      } else {
        body = text.slice(at);
        at = text.length;
      }
    }
    responses.push({ status: code, headers, body, continues });
    continues = 0;
  }
  return { responses, rest: text.slice(at) };
}

// ---- smuggling shapes ----

/** A request that a strict HTTP/1.1 server must refuse (400), by the flaw named. */
export interface BadShape { name: string; text: string }

const H = 'Host: a\r\n';
const anyCaseName = (s: string): fc.Arbitrary<string> => anyCase(s);

/** Request-smuggling and framing flaws, each in a few spellings. */
export const badShape: fc.Arbitrary<BadShape> = fc.oneof(
  // Content-Length and Transfer-Encoding together, in either order.
  fc.tuple(anyCaseName('content-length'), anyCaseName('transfer-encoding'), fc.boolean(), fc.nat({ max: 9 })).map(([cl, te, clFirst, n]) => {
    const a = `${cl}: ${n}\r\n`;
    const b = `${te}: chunked\r\n`;
    return { name: 'CL+TE', text: `POST / HTTP/1.1\r\n${H}${clFirst ? a + b : b + a}\r\n0\r\n\r\n` };
  }),
  // Two Content-Length headers (same or different values), or one with a list.
  fc.tuple(fc.nat({ max: 20 }), fc.nat({ max: 20 }), fc.constantFrom('two', 'list')).map(([x, y, how]) => ({
    name: `two CLs (${how})`,
    text: `POST / HTTP/1.1\r\n${H}${how === 'two' ? `Content-Length: ${x}\r\nContent-Length: ${y}\r\n` : `Content-Length: ${x}, ${y}\r\n`}\r\n${'z'.repeat(Math.max(x, y))}`,
  })),
  // Content-Length that is not a plain decimal.
  fc.constantFrom('+3', '-1', '0x3', '3 3', '3.0', '', ' ', '99999999999999999999999', '３').map((v) => ({ name: `bad CL ${JSON.stringify(v)}`, text: `POST / HTTP/1.1\r\n${H}Content-Length: ${v}\r\n\r\nabc` })),
  // obs-fold (a header line continued on the next), on any header including the framing ones.
  fc.tuple(fc.constantFrom('X-A: a', 'Transfer-Encoding:', 'Content-Length: 1', 'Host: b'), fc.constantFrom(' ', '\t'), fc.constantFrom('b', 'chunked', '0')).map(([first, ws, cont]) => ({
    name: 'obs-fold', text: `POST / HTTP/1.1\r\n${first.startsWith('Host') ? '' : H}${first}\r\n${ws}${cont}\r\n\r\n0\r\n\r\n`,
  })),
  // Transfer-Encoding that does not end in chunked, or is spelled loosely.
  fc.constantFrom('identity', 'chunked, identity', 'xchunked', 'chunked\x0b', '\x0bchunked', 'chunk', 'chunked;q=1', '"chunked"').map((v) => ({
    name: `TE ${JSON.stringify(v)}`, text: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: ${v}\r\n\r\n0\r\n\r\n`,
  })),
  fc.constant({ name: 'two TE', text: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n` }),
  fc.constant({ name: 'space before colon', text: `POST / HTTP/1.1\r\n${H}Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n` }),
  // Bad chunk sizes and chunk framing.
  fc.constantFrom('g', '-1', '0x3', '3 ', ' 3', 'ffffffffffffffffff', '', '3\n', '+3').map((size) => ({
    name: `chunk size ${JSON.stringify(size)}`, text: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n${size}\r\nabc\r\n0\r\n\r\n`,
  })),
  fc.constantFrom('3\r\nabcd\r\n', '3\r\nab\r\n', '3\nabc\r\n', '3\r\nabc\n', '3;a\nb\r\nabc\r\n', '3\r\nabc\r\n0\r\nContent-Length: 5\r\n\r\n').map((chunks) => ({
    name: `chunk framing ${JSON.stringify(chunks)}`, text: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n${chunks}0\r\n\r\n`,
  })),
  // Bare LF or bare CR where CRLF is required; control bytes in a header.
  fc.constantFrom(
    `GET / HTTP/1.1\n${H}\n`, `GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n`, `GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n`,
    `GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n`, `GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n`, `GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n`,
    `GET / HTTP/1.1\r\nHost: a\r\nX Y: b\r\n\r\n`, `GET / HTTP/1.1\r\n Host: a\r\n\r\n`, `GET / HTTP/1.1\r\nHost: a\r\n: v\r\n\r\n`,
    `GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n`, `GET /a\x01b HTTP/1.1\r\n${H}\r\n`, `GET /a b HTTP/1.1\r\n${H}\r\n`,
    `GET / HTTP/1.1 \r\n${H}\r\n`, `GET / HTTP/1.2\r\n${H}\r\n`, `get / HTTP/1.1\r\n${H}\r\n`, `GET / HTTP/1.1\r\n${H}\r\r\n`,
  ).map((text) => ({ name: `line/byte ${JSON.stringify(text.slice(0, 30))}`, text })),
  // Host: none in HTTP/1.1, or two.
  fc.constantFrom(`GET / HTTP/1.1\r\n\r\n`, `GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n`, `GET / HTTP/1.1\r\nHost: a\r\nhOST: a\r\n\r\n`).map((text) => ({ name: 'Host count', text })),
  // A head larger than the limit.
  fc.integer({ min: 17 * 1024, max: 40 * 1024 }).map((n) => ({ name: 'head over the limit', text: `GET / HTTP/1.1\r\n${H}X-Big: ${'a'.repeat(n)}\r\n\r\n` })),
);

