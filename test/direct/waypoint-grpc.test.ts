// gRPC through a real waypoint on loopback: an HTTP/2 client speaking gRPC framing through an
// HBONE tunnel to the waypoint, which routes it over HBONE to a ztunnel-like inbound in front
// of an h2c server answering with trailers. Trailers (grpc-status) must arrive, and the
// request telemetry must report protocol grpc and the gRPC status.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { systemClock } from '../../src/core/clock.js';
import { memoryLogger } from '../../src/core/logger.js';
import { HbonePool, HboneServer, relay } from '../../src/hbone/index.js';
import { MeshCA } from '../../src/identity/ca.js';
import { mustParseSpiffe } from '../../src/identity/spiffe.js';
import type { WorkloadCertificate } from '../../src/identity/workload-certificate.js';
import { MetricsRegistry } from '../../src/telemetry/metrics.js';
import { Waypoint } from '../../src/waypoint/waypoint.js';
import { HostPodNetwork } from '../../src/dataplane/pod-network.js';
import { MeshView } from '../../src/dataplane/mesh-view.js';

const APP_IP = '127.0.51.1';
const WAYPOINT_IP = '127.0.61.1';
const VIP = '10.96.0.9';
const id = (sa: string) => `spiffe://cluster.local/ns/shop/sa/${sa}`;

let wp: Waypoint;
let app: http2.Http2Server;
let inbound: HboneServer;
let pool: HbonePool;
const certs = new Map<string, WorkloadCertificate>();
const { logger, lines } = memoryLogger({ level: 'error' });
const metrics = new MetricsRegistry();

before(async () => {
  const ca = await MeshCA.create({ trustDomain: 'cluster.local' });
  for (const sa of ['client', 'server', 'waypoint']) {
    const r = await ca.issueWorkloadCertificate(mustParseSpiffe(id(sa)));
    if (!r.ok) throw r.error;
    certs.set(id(sa), r.value);
  }
  // A gRPC-like h2c server: echoes the request message, status in trailers.
  app = http2.createServer();
  app.on('stream', (stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const fail = String(headers[':path']).endsWith('/Fail');
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers(fail ? { 'grpc-status': '5', 'grpc-message': 'not%20found' } : { 'grpc-status': '0' }));
      stream.end(fail ? Buffer.alloc(0) : Buffer.concat(chunks));
    });
  });
  await new Promise<void>((r) => app.listen(9090, APP_IP, () => r()));
  inbound = new HboneServer({
    certificate: () => certs.get(id('server'))!, trustDomain: 'cluster.local', logger,
    onRequest: (req) => {
      const up = net.connect({ host: req.target.ip, port: req.target.port, noDelay: true }, () => { void relay(req.accept(), up).done; });
      up.once('error', () => req.reject(503, 'upstream'));
    },
  });
  await inbound.listen(APP_IP, 15008);
  wp = new Waypoint({
    waypoint: { namespace: 'shop', name: 'waypoint' }, identity: id('waypoint'), trustDomain: 'cluster.local', rootNamespace: 'istio-system',
    podIp: WAYPOINT_IP, network: new HostPodNetwork(), bindAddress: WAYPOINT_IP,
    certificates: { get: async (i) => certs.get(i)!, current: (i) => certs.get(i), forget: () => {}, list: () => [], close: () => {} },
    logger, metrics, clock: systemClock, readFile: () => '',
  });
  wp.setConfig(new MeshView({
    workloads: [{
      uid: 'Kubernetes//Pod/shop/grpc', name: 'grpc', namespace: 'shop', addresses: [APP_IP], network: '', tunnelProtocol: 'HBONE',
      trustDomain: 'cluster.local', serviceAccount: 'server', node: 'node-1', canonicalName: 'grpc', canonicalRevision: 'v1',
      workloadType: 'POD', workloadName: 'grpc', authorizationPolicies: [], status: 'HEALTHY', clusterId: 'Kubernetes',
      services: { 'shop/grpc.shop.svc.cluster.local': { ports: [{ servicePort: 80, targetPort: 9090 }] } },
    }],
    // The service uses this waypoint (a waypoint refuses destinations that are not bound to it).
    services: [
      { name: 'grpc', namespace: 'shop', hostname: 'grpc.shop.svc.cluster.local', addresses: [{ network: '', address: VIP }], ports: [{ servicePort: 80, targetPort: 9090, appProtocol: 'grpc' }], subjectAltNames: [],
        waypoint: { hostname: { namespace: 'shop', hostname: 'waypoint.shop.svc.cluster.local' }, hboneMtlsPort: 15008 } },
      { name: 'waypoint', namespace: 'shop', hostname: 'waypoint.shop.svc.cluster.local', addresses: [{ network: '', address: '10.96.0.10' }], ports: [{ servicePort: 15008, targetPort: 15008 }], subjectAltNames: [] },
    ],
    authorizations: [],
  }), [], '1');
  await wp.start();
  pool = new HbonePool({ logger, clock: systemClock, createSocket: (dst) => net.connect({ host: dst.ip, port: dst.port, noDelay: true }) });
});

after(async () => {
  await wp?.close(100);
  await pool?.close(100);
  await inbound?.close(100);
  app?.close();
});

/** One gRPC unary call through the waypoint; returns the response message and the trailers. */
async function call(method: string, message: Buffer): Promise<{ status: number; body: Buffer; trailers: http2.IncomingHttpHeaders }> {
  const tunnel: Duplex = await pool.connect({
    sourceIdentity: id('client'), certificate: () => certs.get(id('client'))!, destination: { ip: WAYPOINT_IP, port: 15008 },
    expectedIdentities: [id('waypoint')], authority: `${VIP}:80`,
  });
  const session = http2.connect(`http://${VIP}`, { createConnection: () => tunnel as never });
  try {
    const frame = Buffer.alloc(5 + message.length);
    frame.writeUInt32BE(message.length, 1);
    message.copy(frame, 5);
    const s = session.request({ ':method': 'POST', ':path': `/demo.Echo/${method}`, 'content-type': 'application/grpc', te: 'trailers' });
    s.end(frame);
    const closed = new Promise((r) => s.once('close', r));
    const chunks: Buffer[] = [];
    let status = 0;
    s.on('response', (h) => { status = Number(h[':status']); });
    s.on('data', (c: Buffer) => chunks.push(c));
    const trailers = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
      s.once('trailers', (t) => resolve(t));
      s.once('error', reject);
    });
    await closed;
    return { status, body: Buffer.concat(chunks), trailers };
  } finally {
    session.close();
  }
}

test('a gRPC call through the waypoint carries the message and the trailers both ways', async () => {
  const r = await call('Say', Buffer.from('hello grpc'));
  assert.equal(r.status, 200);
  assert.equal(r.trailers['grpc-status'], '0');
  assert.equal(r.body.subarray(5).toString(), 'hello grpc');
  assert.equal(r.body.readUInt32BE(1), 10);
});

test('a failing gRPC call: grpc-status 5 arrives in trailers and telemetry reports grpc and the status', async () => {
  const r = await call('Fail', Buffer.from('x'));
  assert.equal(r.trailers['grpc-status'], '5');
  assert.equal(r.trailers['grpc-message'], 'not%20found');
  const text = metrics.render();
  assert.match(text, /istio_requests_total\{[^}]*request_protocol="grpc"[^}]*grpc_response_status="5"/);
  assert.match(text, /istio_requests_total\{[^}]*request_protocol="grpc"[^}]*grpc_response_status="0"/);
  assert.equal(lines.filter((l) => l.level === 'error' && l.msg !== 'request complete').length, 0, JSON.stringify(lines));
});

test('a destination not bound to this waypoint is refused with 400 (no confused deputy), counted', async () => {
  // The workload itself has no waypoint: a client must not get the waypoint to reach it with the waypoint's identity.
  await assert.rejects(pool.connect({
    sourceIdentity: id('client'), certificate: () => certs.get(id('client'))!, destination: { ip: WAYPOINT_IP, port: 15008 },
    expectedIdentities: [id('waypoint')], authority: `${APP_IP}:9090`,
  }), (e: unknown) => (e as { details?: { status?: number } }).details?.status === 400);
  assert.match(metrics.render(), /ambit_waypoint_tunnels_refused_total\{reason="not_bound"\} 1/);
});
