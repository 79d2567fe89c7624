// Guards for the Node.js internals Ambit relies on. Each fails with a message naming the file
// that depends on the internal, so a Node upgrade that changes one is caught here rather than
// as garbled traffic:
// - `_http_common`'s HTTPParser (llhttp binding) and its callback slots, driven directly by
//   src/waypoint/http1/parser.ts;
// - Http2Stream#_writev, wrapped by src/waypoint/http-transport.ts for HTTP/1.1 carried over an
//   HTTP/2 stream (a tunnel), and what Http2Stream does with latin1 string chunks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { Http1Parser, type MessageHead } from '../../src/waypoint/http1/parser.js';
import { asHttpTransport } from '../../src/waypoint/http-transport.js';
import { readFileSync } from 'node:fs';

const NODE = process.versions.node;
const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { engines: { node: string } };
const PARSER = 'src/waypoint/http1/parser.ts';
const TRANSPORT = 'src/waypoint/http-transport.ts';

test('engines names the Node.js major this suite runs on', () => {
  const major = Number(NODE.split('.')[0]);
  const m = /^>=(\d+) <(\d+)$/.exec(pkg.engines.node);
  assert.ok(m, `package.json engines.node is "${pkg.engines.node}"; expected ">=N <M" naming the tested majors`);
  assert.ok(major >= Number(m[1]) && major < Number(m[2]), `Node ${NODE} is outside engines "${pkg.engines.node}": run the suite on a tested major, or test this one and widen engines`);
});

test("_http_common: the HTTPParser slots and methods the HTTP/1.1 codec drives", () => {
  const common = createRequire(import.meta.url)('_http_common') as { HTTPParser?: unknown; methods?: unknown };
  assert.ok(typeof common.HTTPParser === 'function', `Node ${NODE}: require('_http_common').HTTPParser is gone; ${PARSER} cannot drive llhttp any more`);
  const P = common.HTTPParser as unknown as Record<string, unknown> & { prototype: Record<string, unknown> };
  const slots = ['kOnMessageBegin', 'kOnHeaders', 'kOnHeadersComplete', 'kOnBody', 'kOnMessageComplete', 'kOnExecute'];
  for (const k of [...slots, 'REQUEST', 'RESPONSE']) {
    assert.ok(Number.isInteger(P[k]), `Node ${NODE}: HTTPParser.${k} is ${String(P[k])}, not a slot number; ${PARSER} assigns its callbacks by these`);
  }
  assert.equal(new Set(slots.map((k) => P[k])).size, slots.length, `Node ${NODE}: HTTPParser callback slots collide (${slots.map((k) => `${k}=${String(P[k])}`).join(', ')}); check ${PARSER}`);
  for (const m of ['initialize', 'execute', 'finish', 'resume', 'close']) {
    assert.equal(typeof P.prototype[m], 'function', `Node ${NODE}: HTTPParser#${m} is gone; ${PARSER} calls it`);
  }
  assert.ok(Array.isArray(common.methods) && common.methods.includes('GET') && common.methods.includes('CONNECT'), `Node ${NODE}: _http_common.methods is not the method table ${PARSER} maps numbers with`);
});

test('_http_common: each callback fires with the arguments the codec reads, in order', () => {
  const events: string[] = [];
  let head: MessageHead | undefined;
  let body = '';
  let trailers: string[] = [];
  const p = new Http1Parser('request', {
    begin: () => events.push('begin'),
    head: (h) => { events.push('head'); head = h; return false; },
    body: (b) => { events.push('body'); body += b.toString(); },
    complete: (t) => { events.push('complete'); trailers = t; },
  });
  // 40 header lines: more than llhttp hands over in one kOnHeadersComplete (the kOnHeaders path).
  const many = Array.from({ length: 40 }, (_, i) => `x-h${i}: v${i}\r\n`).join('');
  const msg = `POST /items?x=1 HTTP/1.1\r\nHost: shop\r\n${many}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n`;
  const used = p.execute(Buffer.from(msg));
  p.close();
  assert.equal(used, Buffer.byteLength(msg), `Node ${NODE}: HTTPParser#execute returned ${String(used)} for a valid request; see ${PARSER}`);
  assert.deepEqual(events.filter((e, i) => e !== events[i - 1]), ['begin', 'head', 'body', 'complete'], `Node ${NODE}: llhttp callbacks fired as ${events.join(',')}; ${PARSER} expects kOnMessageBegin, kOnHeadersComplete, kOnBody, kOnMessageComplete`);
  assert.ok(head, 'no head');
  assert.deepEqual(
    [head.method, head.url, head.versionMajor, head.versionMinor, head.keepAlive, head.upgrade, head.rawHeaders.length],
    ['POST', '/items?x=1', 1, 1, true, false, 2 * 42],
    `Node ${NODE}: kOnHeadersComplete's arguments moved (method, url, version, keep-alive, upgrade, headers); see ${PARSER}`,
  );
  assert.deepEqual([head.rawHeaders[0], head.rawHeaders[1], head.rawHeaders[82]], ['Host', 'shop', 'Transfer-Encoding'], `Node ${NODE}: header lines no longer arrive in order through kOnHeaders; see ${PARSER}`);
  assert.equal(body, 'hello');
  assert.deepEqual(trailers, ['X-Trailer', 't'], `Node ${NODE}: chunked trailers no longer reach kOnMessageComplete via kOnHeaders; see ${PARSER}`);
  const bad = new Http1Parser('request', { head: () => false, body: () => {}, complete: () => {} });
  const err = bad.execute(Buffer.from('GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n'));
  bad.close();
  assert.ok(err instanceof Error, `Node ${NODE}: llhttp accepted Content-Length with Transfer-Encoding; the smuggling defence of ${PARSER} is gone`);
});

test('_http_common: a head can pause the parser (HPE_PAUSED at the end of that head) and parsing resumes there', () => {
  const seen: string[] = [];
  const p = new Http1Parser('request', {
    head: (h) => { seen.push(`head ${h.url}`); return h.url === '/1' ? 'pause' : false; },
    body: (b) => seen.push(`body ${b.toString()}`),
    complete: () => seen.push('complete'),
  });
  const one = (i: number): string => `POST /${i} HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nb${i}`;
  const all = Buffer.from([0, 1, 2].map(one).join(''));
  const r = p.execute(all);
  const headEnd = one(0).length + one(1).length - 2;
  assert.ok(r instanceof Error && r.code === 'HPE_PAUSED' && r.bytesParsed === headEnd, `Node ${NODE}: returning HPE_PAUSED from kOnHeadersComplete gave ${String(r)} (${r instanceof Error ? `${r.code} at ${r.bytesParsed}` : ''}); ${PARSER}'s pipelining bound relies on it`);
  assert.deepEqual(seen, ['head /0', 'body b0', 'complete', 'head /1']);
  p.resume();
  assert.equal(p.execute(all.subarray(headEnd)), all.length - headEnd);
  p.close();
  assert.deepEqual(seen.slice(4), ['body b1', 'complete', 'head /2', 'body b2', 'complete']);
});

/** One HTTP/1.1 POST from node:http's client over an HTTP/2 CONNECT stream; what the far end read. */
async function http1OverHttp2Stream(wrap: (s: Duplex) => Duplex): Promise<string> {
  const server = http2.createServer();
  const seen = new Promise<string>((resolve) => {
    server.on('stream', (stream) => {
      stream.respond({ ':status': 200 });
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => {
        chunks.push(c);
        const s = Buffer.concat(chunks).toString('latin1');
        if (s.includes('body!') || s.length > 4096) resolve(s);
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const session = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  const agent = new http.Agent();
  (agent as unknown as { createConnection: () => Duplex }).createConnection = () => wrap(session.request({ ':method': 'CONNECT', ':authority': 'shop:80' }));
  const req = http.request({ host: 'shop', port: 80, path: '/', method: 'POST', agent, headers: { 'content-length': 5 } });
  req.on('error', () => {});
  req.end('body!');
  const timeout = new Promise<string>((resolve) => setTimeout(() => resolve('(nothing arrived in 5 s)'), 5000).unref());
  try {
    return await Promise.race([seen, timeout]);
  } finally {
    req.destroy();
    session.destroy();
    server.close();
  }
}

test('Http2Stream: the _writev that asHttpTransport wraps exists, and HTTP/1.1 over a stream arrives intact', async () => {
  const session = http2.connect('http://127.0.0.1:9');
  session.on('error', () => {});
  const stream = session.request({ ':method': 'CONNECT', ':authority': 'x:1' });
  stream.on('error', () => {});
  const writev = (stream as unknown as { _writev?: unknown })._writev;
  session.destroy();
  assert.equal(typeof writev, 'function', `Node ${NODE}: Http2Stream has no _writev; ${TRANSPORT} wraps it to hand it Buffers only — check how this Node writes string chunks to an Http2Stream`);
  const patched = await http1OverHttp2Stream((s) => asHttpTransport(s));
  assert.match(patched, /^POST \/ HTTP\/1\.1\r\n/, `Node ${NODE}: HTTP/1.1 written over an Http2Stream through asHttpTransport arrived as ${JSON.stringify(patched.slice(0, 40))}; see ${TRANSPORT}`);
  assert.ok(patched.endsWith('\r\n\r\nbody!'), `the head and body arrive whole: ${JSON.stringify(patched)}`);
});

test('Http2Stream: latin1 string chunks in _writev are written intact by this Node (Node 20 garbled them)', async () => {
  // Without asHttpTransport. Node 20 corrupted the first bytes of such a batch (read as
  // "HTTP/0.9" by curl); the conversion in asHttpTransport is what kept tunnels working there.
  const plain = await http1OverHttp2Stream((s) => {
    for (const m of ['setKeepAlive', 'setNoDelay', 'ref', 'unref']) {
      const r = s as unknown as Record<string, unknown>;
      if (typeof r[m] !== 'function') r[m] = function (this: unknown) { return this; };
    }
    return s;
  });
  assert.match(plain, /^POST \/ HTTP\/1\.1\r\n/, `Node ${NODE}'s Http2Stream garbles latin1 string chunks written with _writev again (${JSON.stringify(plain.slice(0, 24))}): keep the conversion in ${TRANSPORT}, and make sure every HTTP/1.1-over-stream path goes through asHttpTransport`);
});
