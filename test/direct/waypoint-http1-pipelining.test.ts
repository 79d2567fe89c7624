// The waypoint's HTTP/1.1 server bounds pipelining per connection: at most maxPipelined
// requests are queued (parsed and not yet answered), whether the client writes one request per
// write or a hundred in one; the rest stay unread (backpressure) and are all answered, in
// order, once the slow one is. Real loopback sockets.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { systemClock } from '../../src/core/clock.js';
import net from 'node:net';
import { DEFAULT_HTTP1_LIMITS, serveHttp1, type Http1Request, type Http1Response } from '../../src/waypoint/http1/server.js';
import { waitFor } from '../helpers/wait.js';

const closers: (() => void)[] = [];
after(() => { for (const c of closers) c(); });

interface Observed {
  /** The most requests the server held queued at once (sampled after every read and dispatch). */
  maxQueued: number;
  seen: string[];
  hits: string[];
  release(): void;
}

/** A codec server whose answer to /r0 waits for `release()`; the others are answered at once (echoing their body). */
async function slowFirstServer(maxPipelined: number): Promise<{ port: number; o: Observed }> {
  let releaseSlow: () => void = () => {};
  const slow = new Promise<void>((r) => { releaseSlow = r; });
  const o: Observed = { maxQueued: 0, seen: [], hits: [], release: () => releaseSlow() };
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    const conn = serveHttp1(s, {
      request: (req: Http1Request, res: Http1Response) => {
        o.maxQueued = Math.max(o.maxQueued, conn.queued);
        o.seen.push(req.url);
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          const answer = (): void => {
            const body = Buffer.from(`${req.url}:${Buffer.concat(chunks).toString()}`);
            res.writeHead(200, { 'content-length': String(body.length) });
            res.end(body);
          };
          if (req.url === '/r0') void slow.then(answer);
          else answer();
        });
      },
      limitHit: (l) => o.hits.push(l),
    }, { clock: systemClock, limits: { ...DEFAULT_HTTP1_LIMITS, maxPipelined } });
    // Registered after the server's own listener: sees the queue as each read left it.
    s.on('data', () => { o.maxQueued = Math.max(o.maxQueued, conn.queued); });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  closers.push(() => server.close());
  return { port: (server.address() as net.AddressInfo).port, o };
}

/** Writes each piece with its own write (waiting for each to be handed to the kernel), then collects answers. */
async function pipelined(port: number, pieces: Buffer[], want: number, o: Observed, releaseAfterMs: number): Promise<string> {
  const s = net.connect(port, '127.0.0.1');
  closers.push(() => s.destroy());
  s.setNoDelay(true);
  let got = '';
  s.on('data', (b: Buffer) => { got += b.toString('latin1'); });
  await new Promise<void>((r) => s.once('connect', () => r()));
  const writing = (async () => {
    for (const p of pieces) await new Promise<void>((r) => s.write(p, () => r()));
  })();
  // The client goes on writing while /r0 is slow: the kernel's buffers fill once the server stops reading.
  await new Promise((r) => setTimeout(r, releaseAfterMs));
  o.release();
  await writing;
  await waitFor(`${want} answers`, () => (got.match(/HTTP\/1\.1 200 /g) ?? []).length >= want, 10_000);
  s.destroy();
  return got;
}

const get = (i: number): string => `GET /r${i} HTTP/1.1\r\nHost: a\r\n\r\n`;
const post = (i: number): string => `POST /r${i} HTTP/1.1\r\nHost: a\r\nContent-Length: ${String(i).length + 1}\r\n\r\nb${i}`;

function assertInOrder(got: string, n: number, withBody: boolean): void {
  const bodies = [...got.matchAll(/content-length: \d+\r\n\r\n(\/r\d+:[a-z0-9]*)/g)].map((m) => m[1]);
  assert.deepEqual(bodies, Array.from({ length: n }, (_, i) => `/r${i}:${withBody ? `b${i}` : ''}`));
}

test('pipelining: 100 requests, one per write, behind a slow first answer — never more than 32 queued, all answered in order', async () => {
  const { port, o } = await slowFirstServer(32);
  const got = await pipelined(port, Array.from({ length: 100 }, (_, i) => Buffer.from(get(i))), 100, o, 300);
  assert.ok(o.maxQueued <= 32, `the server held ${o.maxQueued} requests queued (bound 32)`);
  assert.equal(o.maxQueued, 32, 'the bound was reached (the test exercised it)');
  assert.ok(o.hits.includes('pipelined'));
  assertInOrder(got, 100, false);
});

test('pipelining: 100 requests in one write (one read) — the parser stops at the bound, the rest are parsed as places free', async () => {
  const { port, o } = await slowFirstServer(32);
  const got = await pipelined(port, [Buffer.from(Array.from({ length: 100 }, (_, i) => get(i)).join(''))], 100, o, 200);
  assert.ok(o.maxQueued <= 32, `the server held ${o.maxQueued} requests queued (bound 32)`);
  assertInOrder(got, 100, false);
});

test('pipelining: requests with bodies, split anywhere, bound 3 — bodies intact, never more than 3 queued', async () => {
  const { port, o } = await slowFirstServer(3);
  const all = Buffer.from(Array.from({ length: 40 }, (_, i) => post(i)).join(''));
  // Cut at odd places: inside heads, inside bodies, between requests.
  const pieces: Buffer[] = [];
  for (let at = 0, k = 0; at < all.length; k++) {
    const n = [1, 7, 50, 3, 200, 13][k % 6]!;
    pieces.push(all.subarray(at, at + n));
    at += n;
  }
  const got = await pipelined(port, pieces, 40, o, 200);
  assert.ok(o.maxQueued <= 3, `the server held ${o.maxQueued} requests queued (bound 3)`);
  assertInOrder(got, 40, true);
});

test('pipelining: a client that half-closes after writing everything still gets every answer', async () => {
  const { port, o } = await slowFirstServer(2);
  const s = net.connect(port, '127.0.0.1');
  closers.push(() => s.destroy());
  let got = '';
  s.on('data', (b: Buffer) => { got += b.toString('latin1'); });
  const closed = new Promise<void>((r) => s.once('close', () => r()));
  s.end(Buffer.from(Array.from({ length: 10 }, (_, i) => get(i)).join('')));
  await new Promise((r) => setTimeout(r, 100));
  o.release();
  await closed;
  assert.ok(o.maxQueued <= 2, `held ${o.maxQueued}`);
  assertInOrder(got, 10, false);
});

test('pipelining: an upgrade request that waited behind a full queue switches (bytes after it are the new protocol\'s) or goes on as HTTP/1.1', async () => {
  const served: string[] = [];
  let releaseSlow: () => void = () => {};
  const slow = new Promise<void>((r) => { releaseSlow = r; });
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    serveHttp1(s, {
      request: (req, res) => {
        served.push(req.url);
        if (req.upgrade && req.url === '/switch') {
          res.writeHead(101, { connection: 'upgrade', upgrade: 'echo' });
          const raw = res.switchProtocols(req);
          raw.on('data', (d: Buffer) => raw.write(Buffer.concat([Buffer.from('echo:'), d])));
          raw.resume();
          return;
        }
        const answer = (): void => {
          const text = Buffer.from(`${req.url} upgrade=${req.upgrade}`);
          res.writeHead(req.upgrade ? 426 : 200, { 'content-length': String(text.length) });
          res.end(text);
        };
        req.resume();
        if (req.url.startsWith('/slow')) void slow.then(answer);
        else answer();
      },
    }, { clock: systemClock, limits: { ...DEFAULT_HTTP1_LIMITS, maxPipelined: 1 } });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  closers.push(() => server.close());
  const port = (server.address() as net.AddressInfo).port;
  const exchange = async (text: string, until: RegExp): Promise<string> => {
    const s = net.connect(port, '127.0.0.1');
    closers.push(() => s.destroy());
    let got = '';
    s.on('data', (b: Buffer) => { got += b.toString('latin1'); });
    s.write(text);
    await new Promise((r) => setTimeout(r, 100));
    releaseSlow();
    await waitFor(`an answer matching ${String(until)}`, () => until.test(got), 5000);
    s.destroy();
    return got;
  };
  const upgrade = (url: string): string => `GET ${url} HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n`;
  const switched = await exchange(`GET /slow1 HTTP/1.1\r\nHost: a\r\n\r\n${upgrade('/switch')}not http at all`, /echo:not http at all$/);
  assert.match(switched, /^HTTP\/1\.1 200 [^]*\/slow1 upgrade=falseHTTP\/1\.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\necho:not http at all$/);
  const refused = await exchange(`GET /slow2 HTTP/1.1\r\nHost: a\r\n\r\n${upgrade('/no')}GET /next HTTP/1.1\r\nHost: a\r\n\r\n`, /\/next upgrade=false$/);
  assert.match(refused, /^HTTP\/1\.1 200 [^]*\/slow2 upgrade=falseHTTP\/1\.1 426 [^]*\/no upgrade=trueHTTP\/1\.1 200 [^]*\/next upgrade=false$/);
  assert.deepEqual(served, ['/slow1', '/switch', '/slow2', '/no', '/next']);
});

test('CONNECT behind a request not yet answered: no 501 out of turn (it would be taken for the first answer); the connection is cut', async () => {
  const { port, o } = await slowFirstServer(32);
  const s = net.connect(port, '127.0.0.1');
  closers.push(() => s.destroy());
  let got = '';
  s.on('data', (b: Buffer) => { got += b.toString('latin1'); });
  s.on('error', () => {});
  s.write('GET /r0 HTTP/1.1\r\nHost: a\r\n\r\nCONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n');
  await new Promise<void>((r) => s.once('close', () => r()));
  o.release();
  assert.doesNotMatch(got, /^HTTP\/1\.1 501/, 'the first bytes the client sees must be the answer to its first request, or none');
  assert.deepEqual(o.seen, ['/r0']);

  // Alone on its connection, CONNECT still gets its 501.
  const c = net.connect(port, '127.0.0.1');
  closers.push(() => c.destroy());
  let alone = '';
  c.on('data', (b: Buffer) => { alone += b.toString('latin1'); });
  c.write('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n');
  await waitFor('the 501', () => alone.includes('\r\n\r\n'), 5_000);
  assert.match(alone, /^HTTP\/1\.1 501 /);
});
