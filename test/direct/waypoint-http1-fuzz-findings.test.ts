// What the property tests of the HTTP/1.1 server codec found, one exact input each, so that a
// regression fails here by name (test/direct/fuzz-http1-server.test.ts holds the properties).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { systemClock } from '../../src/core/clock.js';
import { duplexPair } from 'node:stream';
import { DEFAULT_HTTP1_LIMITS, serveHttp1, type Http1Limits, type Http1Request, type Http1Response } from '../../src/waypoint/http1/server.js';
import { withDeadline } from '../helpers/fuzz.js';

interface Run { urls: string[]; bad: string[]; out: string }

/** Sends `parts` (one read each, `gapMs` apart) to serveHttp1 over a Duplex pair; settles when the server ends the connection. */
async function exchange(parts: string[], handler: (req: Http1Request, res: Http1Response) => void, opts: { limits?: Partial<Http1Limits>; gapMs?: number; end?: boolean } = {}): Promise<Run> {
  const run: Run = { urls: [], bad: [], out: '' };
  const [client, server] = duplexPair();
  serveHttp1(server, {
    request: (req, res) => { run.urls.push(req.url); handler(req, res); },
    badRequest: (status, e) => run.bad.push(`${status} ${e.code}`),
  }, { clock: systemClock, limits: { ...DEFAULT_HTTP1_LIMITS, ...opts.limits } });
  client.on('data', (b: Buffer) => { run.out += b.toString('latin1'); });
  const ended = new Promise<void>((r) => client.once('end', r));
  for (const p of parts) {
    client.write(Buffer.from(p, 'latin1'));
    if (opts.gapMs) await new Promise((r) => setTimeout(r, opts.gapMs));
  }
  if (opts.end !== false) client.end();
  await withDeadline(ended, 3000, 'the connection did not end');
  client.destroy();
  return run;
}

/** Answers `<url>` once the body is read, on the next turn of the loop. */
function echoUrl(req: Http1Request, res: Http1Response): void {
  req.resume();
  req.on('end', () => setImmediate(() => {
    const b = Buffer.from(req.url);
    res.writeHead(200, { 'content-length': String(b.length) });
    res.end(b);
  }));
}

test('a chunked request with trailers does not prefix its target to the next request on the connection', async () => {
  // Node's parser binding hands the trailer lines on with the URL of the message they end;
  // it was kept and joined to the next target: "/first" then "/second" became "/first/second".
  const r = await exchange(['POST /first HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Checksum: 1\r\n\r\nGET /second HTTP/1.1\r\nHost: a\r\n\r\n'], echoUrl);
  assert.deepEqual(r.urls, ['/first', '/second']);
  assert.match(r.out, /\r\n\r\n\/first[^]*\r\n\r\n\/second$/);
});

test('nothing after a request refused for its Host reaches the pipeline, even in the same read; one refusal', async () => {
  for (const first of ['GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 'GET / HTTP/1.1\r\n\r\n']) {
    const r = await exchange([`${first}GET /admin HTTP/1.1\r\nHost: x\r\n\r\nGARBAGE\r\n\r\n`], echoUrl);
    assert.deepEqual(r.urls, [], 'a request after the refused one was handed on');
    assert.deepEqual(r.bad, ['400 HPE_BAD_HOST']);
    assert.equal(r.out, 'HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
  }
});

test('the interim 100 for a pipelined Expect request goes out after the answer before it, never inside it', async () => {
  const r = await exchange([
    'GET /1 HTTP/1.1\r\nHost: a\r\n\r\n',
    'POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nExpect: 100-continue\r\n\r\nx',
  ], (req, res) => {
    if (req.url === '/1') {
      // A streamed answer still under way when the next request arrives.
      res.writeHead(200, {});
      res.write(Buffer.from('part1'));
      setTimeout(() => { res.write(Buffer.from('part2')); res.end(); }, 30);
    } else echoUrl(req, res);
  }, { gapMs: 5 });
  assert.equal(r.out, 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\npart1\r\n5\r\npart2\r\n0\r\n\r\n'
    + 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n/2');
});

test('bytes after a request that asked to close are dropped; its answer still goes out, nothing is refused', async () => {
  const r = await exchange(['GET /1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n'], echoUrl);
  assert.deepEqual(r.urls, ['/1']);
  assert.deepEqual(r.bad, []);
  assert.equal(r.out, 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n/1');
});

test('with maxPipelined 1, a body that arrives after its head is still read (no deadlock), also for the second request', async () => {
  const r = await exchange([
    'POST /1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\na',
    'bcPOST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nd',
    'ef',
  ], echoUrl, { limits: { maxPipelined: 1 }, gapMs: 5 });
  assert.deepEqual(r.urls, ['/1', '/2']);
  assert.equal(r.out, 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n/1HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n/2');
});

test('an HTTP/1.0 request with Transfer-Encoding is answered and the connection ends, keep-alive or not', async () => {
  const r = await exchange(['POST /1 HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n'], echoUrl, { end: false });
  assert.deepEqual(r.urls, ['/1']);
  assert.equal(r.out, 'HTTP/1.0 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n/1');
});
