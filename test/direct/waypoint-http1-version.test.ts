// Only HTTP/1.0 and HTTP/1.1 are served by the waypoint's HTTP/1.1 codec: a request line with
// another version (`GET / HTTP/2.0`) gets 505 and the connection closes; the pipeline (and so
// the upstream) never sees it. The sniffer sends such a line to the codec, not to the TCP relay:
// an application behind the waypoint might read it as HTTP/1.1, past L7 routing and policy.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { systemClock } from '../../src/core/clock.js';
import { serveHttp1 } from '../../src/waypoint/http1/server.js';
import { sniff } from '../../src/waypoint/sniff.js';

const closers: (() => void)[] = [];
after(() => { for (const c of closers) c(); });

interface Served { urls: string[]; bad: { status: number; code?: string }[]; tcp: string[] }

/** As the waypoint dispatches a tunnel: sniff, then the HTTP/1.1 codec or (here) a recording TCP sink. */
async function waypointLike(): Promise<{ port: number; served: Served }> {
  const served: Served = { urls: [], bad: [], tcp: [] };
  const server = net.createServer((s) => {
    void sniff(s, 500, systemClock).then((kind) => {
      if (kind === 'http1') {
        serveHttp1(s, {
          request: (req, res) => {
            served.urls.push(`${req.method} ${req.url} ${req.httpVersion}`);
            req.resume();
            res.writeHead(200, { 'content-length': '2' });
            res.end(Buffer.from('ok'));
          },
          badRequest: (status, e) => served.bad.push({ status, code: e.code }),
        }, { clock: systemClock });
        s.resume();
      } else {
        s.on('data', (b: Buffer) => served.tcp.push(b.toString('latin1')));
        s.resume();
      }
    }, () => s.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  closers.push(() => server.close());
  return { port: (server.address() as net.AddressInfo).port, served };
}

/** Sends `text` and reads until the server closes (or `ms`). */
function exchange(port: number, text: string, ms: number): Promise<{ got: string; closed: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let got = '';
    let closed = false;
    const t = setTimeout(() => { s.destroy(); resolve({ got, closed }); }, ms);
    s.on('data', (b: Buffer) => { got += b.toString('latin1'); });
    s.on('end', () => { closed = true; });
    s.on('close', () => { clearTimeout(t); resolve({ got, closed }); });
    s.on('error', () => {});
    s.write(text);
  });
}

const cases: { line: string; status: number }[] = [
  { line: 'GET /admin HTTP/2.0', status: 505 },
  { line: 'GET /admin HTTP/0.9', status: 505 },
  // Versions llhttp refuses as malformed: 400, the same way.
  { line: 'GET /admin HTTP/3.0', status: 400 },
  { line: 'GET /admin HTTP/1.2', status: 400 },
  { line: 'GET /admin HTTP/2', status: 400 },
  { line: 'GET /admin HTTP/1.1', status: 200 },
  { line: 'GET /admin HTTP/1.0', status: 200 },
];

for (const c of cases) {
  test(`version: "${c.line}" -> ${c.status}${c.status === 200 ? '' : ', connection closed, nothing reaches the pipeline or the TCP relay'}`, async () => {
    const { port, served } = await waypointLike();
    // Keep-alive asked for: the 505 must close the connection anyway. A request behind it must not be served.
    const { got, closed } = await exchange(port, `${c.line}\r\nHost: echo\r\nConnection: keep-alive\r\n\r\nGET /next HTTP/1.1\r\nHost: echo\r\n\r\n`, c.status === 200 ? 300 : 1500);
    assert.deepEqual(served.tcp, [], 'relayed as TCP');
    if (c.status !== 200) {
      assert.match(got, c.status === 505 ? /^HTTP\/1\.1 505 HTTP Version Not Supported\r\n/ : /^HTTP\/1\.1 400 Bad Request\r\n/);
      assert.match(got, /\r\nconnection: close\r\n/);
      assert.equal((got.match(/HTTP\/1\.1 /g) ?? []).length, 1, `one answer: ${JSON.stringify(got)}`);
      assert.ok(closed, 'the connection is closed');
      assert.deepEqual(served.urls, [], 'no request reached the pipeline');
      assert.equal(served.bad[0]?.status, c.status);
    } else {
      assert.match(got, /^HTTP\/1\.[01] 200 /);
      assert.equal(served.urls[0], `GET /admin ${c.line.slice(-3)}`);
    }
  });
}
