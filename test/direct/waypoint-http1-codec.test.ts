// The waypoint's own HTTP/1.1 codec on loopback sockets. Server side: raw bytes and curl as
// clients (pipelining, chunked bodies and trailers, HTTP/1.0, Expect: 100-continue, HEAD,
// malformed requests, CONNECT, protocol upgrades). Client side: against node:http and raw servers (keep-alive
// reuse counted at the server, idle timeout, a server that closes, interim 100, trailers,
// a reused connection that dies is retryable, a fresh one that dies is a reset).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock, systemClock, type Clock } from '../../src/core/clock.js';
import { waitFor } from '../helpers/wait.js';
import http from 'node:http';
import net from 'node:net';
import { execFile } from 'node:child_process';
import type { Readable } from 'node:stream';
import { serveHttp1, type Http1Request, type Http1Response } from '../../src/waypoint/http1/server.js';
import { Http1Client, type Exchange } from '../../src/waypoint/http1/client.js';
import { InvalidHeaderError } from '../../src/waypoint/http1/head.js';

const closers: (() => void)[] = [];
after(() => { for (const c of closers) c(); });

type Handler = (req: Http1Request, res: Http1Response) => void;

/** A TCP server whose connections are served by serveHttp1 with `handler`. */
async function codecServer(handler: Handler, bad: { status: number; code?: string }[] = []): Promise<number> {
  const server = net.createServer((s) => {
    serveHttp1(s, { request: handler, badRequest: (status, e) => bad.push({ status, code: e.code }) }, { clock: systemClock });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  closers.push(() => server.close());
  return (server.address() as net.AddressInfo).port;
}

/** Writes `text`, half-closes if asked, and collects everything until the server closes (or `ms`). */
function rawExchange(port: number, text: string | string[], opts: { ms?: number; endAfter?: boolean } = {}): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let got = '';
    const done = (): void => { clearTimeout(t); s.destroy(); resolve(got); };
    const t = setTimeout(done, opts.ms ?? 1500);
    s.on('data', (b) => { got += b.toString('latin1'); });
    s.on('close', done);
    s.on('error', done);
    const parts = (typeof text === 'string' ? [text] : text).map((p) => Buffer.from(p, 'latin1'));
    void (async () => {
      for (const p of parts) { s.write(p); await new Promise((r) => setTimeout(r, 20)); }
      if (opts.endAfter) s.end();
    })();
  });
}

function readAll(r: Readable): Promise<string> {
  return new Promise((resolve, reject) => {
    let t = '';
    r.on('data', (c: Buffer) => { t += c.toString('latin1'); });
    r.once('end', () => resolve(t));
    r.once('error', reject);
  });
}

const echo: Handler = (req, res) => {
  void readAll(req).then((body) => {
    const text = Buffer.from(`${req.method} ${req.url} ${req.httpVersion} body=${body} expect=${String(req.headers.expect)}`);
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(text.length) });
    res.end(text);
  });
};

test('server: pipelined requests are answered in order, even when the first is the slowest', async () => {
  const port = await codecServer((req, res) => {
    const delay = req.url === '/slow' ? 80 : 0;
    setTimeout(() => { res.writeHead(200, { 'content-length': String(req.url.length) }); res.end(Buffer.from(req.url)); }, delay);
  });
  const got = await rawExchange(port, 'GET /slow HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\nGET /c HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  const bodies = [...got.matchAll(/\r\n\r\n(\/[a-z]+)/g)].map((m) => m[1]);
  assert.deepEqual(bodies, ['/slow', '/b', '/c']);
  assert.match(got, /connection: close\r\n\r\n\/c$/);
});

test('server: requests split anywhere across reads parse the same (pipelined, chunked body, then a plain GET)', async () => {
  const port = await codecServer(echo);
  const text = 'POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n';
  for (let cut = 1; cut < text.length; cut += 5) {
    const got = await rawExchange(port, [text.slice(0, cut), text.slice(cut)]);
    assert.match(got, /POST \/a 1\.1 body=abcde[^]*GET \/b 1\.1 body=/, `split at ${cut}`);
  }
});

test('server: a chunked request body is read whole; an answer without length is chunked, with trailers', async () => {
  const port = await codecServer((req, res) => {
    void readAll(req).then((body) => {
      res.writeHead(200, { 'x-body': body });
      res.write(Buffer.from('part1-'));
      res.write(Buffer.from('part2'));
      res.addTrailers({ 'x-checksum': 'abc' });
      res.end();
    });
  });
  const got = await rawExchange(port, ['POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n', '6\r\n world\r\n0\r\n\r\n'], { endAfter: true });
  assert.match(got, /^HTTP\/1\.1 200 OK\r\n/);
  assert.match(got, /x-body: hello world\r\n/);
  assert.match(got, /transfer-encoding: chunked\r\n\r\n6\r\npart1-\r\n5\r\npart2\r\n0\r\nx-checksum: abc\r\n\r\n$/);
});

test('server: HTTP/1.0 gets a close-delimited answer; HTTP/1.0 keep-alive is honoured', async () => {
  const port = await codecServer((req, res) => { res.writeHead(200, {}); res.end(Buffer.from(`v${req.httpVersion}`)); });
  const plain = await rawExchange(port, 'GET / HTTP/1.0\r\n\r\n');
  assert.match(plain, /^HTTP\/1\.0 200 OK\r\n/);
  assert.doesNotMatch(plain, /transfer-encoding/);
  assert.match(plain, /connection: close\r\n\r\nv1\.0$/);
  const port2 = await codecServer((req, res) => { res.writeHead(200, { 'content-length': '2' }); res.end(Buffer.from('ok')); });
  const ka = await rawExchange(port2, 'GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n');
  assert.equal((ka.match(/HTTP\/1\.0 200 OK/g) ?? []).length, 2, ka);
  assert.match(ka, /connection: keep-alive\r\n/);
});

test('server: curl with Expect: 100-continue gets 100 first; the pipeline never sees the header', async () => {
  const port = await codecServer(echo);
  const out = await new Promise<string>((resolve, reject) => execFile('curl', ['-sS', '-v', '--http1.1', '-H', 'Expect: 100-continue', '--data-binary', 'x'.repeat(2000), `http://127.0.0.1:${port}/up`], (e, so, se) => (e ? reject(e) : resolve(`${so}\n${se}`))));
  assert.match(out, /< HTTP\/1\.1 100 Continue/);
  assert.match(out, /POST \/up 1\.1 body=x{2000} expect=undefined/);
});

test('server: HEAD is answered with the length and no body; the connection is reused', async () => {
  const port = await codecServer((req, res) => { res.writeHead(200, { 'content-length': '5' }); res.end(req.method === 'HEAD' ? undefined : Buffer.from('hello')); });
  const got = await rawExchange(port, 'HEAD / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  assert.match(got, /^HTTP\/1\.1 200 OK\r\ncontent-length: 5\r\n\r\nHTTP\/1\.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello$/);
});

test('server: malformed requests get 400 (431 for a huge head) and the connection ends; CONNECT gets 501', async () => {
  const bad: { status: number; code?: string }[] = [];
  let served = 0;
  const port = await codecServer((_q, res) => { served++; res.end(); }, bad);
  const smuggle = await rawExchange(port, 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n');
  assert.match(smuggle, /^HTTP\/1\.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n$/);
  const huge = await rawExchange(port, `GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
  assert.match(huge, /^HTTP\/1\.1 431 /);
  const garbage = await rawExchange(port, 'HELLO\r\n\r\n');
  assert.match(garbage, /^HTTP\/1\.1 400 /);
  const connect = await rawExchange(port, 'CONNECT example:443 HTTP/1.1\r\nHost: example:443\r\n\r\n');
  assert.match(connect, /^HTTP\/1\.1 501 /);
  assert.equal(served, 0);
  assert.deepEqual(bad.map((b) => b.status), [400, 431, 400]);
  assert.equal(bad[0]!.code, 'HPE_INVALID_TRANSFER_ENCODING');
});

test('server: an upgrade request holds what follows; 101 hands over the raw stream, another answer goes on as HTTP', async () => {
  const served: string[] = [];
  const port = await codecServer((req, res) => {
    served.push(req.url);
    if (req.upgrade && req.url === '/switch') {
      res.writeHead(101, { connection: 'upgrade', upgrade: 'echo' });
      const raw = res.switchProtocols(req);
      raw.on('data', (d: Buffer) => raw.write(Buffer.concat([Buffer.from('echo:'), d])));
      raw.resume();
      return;
    }
    const text = Buffer.from(`${req.url} upgrade=${req.upgrade}`);
    res.writeHead(req.upgrade ? 426 : 200, { 'content-length': String(text.length) });
    res.end(text);
  });
  // Bytes sent right behind the request are the new protocol's, not HTTP.
  const switched = await rawExchange(port, 'GET /switch HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nnot http at all', { ms: 400 });
  assert.equal(switched, 'HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\necho:not http at all');
  const refused = await rawExchange(port, 'GET /no HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nGET /next HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  assert.match(refused, /^HTTP\/1\.1 426 [^]*\/no upgrade=true[^]*HTTP\/1\.1 200 OK[^]*\/next upgrade=false$/);
  assert.deepEqual(served, ['/switch', '/no', '/next'], 'each request served once');
});

test('server: a header value with CR/LF from a route is refused before a byte is written', async () => {
  let error: unknown;
  const port = await codecServer((_q, res) => {
    try { res.writeHead(200, { 'x-evil': 'a\r\nset-cookie: x=1' }); } catch (e: unknown) { error = e; }
    res.writeHead(500, { 'content-length': '0' });
    res.end();
  });
  const got = await rawExchange(port, 'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  assert.ok(error instanceof InvalidHeaderError);
  assert.match(got, /^HTTP\/1\.1 500 /);
  assert.doesNotMatch(got, /set-cookie/);
});

// ---- client ----

async function nodeServer(handler: http.RequestListener, keepAliveTimeoutMs = 5000): Promise<{ port: number; connections: () => number; open: () => number }> {
  let connections = 0;
  let open = 0;
  const server = http.createServer(handler);
  server.keepAliveTimeout = keepAliveTimeoutMs;
  server.on('connection', (s: net.Socket) => { connections++; open++; s.once('close', () => open--); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  closers.push(() => { server.closeAllConnections(); server.close(); });
  return { port: (server.address() as net.AddressInfo).port, connections: () => connections, open: () => open };
}

function client(port: number, idleTimeoutMs = 4000, clock: Clock = systemClock): Http1Client {
  const c = new Http1Client({ open: () => new Promise((resolve, reject) => { const s = net.connect(port, '127.0.0.1', () => resolve(s)); s.once('error', reject); }), clock, maxIdle: 8, idleTimeoutMs });
  closers.push(() => c.close());
  return c;
}

async function body(x: Exchange): Promise<{ status: number; text: string; headers: Record<string, unknown> }> {
  assert.equal(x.kind, 'response', JSON.stringify(x));
  if (x.kind !== 'response') throw new Error('no response');
  return { status: x.res.status, text: await readAll(x.res.body), headers: x.res.headers };
}

test('client: keep-alive requests share one connection; bodies by length and by chunks', async () => {
  const srv = await nodeServer((req, res) => {
    let b = '';
    req.on('data', (c: Buffer) => { b += c; });
    req.on('end', () => {
      if (req.url === '/chunked') { res.write('a'); res.write('b'); res.end('c'); return; }
      res.end(`${req.method} ${req.url} ${req.headers.host} cl=${req.headers['content-length']} te=${req.headers['transfer-encoding']} body=${b}`);
    });
  });
  const c = client(srv.port);
  const r1 = await body(await c.request('GET', '/one', 'svc:80', { 'x-a': '1' }, undefined));
  assert.equal(r1.text, 'GET /one svc:80 cl=undefined te=undefined body=');
  const r2 = await body(await c.request('POST', '/two', 'svc:80', { 'content-length': '99' }, Buffer.from('hello')));
  assert.equal(r2.text, 'POST /two svc:80 cl=5 te=undefined body=hello');
  const { PassThrough } = await import('node:stream');
  const streamed = new PassThrough();
  const p3 = c.request('PUT', '/three', 'svc:80', {}, streamed);
  streamed.write('str'); streamed.end('eamed');
  const r3 = await body(await p3);
  assert.equal(r3.text, 'PUT /three svc:80 cl=undefined te=chunked body=streamed');
  const r4 = await body(await c.request('GET', '/chunked', 'svc:80', {}, undefined));
  assert.equal(r4.text, 'abc');
  const r5 = await body(await c.request('DELETE', '/five', 'svc:80', {}, undefined));
  assert.match(r5.text, /^DELETE \/five/);
  assert.equal(srv.connections(), 1);
  assert.equal(c.connectionsMade, 1);
});

test('client: idle connections close after idleTimeoutMs; a server-closed one is not reused', async () => {
  const srv = await nodeServer((_q, res) => res.end('ok'), 100);
  const c = client(srv.port, 150);
  await body(await c.request('GET', '/', 'a', {}, undefined));
  await new Promise((r) => setTimeout(r, 300)); // the server's 100 ms keep-alive timeout closed it
  assert.equal(srv.open(), 0);
  assert.equal((await body(await c.request('GET', '/', 'a', {}, undefined))).text, 'ok');
  assert.equal(srv.connections(), 2);
  const srv2 = await nodeServer((_q, res) => res.end('ok'));
  const clock = new FakeClock();
  const c2 = client(srv2.port, 100, clock);
  await body(await c2.request('GET', '/', 'a', {}, undefined));
  assert.equal(srv2.open(), 1);
  await clock.advance(99);
  assert.equal(srv2.open(), 1, 'still open before its idle timeout');
  await clock.advance(2); // our own idle timeout
  await waitFor('the idle connection closed', () => srv2.open() === 0, 2000);
});

test('client: HEAD reads no body; 100 Continue is skipped; trailers arrive', async () => {
  const srv = await nodeServer((req, res) => {
    if (req.url === '/continue') { res.writeContinue(); setTimeout(() => res.end('final'), 20); return; }
    if (req.url === '/trailers') { res.writeHead(200, { trailer: 'x-sum' }); res.write('data'); res.addTrailers({ 'x-sum': '42' }); res.end(); return; }
    res.writeHead(200, { 'content-length': '5' }); res.end(req.method === 'HEAD' ? undefined : 'hello');
  });
  const c = client(srv.port);
  const head = await body(await c.request('HEAD', '/', 'a', {}, undefined));
  assert.equal(head.text, '');
  assert.equal(head.headers['content-length'], '5');
  assert.equal((await body(await c.request('GET', '/', 'a', {}, undefined))).text, 'hello');
  assert.equal((await body(await c.request('POST', '/continue', 'a', { expect: '100-continue' }, Buffer.from('x')))).text, 'final');
  const t = await c.request('GET', '/trailers', 'a', { te: 'trailers' }, undefined);
  assert.equal(t.kind, 'response');
  if (t.kind !== 'response') return;
  assert.equal(await readAll(t.res.body), 'data');
  assert.deepEqual(await t.res.trailers, { 'x-sum': '42' });
  assert.equal(srv.connections(), 1);
});

test('client: a reused connection that dies unanswered is connect-failed (retryable); a fresh one is reset', async () => {
  let n = 0;
  const server = net.createServer((s) => {
    s.on('data', () => {
      n++;
      if (n === 1) s.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
      else s.destroy(); // every later request: no answer
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  closers.push(() => server.close());
  const c = client((server.address() as net.AddressInfo).port);
  assert.equal((await body(await c.request('GET', '/', 'a', {}, undefined))).text, 'ok');
  const reused = await c.request('GET', '/', 'a', {}, undefined);
  assert.equal(reused.kind, 'connect-failed');
  const fresh = await c.request('GET', '/', 'a', {}, undefined);
  assert.equal(fresh.kind, 'reset');
  assert.equal(c.connectionsMade, 2);
});

test('client: a response body cut short ends in an error for its reader, and the connection goes', async () => {
  const server = net.createServer((s) => { s.once('data', () => { s.write('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial'); setTimeout(() => s.destroy(), 30); }); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  closers.push(() => server.close());
  const c = client((server.address() as net.AddressInfo).port);
  const x = await c.request('GET', '/', 'a', {}, undefined);
  assert.equal(x.kind, 'response');
  if (x.kind !== 'response') return;
  await assert.rejects(readAll(x.res.body), /closed|aborted|ECONNRESET/);
});

test('client: an abandoned exchange (a timeout) closes its unanswered connection', async () => {
  let closed = false;
  const server = net.createServer((s) => { s.on('data', () => {}); s.once('close', () => { closed = true; }); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  closers.push(() => server.close());
  const c = client((server.address() as net.AddressInfo).port);
  const abort = new AbortController();
  const x = c.request('GET', '/never', 'a', {}, undefined, abort.signal);
  await new Promise((r) => setTimeout(r, 50));
  abort.abort();
  assert.equal((await x).kind, 'reset');
  await new Promise((r) => setTimeout(r, 50));
  assert.ok(closed, 'the server saw the connection close');
});

/** A codec server with short limits, reporting what it hit. */
async function limitedServer(handler: Handler, limits: Partial<import('../../src/waypoint/http1/server.js').Http1Limits>, hits: string[]): Promise<number> {
  const { DEFAULT_HTTP1_LIMITS } = await import('../../src/waypoint/http1/server.js');
  const server = net.createServer((s) => {
    serveHttp1(s, { request: handler, limitHit: (l) => hits.push(l) }, { clock: systemClock, limits: { ...DEFAULT_HTTP1_LIMITS, ...limits } });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  closers.push(() => server.close());
  return (server.address() as net.AddressInfo).port;
}

test('server limits: a head that trickles in past the header timeout gets 408 and the connection ends', async () => {
  const hits: string[] = [];
  const port = await limitedServer(echo, { headerTimeoutMs: 150 }, hits);
  const got = await rawExchange(port, ['GET / HTTP/1.1\r\n', 'Host: a\r\n'], { ms: 1500 });
  assert.match(got, /^HTTP\/1\.1 408 /);
  assert.deepEqual(hits, ['header_timeout']);
});

test('server limits: a body that stops making progress cuts the connection; an idle keep-alive connection is closed', async () => {
  const hits: string[] = [];
  const tolerant: Handler = (req, res) => {
    readAll(req).then((body) => { res.writeHead(200, { 'content-length': String(body.length) }); res.end(Buffer.from(body)); }, () => res.destroy());
  };
  const port = await limitedServer(tolerant, { bodyProgressTimeoutMs: 150, idleTimeoutMs: 200 }, hits);
  const t0 = Date.now();
  const stalled = await rawExchange(port, 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc', { ms: 2000 });
  assert.equal(stalled, '');
  assert.ok(Date.now() - t0 < 1500, 'cut at the deadline, not left to hang');
  const idle = await rawExchange(port, 'GET /x HTTP/1.1\r\nHost: a\r\n\r\n', { ms: 2000 });
  assert.match(idle, /^HTTP\/1\.1 200 /);
  assert.deepEqual(hits.sort(), ['body_timeout', 'idle_timeout']);
});

test('server limits: at most maxPipelined requests wait; the rest stay unread until answers go out, and all are answered in order', async () => {
  const hits: string[] = [];
  const seen: string[] = [];
  const slow: Handler = (req, res) => {
    seen.push(req.url);
    setTimeout(() => { req.resume(); res.writeHead(200, { 'content-length': String(req.url.length) }); res.end(Buffer.from(req.url)); }, 20);
  };
  const port = await limitedServer(slow, { maxPipelined: 3 }, hits);
  const requests = Array.from({ length: 10 }, (_, i) => `GET /r${i} HTTP/1.1\r\nHost: a\r\n\r\n`).join('');
  const got = await rawExchange(port, requests, { ms: 2500 });
  assert.equal((got.match(/HTTP\/1\.1 200/g) ?? []).length, 10);
  assert.deepEqual(seen, Array.from({ length: 10 }, (_, i) => `/r${i}`));
  assert.ok(hits.includes('pipelined'));
});
