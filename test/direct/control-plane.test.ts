// The control plane with two real ztunnels over gRPC on loopback: live config, refusal of
// bad changes, policy changes closing live connections, node-scoped certificates, and
// surviving the control plane's absence.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { X509Certificate } from 'node:crypto';
import { mintProxyToken, newProxyKey } from '../../src/controlplane/proxy-credentials.js';
import { once } from 'node:events';
import { startXdsMesh, type XdsMesh } from '../helpers/xds-mesh.js';
import { yaml } from '../helpers/config.js';
import { main } from '../../src/cli/main.js';
import { generateKeyAndCsr } from '../../src/identity/csr.js';
import { CaClient } from '../../src/xds/ca-client.js';
import { mustParseSpiffe } from '../../src/identity/spiffe.js';
import { waitFor } from '../helpers/wait.js';

const CLIENT = 'Kubernetes//Pod/shop/client';
const base = yaml`
  apiVersion: v1
  kind: Namespace
  metadata: {name: shop, labels: {istio.io/dataplane-mode: ambient}}
  ---
  apiVersion: v1
  kind: Pod
  metadata: {name: client, namespace: shop, labels: {app: client}}
  spec: {serviceAccountName: client, nodeName: node-1, containers: [{name: c, command: [x]}]}
  status: {podIP: 127.0.11.1}
  ---
  apiVersion: v1
  kind: Pod
  metadata: {name: server, namespace: shop, labels: {app: server}}
  spec: {serviceAccountName: server, nodeName: node-2, containers: [{name: c, command: [x]}]}
  status: {podIP: 127.0.21.1}
  ---
  apiVersion: v1
  kind: Service
  metadata: {name: server, namespace: shop}
  spec: {selector: {app: server}, clusterIP: 10.96.0.50, ports: [{port: 80, targetPort: 8080}]}
`;

let mesh: XdsMesh;
let app: net.Server;

before(async () => {
  app = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => {});
    s.on('data', (c: Buffer) => s.write(c));
    s.on('end', () => s.end());
  });
  await new Promise<void>((r) => app.listen(8080, '127.0.21.1', () => r()));
  mesh = await startXdsMesh(base);
  await waitFor('the condition', () => mesh.nodes['node-1']!.ztunnel.ready().ready && mesh.nodes['node-2']!.ztunnel.ready().ready, 5000);
});

after(async () => {
  await mesh?.close();
  app?.close();
});

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { out: (t) => { out += t; }, err: (t) => { err += t; }, env: { AMBIT_CONTROL_PLANE: mesh.adminUrl, AMBIT_ADMIN_TOKEN: mesh.adminToken }, cwd: process.cwd() });
  return { code, out, err };
}

async function roundTrip(text: string): Promise<string> {
  const fwd = await mesh.forward('node-1', CLIENT, { ip: '10.96.0.50', port: 80 });
  const s = net.connect({ host: fwd.ip, port: fwd.port });
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  s.end(text);
  try {
    await once(s, 'end');
  } catch {
    return '<reset>';
  }
  return Buffer.concat(chunks).toString();
}

const tmpDirs: string[] = [];
after(async () => {
  const { rm } = await import('node:fs/promises');
  await Promise.all(tmpDirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function tmpFile(text: string): Promise<string> {
  const { mkdtemp, writeFile } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const dir = await mkdtemp(join(tmpdir(), 'ambit-cp-'));
  tmpDirs.push(dir);
  const f = join(dir, 'change.yaml');
  await writeFile(f, text);
  return f;
}

test('ztunnels receive the workload API over delta xDS, get certificates from the CA, and carry traffic', async () => {
  assert.equal(await roundTrip('hello'), 'hello');
  const r = await cli(['proxy-status']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /node-1\s+SYNCED/);
  assert.match(r.out, /node-2\s+SYNCED/);
});

test('an invalid apply is refused with every error and nothing changes', async () => {
  const before = mesh.cp!.store.current().version;
  const f = await tmpFile(yaml`
    apiVersion: security.istio.io/v1
    kind: AuthorizationPolicy
    metadata: {name: bad, namespace: shop}
    spec:
      action: DENYY
      rules: [{from: [{source: {ipBlocks: [not-a-cidr]}}]}]`);
  const r = await cli(['apply', '-f', f]);
  assert.equal(r.code, 1);
  assert.match(r.err, /change\.yaml:\d+:\d+: error \[bad-value\] AuthorizationPolicy shop\/bad spec\.action/);
  assert.match(r.err, /bad-cidr/);
  assert.match(r.err, /nothing was changed/);
  assert.equal(mesh.cp!.store.current().version, before);
  assert.equal(await roundTrip('still works'), 'still works');
});

test('a valid apply that adds a DENY closes a live connection through the real ztunnel within a second; delete restores', async () => {
  const fwd = await mesh.forward('node-1', CLIENT, { ip: '10.96.0.50', port: 80 });
  const s = net.connect({ host: fwd.ip, port: fwd.port });
  const closed = new Promise<number>((resolve) => {
    s.on('error', () => {});
    s.on('close', () => resolve(Date.now()));
  });
  s.write('ping');
  await once(s, 'data');
  const f = await tmpFile(yaml`
    apiVersion: security.istio.io/v1
    kind: AuthorizationPolicy
    metadata: {name: deny-client, namespace: shop}
    spec:
      selector: {matchLabels: {app: server}}
      action: DENY
      rules: [{from: [{source: {principals: [cluster.local/ns/shop/sa/client]}}]}]`);
  const applied = Date.now();
  const r = await cli(['apply', '-f', f]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /AuthorizationPolicy\/shop\/deny-client configured/);
  const at = await closed;
  assert.ok(at - applied < 1000, `closed ${at - applied} ms after apply`);
  assert.equal(await roundTrip('denied?'), '<reset>');
  const d = await cli(['delete', '-f', f]);
  assert.equal(d.code, 0, d.err);
  await waitFor('the condition', async () => (await roundTrip('back')) === 'back', 3000);
});

test('CA: a node may get certificates only for its own workloads; a wrong credential is refused', async () => {
  const { csrPem } = await generateKeyAndCsr(mustParseSpiffe('spiffe://cluster.local/ns/shop/sa/server'));
  const asNode1 = new CaClient({ address: mesh.xdsAddress, token: mesh.tokens['node-1']!, tls: mesh.tls });
  const asNode2 = new CaClient({ address: mesh.xdsAddress, token: mesh.tokens['node-2']!, tls: mesh.tls });
  const stranger = new CaClient({ address: mesh.xdsAddress, token: 'not-a-node-token', tls: mesh.tls });
  try {
    await assert.rejects(asNode1.createCertificate({ csrPem, ttlSeconds: 600, impersonatedIdentity: 'spiffe://cluster.local/ns/shop/sa/server' }),
      (e: Error & { details?: { grpcStatus?: string } }) => /PERMISSION_DENIED|node node-1 runs no workload/.test(`${e.message} ${JSON.stringify(e.details)}`));
    const chain = await asNode2.createCertificate({ csrPem, ttlSeconds: 600, impersonatedIdentity: 'spiffe://cluster.local/ns/shop/sa/server' });
    assert.ok(chain.length >= 2);
    await assert.rejects(stranger.createCertificate({ csrPem, ttlSeconds: 600, impersonatedIdentity: 'spiffe://cluster.local/ns/shop/sa/server' }),
      (e: Error & { details?: unknown }) => /UNAUTHENTICATED|credential/.test(`${e.message} ${JSON.stringify(e.details)}`));
    assert.ok(mesh.cpLogs.some((l) => l.msg === 'certificate refused' && l.caller === 'node-1'), 'the refusal is logged with who asked for what');
  } finally {
    asNode1.close();
    asNode2.close();
    stranger.close();
  }
});

test('with the control plane down, a running ztunnel keeps serving; a restarted one cannot get certificates until it is back', async () => {
  await mesh.stopControlPlane();
  try {
    assert.equal(await roundTrip('cp down'), 'cp down', 'both ztunnels keep their last good config and certificates');
    await mesh.nodes['node-2']!.stop();
    const n2 = await mesh.startNode('node-2');
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(n2.ztunnel.ready().ready, false);
    assert.equal(await roundTrip('no server ztunnel'), '<reset>', 'fails closed, never plaintext');
  } finally {
    await mesh.startControlPlane();
  }
  await waitFor('the condition', () => mesh.nodes['node-2']!.ztunnel.ready().ready, 8000);
  await waitFor('the condition', async () => (await roundTrip('recovered')) === 'recovered', 5000);
});

test('xDS and the CA speak TLS only: a plaintext client gets nothing; a client refuses a server that is not the control plane before sending its token', async () => {
  const { csrPem } = await generateKeyAndCsr(mustParseSpiffe('spiffe://cluster.local/ns/shop/sa/server'));
  const plaintext = new CaClient({ address: mesh.xdsAddress, token: mesh.tokens['node-2']!, timeoutMs: 2000 });
  try {
    await assert.rejects(plaintext.createCertificate({ csrPem, ttlSeconds: 600, impersonatedIdentity: 'spiffe://cluster.local/ns/shop/sa/server' }), /UNAVAILABLE|INTERNAL|connection/i);
  } finally {
    plaintext.close();
  }
  // An impostor with a perfectly valid workload certificate of the same mesh.
  const impostorCert = await mesh.ca.issueWorkloadCertificate(mustParseSpiffe('spiffe://cluster.local/ns/shop/sa/server'));
  if (!impostorCert.ok) throw impostorCert.error;
  const seen: string[] = [];
  const impostor = http2.createSecureServer({ key: impostorCert.value.keyPem, cert: impostorCert.value.certChainPem.join(''), allowHTTP1: false });
  impostor.on('stream', (s, h) => { seen.push(String(h.authorization ?? '')); s.respond({ ':status': 200 }); s.end(); });
  await new Promise<void>((r) => impostor.listen(0, '127.0.0.1', () => r()));
  const fooled = new CaClient({ address: `127.0.0.1:${(impostor.address() as net.AddressInfo).port}`, token: mesh.tokens['node-2']!, tls: mesh.tls, timeoutMs: 2000 });
  try {
    await assert.rejects(fooled.createCertificate({ csrPem, ttlSeconds: 600, impersonatedIdentity: 'spiffe://cluster.local/ns/shop/sa/server' }), /not the control plane|UNAVAILABLE/);
    assert.deepEqual(seen, [], 'the token never reached the impostor');
  } finally {
    fooled.close();
    impostor.close();
  }
});

test('a proxy credential gets only its own pod\'s identity; lifetimes are capped at --cert-ttl', async () => {
  const key = newProxyKey();
  await mesh.stopControlPlane();
  mesh.controlPlaneOptions = { proxyKey: key, certificateTtlSeconds: 3600 };
  await mesh.startControlPlane();
  const asServerProxy = new CaClient({ address: mesh.xdsAddress, token: mintProxyToken(key, { namespace: 'shop', name: 'server' }), tls: mesh.tls });
  const forged = new CaClient({ address: mesh.xdsAddress, token: mintProxyToken(newProxyKey(), { namespace: 'shop', name: 'server' }), tls: mesh.tls });
  try {
    const own = await generateKeyAndCsr(mustParseSpiffe('spiffe://cluster.local/ns/shop/sa/server'));
    const chain = await asServerProxy.createCertificate({ csrPem: own.csrPem, ttlSeconds: 10 * 24 * 3600, impersonatedIdentity: 'spiffe://cluster.local/ns/shop/sa/server' });
    const leaf = new X509Certificate(chain[0]!);
    const lifetimeS = (Date.parse(leaf.validTo) - Date.parse(leaf.validFrom)) / 1000;
    assert.ok(lifetimeS <= 3600 + 5 * 60 + 1, `asked for 10 days, got ${lifetimeS} s`);
    const other = await generateKeyAndCsr(mustParseSpiffe('spiffe://cluster.local/ns/shop/sa/client'));
    await assert.rejects(asServerProxy.createCertificate({ csrPem: other.csrPem, ttlSeconds: 600, impersonatedIdentity: 'spiffe://cluster.local/ns/shop/sa/client' }),
      (e: Error & { details?: unknown }) => /may obtain only its own identity/.test(`${e.message} ${JSON.stringify(e.details)}`));
    await assert.rejects(forged.createCertificate({ csrPem: own.csrPem, ttlSeconds: 600, impersonatedIdentity: 'spiffe://cluster.local/ns/shop/sa/server' }),
      (e: Error & { details?: unknown }) => /UNAUTHENTICATED|credential/.test(`${e.message} ${JSON.stringify(e.details)}`));
    assert.ok(mesh.cpLogs.some((l) => l.msg === 'certificate refused' && l.credential === 'proxy/shop/server' && l.requested === 'spiffe://cluster.local/ns/shop/sa/client'));
  } finally {
    asServerProxy.close();
    forged.close();
    await mesh.stopControlPlane();
    mesh.controlPlaneOptions = {};
    await mesh.startControlPlane();
  }
});

test('the admin API wants its token for everything but metrics and readiness, and refuses web pages', async () => {
  const get = (path: string, headers: Record<string, string> = {}) => fetch(`${mesh.adminUrl}${path}`, { headers }).then(async (r) => ({ status: r.status, text: await r.text() }));
  assert.equal((await get('/api/status')).status, 401);
  assert.equal((await get('/api/resources')).status, 401);
  assert.equal((await get('/debug/syncz', { authorization: 'Bearer wrong-token-of-any-length' })).status, 401);
  assert.equal((await get('/api/status', { authorization: `Bearer ${mesh.adminToken}` })).status, 200);
  assert.equal((await get('/metrics')).status, 200);
  assert.equal((await get('/ready')).status, 200);
  // A page's POST (text/plain needs no preflight) carries an Origin: refused, even with the token.
  const post = await fetch(`${mesh.adminUrl}/api/apply`, { method: 'POST', body: 'kind: Namespace', headers: { 'content-type': 'text/plain', origin: 'http://evil.example', authorization: `Bearer ${mesh.adminToken}` } });
  assert.equal(post.status, 403);
  // DNS rebinding: a page's own name pointing at 127.0.0.1.
  const rebound = await new Promise<number>((resolve, reject) => {
    http.get(`${mesh.adminUrl}/metrics`, { headers: { host: 'evil.example:15014' } }, (r) => { r.resume(); resolve(r.statusCode ?? 0); }).on('error', reject);
  });
  assert.equal(rebound, 403);
  const cliNoToken = await main(['get', 'pods'], { out: () => {}, err: () => {}, env: { AMBIT_CONTROL_PLANE: mesh.adminUrl, AMBIT_STATE_DIR: '/nonexistent' }, cwd: process.cwd() });
  assert.notEqual(cliNoToken, 0);
});
