// Property tests of the waypoint's HTTP/1.1 client codec (Http1Client) against generated
// upstream answers over a Duplex pair: valid responses in many legal spellings (Content-Length,
// chunked with extensions and trailers, close-delimited; interim 1xx before them), written in
// pieces split at any points; and responses with framing flaws (CL+TE, two Content-Lengths,
// bad chunk sizes, obs-fold, bare LF). Invariants:
// - the exchange settles within its deadline, never a throw;
// - a valid answer reaches the caller as sent (status, headers, body, trailers), and the
//   connection is reused exactly when both sides allow keep-alive;
// - a flawed answer never reaches the caller as a complete, clean body, and its connection is
//   never reused: the next request opens a new one.
// `npm run fuzz` runs the same properties with random seeds for longer (test/helpers/fuzz.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { duplexPair, type Duplex, type Readable } from 'node:stream';
import { setImmediate as tick } from 'node:timers/promises';
import fc from 'fast-check';
import { FakeClock } from '../../src/core/clock.js';
import { Http1Client, type Exchange } from '../../src/waypoint/http1/client.js';
import { fuzzAsync, withDeadline } from '../helpers/fuzz.js';
import { pieces, splitPoints } from '../helpers/http1-wire.js';

const DEADLINE_MS = 3000;

interface WireResponse {
  interim: string[];
  status: number;
  reason: string;
  headers: [string, string][];
  framing: 'length' | 'chunked' | 'close';
  body: Buffer;
  chunkSizes: number[];
  chunkExtension: string;
  trailers: [string, string][];
  close: boolean;
}

const tokenValue = fc.array(fc.integer({ min: 0x21, max: 0x7e }), { maxLength: 20 }).map((c) => String.fromCharCode(...c));
const names = ['content-type', 'x-a', 'set-cookie', 'cache-control', 'x-envoy-upstream-service-time', 'server', 'etag'];

const wireResponse: fc.Arbitrary<WireResponse> = fc.record({
  interim: fc.array(fc.constantFrom('HTTP/1.1 100 Continue\r\n\r\n', 'HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n', 'HTTP/1.1 102 Processing\r\n\r\n'), { maxLength: 2 }),
  status: fc.constantFrom(200, 201, 204, 301, 304, 400, 404, 500, 503),
  reason: fc.constantFrom('OK', '', 'Whatever It Says', 'é'),
  headers: fc.uniqueArray(fc.constantFrom(...names), { maxLength: 4 }).chain((ns) => fc.tuple(...ns.map((n) => fc.tuple(fc.constant(n), tokenValue)))).map((x) => x as [string, string][]),
  framing: fc.constantFrom('length', 'chunked', 'close'),
  body: fc.uint8Array({ maxLength: 400 }).map((a) => Buffer.from(a)),
  cuts: fc.array(fc.nat(), { maxLength: 4 }),
  chunkExtension: fc.constantFrom('', ';a=b', ';x="y z"'),
  trailers: fc.array(fc.tuple(fc.constantFrom('x-checksum', 'grpc-status'), tokenValue), { maxLength: 1 }),
  close: fc.boolean(),
}).map((r): WireResponse => {
  const bodiless = r.status === 204 || r.status === 304;
  const body = bodiless ? Buffer.alloc(0) : r.body;
  const points = [...new Set(r.cuts.map((c) => (body.length > 1 ? 1 + (c % (body.length - 1)) : 0)).filter((c) => c > 0))].sort((a, b) => a - b);
  const chunkSizes: number[] = [];
  let prev = 0;
  for (const c of [...points, body.length]) { if (c > prev) chunkSizes.push(c - prev); prev = c; }
  return {
    interim: r.interim, status: r.status, reason: r.reason, headers: r.headers, framing: bodiless && r.framing === 'close' ? 'length' : r.framing, body, chunkSizes,
    chunkExtension: r.chunkExtension, trailers: r.framing === 'chunked' && !bodiless ? r.trailers : [], close: r.close || r.framing === 'close',
  };
});

function responseBytes(r: WireResponse): Buffer {
  let head = `${r.interim.join('')}HTTP/1.1 ${r.status} ${r.reason}\r\n`;
  for (const [n, v] of r.headers) head += `${n}: ${v}\r\n`;
  const bodiless = r.status === 204 || r.status === 304;
  if (r.framing === 'length' && !bodiless) head += `Content-Length: ${r.body.length}\r\n`;
  if (r.framing === 'chunked' && !bodiless) head += 'Transfer-Encoding: chunked\r\n';
  if (r.close) head += 'Connection: close\r\n';
  const parts: Buffer[] = [Buffer.from(`${head}\r\n`, 'latin1')];
  if (bodiless) return parts[0]!;
  if (r.framing === 'chunked') {
    let at = 0;
    for (const n of r.chunkSizes) {
      parts.push(Buffer.from(`${n.toString(16)}${r.chunkExtension}\r\n`), r.body.subarray(at, at + n), Buffer.from('\r\n'));
      at += n;
    }
    parts.push(Buffer.from(`0\r\n${r.trailers.map(([n, v]) => `${n}: ${v}\r\n`).join('')}\r\n`, 'latin1'));
  } else parts.push(r.body);
  return Buffer.concat(parts);
}

/** An upstream that answers each request on a connection with the next scripted bytes, in pieces. */
function upstream(script: (conn: number) => { bytes: Buffer; cuts: number[]; endAfter: boolean }): { open(): Promise<Duplex>; opened: () => number } {
  let opened = 0;
  return {
    opened: () => opened,
    open: () => {
      const [client, server] = duplexPair();
      const n = opened++;
      let seen = '';
      server.on('data', (b: Buffer) => {
        seen += b.toString('latin1');
        if (!seen.includes('\r\n\r\n')) return;
        seen = seen.slice(seen.indexOf('\r\n\r\n') + 4);
        const { bytes, cuts, endAfter } = script(n);
        void (async () => {
          for (const p of pieces(bytes, cuts)) { if (server.destroyed) return; server.write(p); await tick(); }
          if (endAfter && !server.destroyed) server.end();
        })();
      });
      server.on('error', () => {});
      return Promise.resolve(client);
    },
  };
}

/** Reads a body as the proxy does: one cut in the read that brought its head is already destroyed. */
function readBody(r: Readable): Promise<{ body: Buffer; error?: string }> {
  if (r.destroyed && !r.readableEnded) return Promise.resolve({ body: Buffer.alloc(0), error: 'cut before it was read' });
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    r.on('data', (c: Buffer) => chunks.push(c));
    r.once('end', () => resolve({ body: Buffer.concat(chunks) }));
    r.once('error', (e) => resolve({ body: Buffer.concat(chunks), error: e.message }));
    r.once('close', () => resolve({ body: Buffer.concat(chunks), error: 'closed before its end' }));
  });
}

async function exchange(c: Http1Client): Promise<{ x: Exchange; body?: { body: Buffer; error?: string }; trailers?: unknown }> {
  const x = await withDeadline(c.request('GET', '/', 'up', {}, undefined), DEADLINE_MS, 'no answer');
  if (x.kind !== 'response') return { x };
  const body = await withDeadline(readBody(x.res.body), DEADLINE_MS, 'the body did not end');
  const trailers = body.error ? undefined : await withDeadline(x.res.trailers, DEADLINE_MS, 'no trailers');
  return { x, body, trailers };
}

test('property: a valid upstream answer, split anywhere, reaches the caller as sent; the connection is reused only under keep-alive', async () => {
  await fuzzAsync('http1 client: valid answers, any split', fc.asyncProperty(wireResponse.chain((r) => {
    const bytes = responseBytes(r);
    return fc.tuple(fc.constant(r), fc.constant(bytes), splitPoints(bytes.length));
  }), async ([r, bytes, cuts]) => {
    const up = upstream((n) => (n === 0 ? { bytes, cuts, endAfter: r.close } : { bytes: Buffer.from('HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\n2'), cuts: [], endAfter: false }));
    const client = new Http1Client({ open: up.open, clock: new FakeClock(0), maxIdle: 4, idleTimeoutMs: 60_000 });
    try {
      const first = await exchange(client);
      assert.equal(first.x.kind, 'response', JSON.stringify(first.x));
      if (first.x.kind !== 'response') return;
      assert.equal(first.x.res.status, r.status);
      for (const [n, v] of r.headers) assert.deepEqual(first.x.res.headers[n], n === 'set-cookie' ? [v] : v, n);
      assert.equal(first.body!.error, undefined);
      assert.equal(first.body!.body.toString('latin1'), r.body.toString('latin1'));
      if (r.trailers.length) assert.deepEqual(first.trailers, Object.fromEntries(r.trailers));
      const second = await exchange(client);
      assert.equal(second.x.kind, 'response');
      assert.equal(up.opened(), r.close ? 2 : 1, r.close ? 'a closing connection was reused' : 'a keep-alive connection was not reused');
    } finally {
      client.close();
    }
  }), { seed: 1440, numRuns: 250 });
});

// Answers a strict client must not take as complete.
const flawed = fc.constantFrom(
  'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
  'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd',
  'HTTP/1.1 200 OK\r\nContent-Length: 3, 4\r\n\r\nabcd',
  'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nabc',
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\ng\r\nabc\r\n0\r\n\r\n',
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n',
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nabc\r\n0\r\n\r\n',
  'HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n',
  'HTTP/1.1 200 OK\nContent-Length: 0\n\n',
  'HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX: a\rb\r\n\r\n',
  'HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n',
  'HTTP/1.1 200 OK\r\nContent Length: 0\r\n\r\n',
  'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort',
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab',
  'HTTP/1.1 200 OK\r\n',
  'garbage\r\n\r\n',
);

test('property: a flawed upstream answer never reaches the caller as a clean, complete body; its connection is not reused', async () => {
  await fuzzAsync('http1 client: flawed answers', fc.asyncProperty(flawed, fc.nat(), async (text, cut) => {
    const bytes = Buffer.from(text, 'latin1');
    const up = upstream((n) => (n === 0 ? { bytes, cuts: [1 + (cut % (bytes.length - 1))], endAfter: true } : { bytes: Buffer.from('HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\n2'), cuts: [], endAfter: false }));
    const client = new Http1Client({ open: up.open, clock: new FakeClock(0), maxIdle: 4, idleTimeoutMs: 60_000 });
    try {
      const first = await exchange(client);
      if (first.x.kind === 'response') assert.ok(first.body!.error !== undefined, `taken as complete: ${JSON.stringify(text)} -> ${first.x.res.status} ${JSON.stringify(first.body!.body.toString('latin1'))}`);
      else assert.ok(first.x.message.length > 0);
      const second = await exchange(client);
      assert.equal(second.x.kind, 'response');
      assert.equal(up.opened(), 2, 'the connection of a flawed answer was reused');
    } finally {
      client.close();
    }
  }), { seed: 1441, numRuns: 150 });
});
