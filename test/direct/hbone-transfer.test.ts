// Bytes through the whole HBONE path on loopback: HbonePool -> mTLS HTTP/2 CONNECT ->
// HboneServer -> relay -> a plain TCP upstream. Small and large transfers (integrity by
// sha256), half-close in both directions, an upstream that closes first.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import * as net from 'node:net';
import type { Duplex } from 'node:stream';
import { HbonePool } from '../../src/hbone/pool.js';
import { relay, resetHttp2Stream, type RelayResult } from '../../src/hbone/relay.js';
import { CLIENT_ID, Cleanup, SERVER_ID, mbps, patternHash, quietLogger, readAll, startEcho, startHboneServer, startSink, startSource, testMesh, writePattern, type TestHboneServer, type TestMesh } from '../helpers/hbone.js';
import { waitFor } from '../helpers/wait.js';

const cleanup = new Cleanup();
let mesh: TestMesh;
let hbone: TestHboneServer;
let pool: HbonePool;

before(async () => {
  mesh = await testMesh();
  hbone = await startHboneServer(cleanup, mesh.server);
  pool = cleanup.add(() => pool.destroy(), new HbonePool({ logger: quietLogger() }));
});
after(() => cleanup.run());

function open(port: number, extra: { headers?: Record<string, string> } = {}): Promise<Duplex> {
  return pool.connect({
    sourceIdentity: CLIENT_ID,
    certificate: () => mesh.client,
    destination: { ip: '127.0.0.1', port: hbone.port },
    expectedIdentities: [SERVER_ID],
    authority: `127.0.0.1:${port}`,
    ...extra,
  });
}

async function tcpUpstream(onSocket: (s: net.Socket) => void): Promise<number> {
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => undefined);
    onSocket(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanup.add(() => server.close(), undefined);
  return (server.address() as net.AddressInfo).port;
}

test('a small echo round trip carries the tunnel headers and closes cleanly on both sides', async () => {
  const echo = await startEcho(cleanup);
  const before = hbone.requests.length;
  const tunnel = await open(echo.port, {
    headers: { baggage: 'k8s.namespace.name=shop,k8s.pod.name=client-0', forwarded: 'for="10.0.0.1:40000"', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00' },
  } as never);
  const got = readAll(tunnel);
  tunnel.end('hello, mesh');
  assert.equal((await got).text, 'hello, mesh');
  const req = hbone.requests[before]!;
  assert.equal(req.authority, `127.0.0.1:${echo.port}`);
  assert.deepEqual(req.target, { ip: '127.0.0.1', port: echo.port });
  assert.equal(req.peerIdentity, CLIENT_ID);
  assert.equal(req.peerAddress.ip, '127.0.0.1');
  const result = await hbone.relays[hbone.relays.length - 1]!;
  assert.equal(result.closedBy, 'a', 'the client (downstream) ended first');
  assert.equal(result.error, undefined);
  assert.equal(result.bytesOutbound, 11);
  assert.equal(result.bytesInbound, 11);
});

test('the tunnel headers reach the handler', async () => {
  const echo = await startEcho(cleanup);
  const headers = { baggage: 'k8s.namespace.name=shop', forwarded: 'for="10.0.0.1:40000"', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00' };
  const n = hbone.requests.length;
  const tunnel = await pool.connect({
    sourceIdentity: CLIENT_ID, certificate: () => mesh.client, destination: { ip: '127.0.0.1', port: hbone.port },
    expectedIdentities: [SERVER_ID], authority: `127.0.0.1:${echo.port}`, headers,
  });
  tunnel.end();
  await readAll(tunnel);
  assert.deepEqual(hbone.requests[n]!.headers, headers);
});

const LARGE = 128 * 1024 * 1024;

test(`a large upload (${LARGE >> 20} MiB) arrives intact`, async (t) => {
  const sink = await startSink(cleanup);
  const tunnel = await open(sink.port);
  const answer = readAll(tunnel);
  const start = performance.now();
  await writePattern(tunnel, LARGE);
  tunnel.end();
  const { text } = await answer;
  const ms = performance.now() - start;
  assert.equal(text, `${LARGE} ${patternHash(LARGE)}`);
  t.diagnostic(`upload ${LARGE >> 20} MiB in ${ms.toFixed(0)} ms: ${mbps(LARGE, ms)}`);
});

test(`a large download (${LARGE >> 20} MiB) arrives intact`, async (t) => {
  const source = await startSource(cleanup, LARGE);
  const start = performance.now();
  const tunnel = await open(source.port);
  const got = readAll(tunnel, 0);
  tunnel.end();
  const { bytes, sha256 } = await got;
  const ms = performance.now() - start;
  assert.equal(bytes, LARGE);
  assert.equal(sha256, patternHash(LARGE));
  t.diagnostic(`download ${LARGE >> 20} MiB in ${ms.toFixed(0)} ms: ${mbps(LARGE, ms)}`);
});

test('both directions at once (64 MiB each way through an echo) stay intact', async (t) => {
  const echo = await startEcho(cleanup);
  const size = 64 * 1024 * 1024;
  const tunnel = await open(echo.port);
  const start = performance.now();
  const got = readAll(tunnel, 0);
  await writePattern(tunnel, size);
  tunnel.end();
  const { bytes, sha256 } = await got;
  const ms = performance.now() - start;
  assert.equal(bytes, size);
  assert.equal(sha256, patternHash(size));
  t.diagnostic(`echo ${size >> 20} MiB each way in ${ms.toFixed(0)} ms: ${mbps(2 * size, ms)} total`);
});

test('half-close by the client: the upstream sees FIN and keeps sending', async () => {
  const port = await tcpUpstream((s) => {
    let received = '';
    s.on('data', (d: Buffer) => { received += d.toString(); });
    s.on('end', () => {
      // The client's write side is closed; ours is still open.
      setTimeout(() => {
        s.write(`got ${received.length} bytes; `);
        setTimeout(() => s.end('and more after your FIN'), 20);
      }, 20);
    });
  });
  const tunnel = await open(port);
  const got = readAll(tunnel);
  tunnel.end('request body');
  assert.equal((await got).text, 'got 12 bytes; and more after your FIN');
  const result = await hbone.relays[hbone.relays.length - 1]!;
  assert.equal(result.closedBy, 'a', String(result.error?.message));
  assert.equal(result.error, undefined);
});

test('half-close by the upstream: the client sees end and keeps sending', async () => {
  let upstreamGot: Promise<string> | undefined;
  const port = await tcpUpstream((s) => {
    s.end('server done; ');
    upstreamGot = new Promise((resolve) => {
      let text = '';
      s.on('data', (d: Buffer) => { text += d.toString(); });
      s.on('end', () => resolve(text));
    });
  });
  const tunnel = await open(port);
  let clientText = '';
  tunnel.on('data', (d: Buffer) => { clientText += d.toString(); });
  await once(tunnel, 'end');
  assert.equal(clientText, 'server done; ');
  assert.ok(!tunnel.writableEnded, 'our side is still open');
  tunnel.write('still ');
  await new Promise((r) => setTimeout(r, 20));
  tunnel.end('talking');
  await once(tunnel, 'close');
  assert.equal(await upstreamGot, 'still talking');
  const result = await hbone.relays[hbone.relays.length - 1]!;
  assert.equal(result.closedBy, 'b');
  assert.equal(result.error, undefined);
});

test('an upstream that closes first (write + close) ends the tunnel cleanly', async () => {
  const port = await tcpUpstream((s) => {
    s.end('bye');
    s.destroySoon();
  });
  const tunnel = await open(port);
  const got = readAll(tunnel);
  assert.equal((await got.catch((e: unknown) => { throw e; })).text, 'bye');
  tunnel.end();
  await once(tunnel, 'close');
  await waitFor('server streams closed', () => hbone.server.stats().streams === 0);
});

test('an upstream reset (RST) resets the tunnel, and a relay on the client side turns it into a TCP reset', async () => {
  const port = await tcpUpstream((s) => {
    s.write('partial');
    setTimeout(() => s.resetAndDestroy(), 20);
  });
  // The client side as an outbound ztunnel would do it: app socket <-relay-> tunnel.
  const appListener = net.createServer({ allowHalfOpen: true });
  appListener.listen(0, '127.0.0.1');
  await once(appListener, 'listening');
  cleanup.add(() => appListener.close(), undefined);
  const clientRelay = new Promise<RelayResult>((resolve) => {
    appListener.once('connection', (downstream: net.Socket) => {
      void open(port).then((tunnel) => relay(downstream, tunnel).done.then(resolve));
    });
  });
  const app = net.connect((appListener.address() as net.AddressInfo).port, '127.0.0.1');
  const chunks: string[] = [];
  let ended = false;
  let error: string | undefined;
  app.on('data', (d: Buffer) => chunks.push(d.toString()));
  app.on('end', () => { ended = true; });
  app.on('error', (e: NodeJS.ErrnoException) => { error = e.code; });
  await new Promise((resolve) => app.once('close', resolve));
  assert.equal(chunks.join(''), 'partial');
  const cr = await clientRelay;
  assert.equal(error, 'ECONNRESET', `the application sees a reset; ended=${ended} client relay: ${cr.closedBy} ${cr.errorSide} ${cr.error?.message}`);
  assert.equal(ended, false, 'a reset is not a clean end');
  const serverResult = await hbone.relays[hbone.relays.length - 1]!;
  assert.equal(serverResult.closedBy, 'error');
  assert.equal(serverResult.errorSide, 'b');
  const clientResult = await clientRelay;
  assert.equal(clientResult.closedBy, 'error');
  assert.equal(clientResult.errorSide, 'b');
  assert.equal(clientResult.bytesInbound, 7);
});

test('a client reset (RST_STREAM) resets the upstream TCP connection', async () => {
  let upstreamSocket: net.Socket | undefined;
  const port = await tcpUpstream((s) => { upstreamSocket = s; s.resume(); });
  const tunnel = await open(port);
  tunnel.write('x');
  await waitFor('upstream connected', () => upstreamSocket !== undefined);
  const closed = new Promise<{ error?: string }>((resolve) => {
    let error: string | undefined;
    upstreamSocket!.on('error', (e: NodeJS.ErrnoException) => { error = e.code; });
    upstreamSocket!.on('close', () => resolve({ error }));
  });
  // resetHttp2Stream, not stream.close(8): Node's close() would send END_STREAM first, and the
  // server would pass that on as a FIN before the reset (see relay.ts).
  resetHttp2Stream(tunnel as Duplex & { close(code?: number): void }, 8);
  assert.equal((await closed).error, 'ECONNRESET', 'the upstream sees a TCP reset, not a FIN');
  const result = await hbone.relays[hbone.relays.length - 1]!;
  assert.equal(result.closedBy, 'error');
  assert.equal(result.errorSide, 'a');
});
