// The HBONE client pool against a real HboneServer (and, where the server must misbehave, a
// plain Node HTTP/2 server with the same TLS settings): connection sharing, stream caps,
// refused tunnels, idle close, PING timeouts, GOAWAY, cancellation. Connections are counted
// on the server side.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import * as http2 from 'node:http2';
import type { Duplex } from 'node:stream';
import { AmbitError } from '../../src/core/errors.js';
import { HbonePool, type HbonePoolOptions, type HboneConnectOptions } from '../../src/hbone/pool.js';
import { serverTlsOptions } from '../../src/hbone/wire.js';
import { CLIENT_ID, Cleanup, SERVER_ID, quietLogger, readAll, startEcho, startForwarder, startHboneServer, testMesh, type TestMesh, type Upstream } from '../helpers/hbone.js';
import { waitFor } from '../helpers/wait.js';

const cleanup = new Cleanup();
let mesh: TestMesh;
let echo: Upstream;

before(async () => {
  mesh = await testMesh();
  echo = await startEcho(cleanup);
});
after(() => cleanup.run());

function newPool(opts: Partial<HbonePoolOptions> = {}): HbonePool {
  const pool = new HbonePool({ logger: quietLogger(), ...opts });
  return cleanup.add(() => pool.destroy(), pool);
}

function target(port: number, over: Partial<HboneConnectOptions> = {}): HboneConnectOptions {
  return {
    sourceIdentity: CLIENT_ID,
    certificate: () => mesh.client,
    destination: { ip: '127.0.0.1', port },
    expectedIdentities: [SERVER_ID],
    authority: `127.0.0.1:${echo.port}`,
    ...over,
  };
}

async function roundTrip(tunnel: Duplex, text: string): Promise<string> {
  const chunks: Buffer[] = [];
  const onData = (d: Buffer): void => { chunks.push(d); };
  tunnel.on('data', onData);
  tunnel.write(text);
  await waitFor(`echo of ${text}`, () => Buffer.concat(chunks).length >= Buffer.byteLength(text));
  tunnel.off('data', onData);
  return Buffer.concat(chunks).toString();
}

async function closeAll(tunnels: Duplex[]): Promise<void> {
  await Promise.all(tunnels.map(async (t) => {
    const done = readAll(t).catch(() => undefined);
    t.end();
    await done;
  }));
}

test('50 concurrent tunnels share one TLS connection', async () => {
  const hbone = await startHboneServer(cleanup, mesh.server);
  const pool = newPool();
  const tunnels = await Promise.all(Array.from({ length: 50 }, () => pool.connect(target(hbone.port))));
  assert.equal(hbone.server.stats().handshakes, 1, 'one TLS handshake on the server');
  assert.equal(hbone.server.stats().connections, 1);
  assert.equal(hbone.server.stats().streams, 50);
  assert.equal(pool.stats().connections, 1);
  assert.equal(pool.stats().handshakes, 1);
  assert.equal(pool.stats().streams, 50);
  const echoes = await Promise.all(tunnels.map((t, i) => roundTrip(t, `tunnel ${i}`)));
  echoes.forEach((e, i) => assert.equal(e, `tunnel ${i}`));
  await closeAll(tunnels);
  await waitFor('streams closed', () => pool.stats().streams === 0 && hbone.server.stats().streams === 0);
  // A tunnel opened later reuses the same connection.
  const again = await pool.connect(target(hbone.port));
  assert.equal(await roundTrip(again, 'again'), 'again');
  assert.equal(hbone.server.stats().handshakes, 1);
  await closeAll([again]);
});

test('150 concurrent tunnels open a second connection (100 streams per connection)', async () => {
  const hbone = await startHboneServer(cleanup, mesh.server);
  const pool = newPool();
  const tunnels = await Promise.all(Array.from({ length: 150 }, () => pool.connect(target(hbone.port))));
  assert.equal(hbone.server.stats().handshakes, 2);
  assert.equal(hbone.server.stats().connections, 2);
  assert.equal(pool.stats().connections, 2);
  assert.equal(pool.stats().streams, 150);
  const echoes = await Promise.all(tunnels.map((t, i) => roundTrip(t, `t${i}`)));
  echoes.forEach((e, i) => assert.equal(e, `t${i}`));
  await closeAll(tunnels);
  await waitFor('streams closed', () => hbone.server.stats().streams === 0);
});

test('the pool key separates source identities, destinations and source IPs, not the order of expected identities', async () => {
  const hbone = await startHboneServer(cleanup, mesh.server);
  const pool = newPool();
  const other = 'spiffe://cluster.local/ns/shop/sa/other';
  const a = await pool.connect(target(hbone.port, { expectedIdentities: [SERVER_ID, other] }));
  const b = await pool.connect(target(hbone.port, { expectedIdentities: [other, SERVER_ID] }));
  assert.equal(hbone.server.stats().handshakes, 1, 'same set of expected identities, same connection');
  const c = await pool.connect(target(hbone.port, { sourceIp: '127.0.0.2' }));
  assert.equal(hbone.server.stats().handshakes, 2, 'another source IP, another connection');
  assert.equal(hbone.requests.at(-1)!.peerAddress.ip, '127.0.0.2');
  const d = await pool.connect(target(hbone.port, { sourceIdentity: 'spiffe://cluster.local/ns/shop/sa/client2' }));
  assert.equal(hbone.server.stats().handshakes, 3, 'another source identity, another connection');
  await closeAll([a, b, c, d]);
});

test('a refused tunnel (upstream down -> 503) rejects with the status; other tunnels on the connection are untouched', async () => {
  const hbone = await startHboneServer(cleanup, mesh.server);
  const pool = newPool();
  const alive = await pool.connect(target(hbone.port));
  assert.equal(await roundTrip(alive, 'before'), 'before');
  const closedPort = await (async () => {
    const e = await startEcho(cleanup);
    await new Promise<void>((resolve) => e.server.close(() => resolve()));
    return e.port;
  })();
  const refused = await pool.connect(target(hbone.port, { authority: `127.0.0.1:${closedPort}` })).then(
    () => assert.fail('must be refused'),
    (e: unknown) => e,
  );
  assert.ok(refused instanceof AmbitError);
  assert.equal(refused.code, 'AMBIT_ERR_HBONE');
  assert.equal(refused.details?.status, 503);
  assert.match(refused.hint ?? '', /listening/);
  assert.equal(await roundTrip(alive, 'after'), 'after', 'the open tunnel keeps working');
  const next = await pool.connect(target(hbone.port));
  assert.equal(await roundTrip(next, 'next'), 'next');
  assert.equal(hbone.server.stats().handshakes, 1, 'all on the one connection');
  assert.equal(pool.stats().tunnelsFailed, 1);
  await closeAll([alive, next]);
  await waitFor('streams closed', () => pool.stats().streams === 0 && hbone.server.stats().streams === 0);
});

test('an idle connection is closed after idleTimeoutMs, a busy one is not', async () => {
  const hbone = await startHboneServer(cleanup, mesh.server);
  const pool = newPool({ idleTimeoutMs: 150 });
  const t = await pool.connect(target(hbone.port));
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(hbone.server.stats().connections, 1, 'a connection with an open tunnel stays');
  assert.equal(await roundTrip(t, 'still here'), 'still here');
  await closeAll([t]);
  await waitFor('server sees the idle connection close', () => hbone.server.stats().connections === 0, 3000);
  await waitFor('pool closed it', () => pool.stats().connections === 0);
  const t2 = await pool.connect(target(hbone.port));
  assert.equal(hbone.server.stats().handshakes, 2, 'a new tunnel opens a new connection');
  await closeAll([t2]);
});

test('a peer that stops answering PINGs is dropped by both sides; new tunnels get a new connection', async () => {
  const hbone = await startHboneServer(cleanup, mesh.server, { pingIntervalMs: 50, pingTimeoutMs: 300 });
  const fwd = await startForwarder(cleanup, hbone.port);
  const pool = newPool({ pingIntervalMs: 50, pingTimeoutMs: 300 });
  const t = await pool.connect(target(fwd.port));
  assert.equal(await roundTrip(t, 'ping?'), 'ping?');
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(pool.stats().connections, 1, 'answered PINGs keep the connection');
  const closed = new Promise((resolve) => t.once('close', resolve));
  t.on('error', () => undefined);
  const frozenAt = Date.now();
  fwd.freeze();
  await closed;
  const tookMs = Date.now() - frozenAt;
  assert.ok(tookMs >= 250 && tookMs < 2000, `dropped after ${tookMs} ms`);
  assert.equal(pool.stats().connections, 0);
  await waitFor('server dropped its side too', () => hbone.server.stats().connections === 0, 3000);
  const t2 = await pool.connect(target(fwd.port));
  assert.equal(await roundTrip(t2, 'pong'), 'pong');
  assert.equal(fwd.connections, 2);
  assert.equal(hbone.server.stats().handshakes, 2);
  await closeAll([t2]);
});

test('server close(): GOAWAY lets running tunnels finish; the pool stops using the connection', async () => {
  const hbone = await startHboneServer(cleanup, mesh.server);
  const pool = newPool();
  const t = await pool.connect(target(hbone.port));
  const closing = hbone.server.close(5000);
  await waitFor('pool saw GOAWAY', () => pool.stats().connections === 1 && (pool as unknown as { byKey: Map<string, unknown> }).byKey.size === 0);
  assert.equal(await roundTrip(t, 'finishing'), 'finishing', 'the running tunnel still works');
  const refused = await pool.connect(target(hbone.port)).then(() => assert.fail('listener is closed'), (e: unknown) => e);
  assert.ok(refused instanceof AmbitError);
  assert.equal(refused.code, 'AMBIT_ERR_CONNECT', 'a new connection was attempted, not the draining one');
  await closeAll([t]);
  await closing;
  assert.equal(hbone.server.stats().connections, 0);
});

/** A plain Node HTTP/2 server with HBONE's TLS, for behaviour HboneServer never shows. */
async function rawServer(settings: http2.Settings, onStream: (s: http2.ServerHttp2Stream, session: http2.ServerHttp2Session) => void): Promise<{ port: number; handshakes: () => number }> {
  let handshakes = 0;
  const server = http2.createSecureServer({ ...serverTlsOptions(mesh.server), requestCert: true, rejectUnauthorized: true, settings });
  server.on('secureConnection', () => { handshakes++; });
  server.on('stream', (stream) => {
    stream.on('error', () => undefined);
    onStream(stream, stream.session as http2.ServerHttp2Session);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanup.add(() => {
    server.close();
    (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
  }, undefined);
  return { port: (server.address() as { port: number }).port, handshakes: () => handshakes };
}

function echoStream(stream: http2.ServerHttp2Stream): void {
  stream.respond({ ':status': 200 });
  stream.pipe(stream);
}

test('the server\'s SETTINGS_MAX_CONCURRENT_STREAMS is respected', async () => {
  let maxOpen = 0;
  const raw = await rawServer({ maxConcurrentStreams: 10 }, (stream, session) => {
    const perSession = (session as unknown as { open?: number });
    perSession.open = (perSession.open ?? 0) + 1;
    maxOpen = Math.max(maxOpen, perSession.open);
    stream.on('close', () => { perSession.open = (perSession.open ?? 1) - 1; });
    echoStream(stream);
  });
  const pool = newPool();
  const first = await pool.connect(target(raw.port));
  const more = await Promise.all(Array.from({ length: 25 }, () => pool.connect(target(raw.port))));
  const all = [first, ...more];
  const echoes = await Promise.all(all.map((t, i) => roundTrip(t, `s${i}`)));
  echoes.forEach((e, i) => assert.equal(e, `s${i}`));
  assert.ok(maxOpen <= 10, `at most 10 streams per connection (saw ${maxOpen})`);
  assert.equal(raw.handshakes(), 3, '26 tunnels / 10 per connection = 3 connections');
  await closeAll(all);
});

test('after a GOAWAY from the server, new tunnels go to a new connection and the old tunnel continues', async () => {
  let streams = 0;
  const raw = await rawServer({}, (stream, session) => {
    streams++;
    echoStream(stream);
    if (streams === 1) setImmediate(() => session.goaway(http2.constants.NGHTTP2_NO_ERROR, stream.id));
  });
  const pool = newPool();
  const t1 = await pool.connect(target(raw.port));
  await waitFor('GOAWAY processed', () => (pool as unknown as { byKey: Map<string, unknown> }).byKey.size === 0);
  const t2 = await pool.connect(target(raw.port));
  assert.equal(raw.handshakes(), 2);
  assert.equal(await roundTrip(t1, 'old'), 'old');
  assert.equal(await roundTrip(t2, 'new'), 'new');
  await closeAll([t1, t2]);
});

test('connectTimeoutMs and AbortSignal cancel a pending tunnel; the server sees the cancellation', async () => {
  const pending: { cancelled: boolean }[] = [];
  const hbone = await startHboneServer(cleanup, mesh.server, { onRequest: (req) => pending.push(req) });
  const pool = newPool();
  const timedOut = await pool.connect(target(hbone.port, { connectTimeoutMs: 200 })).then(() => assert.fail('no answer'), (e: unknown) => e);
  assert.ok(timedOut instanceof AmbitError);
  assert.equal(timedOut.code, 'AMBIT_ERR_TIMEOUT');
  await waitFor('server request aborted', () => pending[0]?.cancelled === true);

  const ac = new AbortController();
  const p = pool.connect(target(hbone.port, { signal: ac.signal }));
  await waitFor('second request arrived', () => pending.length === 2);
  ac.abort();
  const aborted = await p.then(() => assert.fail('aborted'), (e: unknown) => e);
  assert.ok(aborted instanceof AmbitError);
  assert.equal(aborted.details?.aborted, true);
  await waitFor('server request aborted', () => pending[1]?.cancelled === true);
  assert.equal(hbone.server.stats().handshakes, 1, 'the connection survived both cancellations');
  await waitFor('streams closed', () => pool.stats().streams === 0 && hbone.server.stats().streams === 0);
});

test('a connection that cannot be made rejects with AMBIT_ERR_CONNECT and a hint', async () => {
  const e0 = await startEcho(cleanup);
  await new Promise<void>((resolve) => e0.server.close(() => resolve()));
  const pool = newPool();
  const e = await pool.connect(target(e0.port)).then(() => assert.fail('nothing listens'), (x: unknown) => x);
  assert.ok(e instanceof AmbitError);
  assert.equal(e.code, 'AMBIT_ERR_CONNECT');
  assert.match(e.message, /ECONNREFUSED/);
  assert.equal(pool.stats().connections + pool.stats().connecting, 0);
});

test('a handler that throws (or rejects) answers 500 and leaves the connection usable', async () => {
  let mode: 'throw' | 'reject' | 'ok' = 'throw';
  const hbone = await startHboneServer(cleanup, mesh.server, {
    onRequest: (req) => {
      if (mode === 'throw') throw new Error('boom');
      if (mode === 'reject') return Promise.reject(new Error('async boom')) as unknown as void;
      const t = req.accept();
      t.pipe(t);
      return undefined;
    },
  });
  const pool = newPool();
  const e1 = await pool.connect(target(hbone.port)).then(() => assert.fail('500'), (e: unknown) => e);
  assert.ok(e1 instanceof AmbitError);
  assert.equal(e1.details?.status, 500);
  mode = 'reject';
  const e2 = await pool.connect(target(hbone.port)).then(() => assert.fail('500'), (e: unknown) => e);
  assert.ok(e2 instanceof AmbitError);
  assert.equal(e2.details?.status, 500);
  mode = 'ok';
  const t = await pool.connect(target(hbone.port));
  assert.equal(await roundTrip(t, 'fine'), 'fine');
  assert.equal(hbone.server.stats().handshakes, 1);
  assert.ok(hbone.logLines.some((l) => l.msg === 'hbone request handler failed'));
  await closeAll([t]);
});
