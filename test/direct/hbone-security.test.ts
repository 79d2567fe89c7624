// Who gets through HBONE: wrong server identity, untrusted roots both ways, expired
// certificates both ways, no client certificate, a foreign trust domain, TLS 1.2, a non-CONNECT
// method and bad authorities. Each is refused (and counted through onRefused) without harming
// the other tunnels; plus the TLS facts of the wire contract (TLS 1.3, suite, ALPN, no SNI, no
// resumption) and certificate rotation on the server.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import * as tls from 'node:tls';
import { FakeClock } from '../../src/core/clock.js';
import { AmbitError } from '../../src/core/errors.js';
import { MeshCA } from '../../src/identity/ca.js';
import { tlsOptions, type WorkloadCertificate } from '../../src/identity/workload-certificate.js';
import { HbonePool, type HboneConnectOptions } from '../../src/hbone/pool.js';
import { serverTlsOptions } from '../../src/hbone/wire.js';
import { CLIENT_ID, Cleanup, SERVER_ID, issue, quietLogger, readAll, startEcho, startHboneServer, testMesh, type TestHboneServer, type TestMesh, type Upstream } from '../helpers/hbone.js';
import { waitFor } from '../helpers/wait.js';

const cleanup = new Cleanup();
let mesh: TestMesh;
let echo: Upstream;
let hbone: TestHboneServer;
let pool: HbonePool;

before(async () => {
  mesh = await testMesh();
  echo = await startEcho(cleanup);
  hbone = await startHboneServer(cleanup, mesh.server);
  pool = cleanup.add(() => pool.destroy(), new HbonePool({ logger: quietLogger() }));
});
after(() => cleanup.run());

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

async function echoOnce(p: HbonePool, opts: HboneConnectOptions, text = 'ping'): Promise<string> {
  const t = await p.connect(opts);
  const got = readAll(t);
  t.end(text);
  return (await got).text;
}

async function rejection(p: Promise<unknown>): Promise<AmbitError> {
  const e = await p.then(() => assert.fail('expected a rejection'), (x: unknown) => x);
  assert.ok(e instanceof AmbitError, `an AmbitError, got ${String(e)}`);
  return e;
}

/** A tunnel on the shared connection, open during each refusal, must survive it. */
async function withBystander(fn: () => Promise<void>): Promise<void> {
  const bystander = await pool.connect(target(hbone.port));
  const got = readAll(bystander);
  bystander.write('bystander ');
  await fn();
  bystander.end('survived');
  assert.equal((await got).text, 'bystander survived');
}

function refusalsSince(n: number): string[] {
  return hbone.refusals.slice(n).map((r) => r.reason);
}

test('the wire: TLS 1.3, AES-GCM, ALPN h2, no SNI, and nothing sent to a server with the wrong identity', async () => {
  const seen: { servername: unknown; protocol: string | null; cipher: string; alpn: unknown; bytes: number }[] = [];
  const raw = tls.createServer({ ...serverTlsOptions(mesh.server), requestCert: true, rejectUnauthorized: true, ALPNProtocols: ['h2'] }, (s) => {
    const entry = { servername: s.servername, protocol: s.getProtocol(), cipher: s.getCipher().name, alpn: s.alpnProtocol, bytes: 0 };
    seen.push(entry);
    s.on('data', (d: Buffer) => { entry.bytes += d.length; });
    s.on('error', () => undefined);
  });
  raw.listen(0, '127.0.0.1');
  await once(raw, 'listening');
  cleanup.add(() => raw.close(), undefined);
  const port = (raw.address() as AddressInfo).port;
  let handshakeErrors = 0;
  raw.on('tlsClientError', () => { handshakeErrors++; });
  const p = new HbonePool({ logger: quietLogger() });
  cleanup.add(() => p.destroy(), undefined);

  // The right identity: look at what the pool's client put on the wire.
  const ok = p.connect(target(port, { connectTimeoutMs: 300 })).catch(() => undefined); // the raw server never answers
  await waitFor('server saw the handshake', () => seen.length === 1);
  const s = seen[0]!;
  assert.equal(s.servername, false, 'no SNI');
  assert.equal(s.protocol, 'TLSv1.3');
  assert.equal(s.cipher, 'TLS_AES_256_GCM_SHA384');
  assert.equal(s.alpn, 'h2');
  await waitFor('the HTTP/2 preface and CONNECT arrived', () => s.bytes > 0);
  await ok;

  // A wrong identity: the client gives up inside the handshake.
  const e = await rejection(p.connect(target(port, { expectedIdentities: ['spiffe://cluster.local/ns/shop/sa/someone-else'], connectTimeoutMs: 2000 })));
  assert.equal(e.code, 'AMBIT_ERR_IDENTITY');
  assert.match(e.message, /server identity spiffe:\/\/cluster\.local\/ns\/shop\/sa\/server is not one of the expected/);
  await waitFor('the server saw the aborted handshake', () => handshakeErrors + seen.length >= 2);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(seen.slice(1).reduce((n, x) => n + x.bytes, 0), 0, 'not a single application byte reached the wrong server');
  assert.equal(p.stats().connections, 1, 'only the first connection');
});

test('wrong server identity against HboneServer: refused, the server sees no request', async () => {
  const requests = hbone.requests.length;
  await withBystander(async () => {
    const e = await rejection(pool.connect(target(hbone.port, { expectedIdentities: ['spiffe://cluster.local/ns/other/sa/server'] })));
    assert.equal(e.code, 'AMBIT_ERR_IDENTITY');
  });
  assert.equal(hbone.requests.length, requests + 1, 'only the bystander reached the handler');
});

test('a server certificate from another CA is refused by the client', async () => {
  const foreign = await MeshCA.create();
  const foreignServer = await issue(foreign, SERVER_ID);
  const rogue = await startHboneServer(cleanup, foreignServer);
  const e = await rejection(pool.connect(target(rogue.port)));
  assert.equal(e.code, 'AMBIT_ERR_TLS');
  assert.equal(rogue.requests.length, 0);
  await waitFor('the rogue server counted a TLS failure', () => rogue.refusals.length === 1);
  assert.match(rogue.refusals[0]!.reason, /TLS handshake failed/);
});

test('a client certificate from another CA is refused by the server', async () => {
  const foreign = await MeshCA.create();
  // It trusts our server (our root in its bundle); the server must still not trust it.
  const client: WorkloadCertificate = { ...(await issue(foreign, CLIENT_ID)), rootPem: mesh.ca.rootPem };
  const n = hbone.refusals.length;
  await withBystander(async () => {
    const p = new HbonePool({ logger: quietLogger() });
    cleanup.add(() => p.destroy(), undefined);
    const e = await rejection(p.connect(target(hbone.port, { certificate: () => client })));
    assert.match(e.code, /AMBIT_ERR_(HBONE|TLS|CONNECT)/);
  });
  assert.deepEqual(refusalsSince(n).map((r) => r.replace(/:.*/, '')), ['client certificate not trusted']);
  assert.equal(hbone.refusals[n]!.peerAddress.startsWith('127.0.0.1:'), true);
});

test('expired certificates are refused in both directions', async () => {
  const twoDaysAgo = new FakeClock(Date.now() - 2 * 24 * 3600 * 1000);
  const oldCa = await MeshCA.create({ clock: twoDaysAgo });
  const bundle = mesh.ca.rootPem + oldCa.rootPem;

  // An expired client.
  const expiredClient: WorkloadCertificate = { ...(await issue(oldCa, CLIENT_ID, 3600)), rootPem: bundle };
  assert.ok(expiredClient.notAfter.getTime() < Date.now());
  const server = await startHboneServer(cleanup, { ...mesh.server, rootPem: bundle });
  const p = new HbonePool({ logger: quietLogger() });
  cleanup.add(() => p.destroy(), undefined);
  await rejection(p.connect(target(server.port, { certificate: () => expiredClient })));
  await waitFor('refusal', () => server.refusals.length === 1);
  assert.match(server.refusals[0]!.reason, /CERT_HAS_EXPIRED/);
  assert.equal(server.requests.length, 0);

  // An expired server.
  const expiredServer: WorkloadCertificate = { ...(await issue(oldCa, SERVER_ID, 3600)), rootPem: bundle };
  const stale = await startHboneServer(cleanup, expiredServer);
  const e = await rejection(p.connect(target(stale.port, { certificate: () => ({ ...mesh.client, rootPem: bundle }) })));
  assert.equal(e.code, 'AMBIT_ERR_TLS');
  assert.match(e.message, /CERT_HAS_EXPIRED/);
  assert.match(e.hint ?? '', /validity/);
  assert.equal(stale.requests.length, 0);
});

test('a client without a certificate is refused', async () => {
  const n = hbone.refusals.length;
  await withBystander(async () => {
    const s = tls.connect({ host: '127.0.0.1', port: hbone.port, ca: mesh.ca.rootPem, ALPNProtocols: ['h2'], checkServerIdentity: () => undefined });
    s.on('error', () => undefined);
    await once(s, 'secureConnect');
    s.write(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'));
    await new Promise((resolve) => s.once('close', resolve));
  });
  assert.deepEqual(refusalsSince(n), ['client presented no certificate']);
});

test('a client from another trust domain is refused even when its root is trusted', async () => {
  const otherCa = await MeshCA.create({ trustDomain: 'other.example' });
  const otherClient: WorkloadCertificate = { ...(await issue(otherCa, 'spiffe://other.example/ns/shop/sa/client')), rootPem: mesh.ca.rootPem };
  const server = await startHboneServer(cleanup, { ...mesh.server, rootPem: mesh.ca.rootPem + otherCa.rootPem });
  const p = new HbonePool({ logger: quietLogger() });
  cleanup.add(() => p.destroy(), undefined);
  // The same server still serves its own trust domain.
  assert.equal(await echoOnce(p, target(server.port)), 'ping');
  await rejection(p.connect(target(server.port, { sourceIdentity: 'spiffe://other.example/ns/shop/sa/client', certificate: () => otherClient })));
  await waitFor('refusal', () => server.refusals.length === 1);
  assert.equal(server.refusals[0]!.reason, 'client identity spiffe://other.example/ns/shop/sa/client is not in trust domain cluster.local');
  assert.equal(server.refusals[0]!.peerIdentity, 'spiffe://other.example/ns/shop/sa/client');
  assert.equal(server.requests.length, 1);
  assert.ok(server.logLines.some((l) => l.msg === 'hbone refused' && String(l.reason).includes('other.example')), 'the refusal is logged');
});

test('TLS 1.2 is refused', async () => {
  const n = hbone.refusals.length;
  const s = tls.connect({ host: '127.0.0.1', port: hbone.port, ...tlsOptions(mesh.client), maxVersion: 'TLSv1.2', ALPNProtocols: ['h2'], checkServerIdentity: () => undefined });
  const outcome = await new Promise<string>((resolve) => {
    s.once('secureConnect', () => resolve('connected'));
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
  });
  assert.notEqual(outcome, 'connected');
  await waitFor('refusal', () => hbone.refusals.length > n);
  assert.match(hbone.refusals[n]!.reason, /TLS handshake failed/);
});

/** An HTTP/2 session over a raw TLS connection with the client's certificate. */
async function rawSession(port: number): Promise<http2.ClientHttp2Session> {
  const socket = tls.connect({ host: '127.0.0.1', port, ...tlsOptions(mesh.client), ALPNProtocols: ['h2'], checkServerIdentity: () => undefined });
  await once(socket, 'secureConnect');
  const session = http2.connect(`https://127.0.0.1:${port}`, { createConnection: () => socket });
  session.on('error', () => undefined);
  cleanup.add(() => session.destroy(), undefined);
  return session;
}

function statusOf(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = session.request(headers, { endStream: false });
    req.on('error', reject);
    req.once('response', (h) => {
      resolve(Number(h[':status']));
      req.close();
    });
  });
}

test('non-CONNECT methods and bad authorities get 400, counted, while a tunnel on the same connection keeps working', async () => {
  const session = await rawSession(hbone.port);
  const tunnel = session.request({ ':method': 'CONNECT', ':authority': `127.0.0.1:${echo.port}` }, { endStream: false });
  const [res] = (await once(tunnel, 'response')) as [http2.IncomingHttpHeaders];
  assert.equal(res[':status'], 200);
  assert.equal(res.baggage, 'k8s.namespace.name=shop', 'the handler\'s response headers arrive');
  const echoed = readAll(tunnel);
  tunnel.write('before ');

  const n = hbone.refusals.length;
  const requests = hbone.requests.length;
  assert.equal(await statusOf(session, { ':method': 'GET', ':path': '/', ':authority': `127.0.0.1:${echo.port}` }), 400);
  assert.equal(await statusOf(session, { ':method': 'POST', ':path': '/x', ':authority': `127.0.0.1:${echo.port}` }), 400);
  for (const authority of ['example.com:80', '127.0.0.1', '127.0.0.1:0', '127.0.0.1:99999', '[::1:80', '10.0.0.1:80x']) {
    assert.equal(await statusOf(session, { ':method': 'CONNECT', ':authority': authority }), 400, authority);
  }
  const reasons = refusalsSince(n);
  assert.equal(reasons.length, 8);
  assert.match(reasons[0]!, /method GET is not CONNECT/);
  assert.match(reasons[2]!, /authority 'example\.com:80' is not ip:port/);
  assert.ok(hbone.refusals.slice(n).every((r) => r.status === 400 && r.peerIdentity === CLIENT_ID));
  assert.equal(hbone.requests.length, requests, 'none reached the handler');

  tunnel.end('after');
  assert.equal((await echoed).text, 'before after');
  assert.equal(hbone.server.stats().handshakes >= 1, true);
});

test('an IPv6 authority is parsed', async () => {
  const session = await rawSession(hbone.port);
  const n = hbone.requests.length;
  // Nothing listens on [::1]:9 in the test; the handler answers 503 after parsing it.
  const status = await statusOf(session, { ':method': 'CONNECT', ':authority': '[::1]:9' });
  assert.equal(status, 503);
  assert.deepEqual(hbone.requests[n]!.target, { ip: '::1', port: 9 });
});

test('no session resumption: a client offering the previous session gets a full handshake', async () => {
  const first = tls.connect({ host: '127.0.0.1', port: hbone.port, ...tlsOptions(mesh.client), ALPNProtocols: ['h2'], checkServerIdentity: () => undefined });
  first.on('error', () => undefined);
  let ticket: Buffer | undefined;
  first.on('session', (s: Buffer) => { ticket = s; });
  await once(first, 'secureConnect');
  await new Promise((r) => setTimeout(r, 50));
  first.destroy();
  if (ticket) {
    const second = tls.connect({ host: '127.0.0.1', port: hbone.port, ...tlsOptions(mesh.client), ALPNProtocols: ['h2'], session: ticket, checkServerIdentity: () => undefined });
    second.on('error', () => undefined);
    await once(second, 'secureConnect');
    assert.equal(second.isSessionReused(), false);
    second.destroy();
  }
});

test('certificate rotation: the next handshake presents the new certificate', async () => {
  let current = mesh.server;
  const server = await startHboneServer(cleanup, () => current);
  const serialSeen = async (): Promise<string> => {
    const s = tls.connect({ host: '127.0.0.1', port: server.port, ...tlsOptions(mesh.client), ALPNProtocols: ['h2'], checkServerIdentity: () => undefined });
    s.on('error', () => undefined);
    await once(s, 'secureConnect');
    const serial = s.getPeerCertificate().serialNumber;
    s.destroy();
    return serial;
  };
  const before = await serialSeen();
  current = await issue(mesh.ca, SERVER_ID);
  const afterRotation = await serialSeen();
  assert.notEqual(before, afterRotation);
  assert.equal(afterRotation.toLowerCase().replace(/^0+/, ''), new (await import('node:crypto')).X509Certificate(current.certChainPem[0]!).serialNumber.toLowerCase().replace(/^0+/, ''));
});
