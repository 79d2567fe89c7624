// The waypoint's L7 cost alone, on loopback, in one process: keep-alive HTTP/1.1 requests
// (a) straight to the app, (b) through one HBONE hop (a ztunnel-like relay), (c) through the
// waypoint (HBONE in, L7 pipeline, HBONE out to a ztunnel-like relay, then the app).
// Each figure is printed with its ratio to (a) and (b) from the same run.
//   node dist/bench/micro/waypoint.js [--seconds 3] [--concurrency 16]
// Profile it with: node --cpu-prof --cpu-prof-dir=/tmp/wp dist/bench/micro/waypoint.js
import http from 'node:http';
import net from 'node:net';
import { parseArgs } from 'node:util';
import type { Duplex } from 'node:stream';
import { systemClock } from '../../src/core/clock.js';
import { Logger } from '../../src/core/logger.js';
import { HbonePool, HboneServer, relay } from '../../src/hbone/index.js';
import { MeshCA } from '../../src/identity/ca.js';
import { mustParseSpiffe } from '../../src/identity/spiffe.js';
import type { WorkloadCertificate } from '../../src/identity/workload-certificate.js';
import { MetricsRegistry } from '../../src/telemetry/metrics.js';
import { Waypoint } from '../../src/waypoint/waypoint.js';
import { HostPodNetwork } from '../../src/dataplane/pod-network.js';
import { MeshView } from '../../src/dataplane/mesh-view.js';
import type { CertificateSource } from '../../src/dataplane/certificates.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '3' }, concurrency: { type: 'string', default: '16' }, only: { type: 'string' } } });
const SECONDS = Number(values.seconds);
const CONC = Number(values.concurrency);
const APP_IP = '127.0.50.1';
const WAYPOINT_IP = '127.0.60.1';
const VIP = '10.96.0.1';
const id = (sa: string) => `spiffe://cluster.local/ns/shop/sa/${sa}`;

async function main(): Promise<void> {
  const ca = await MeshCA.create({ trustDomain: 'cluster.local' });
  const certs = new Map<string, WorkloadCertificate>();
  for (const sa of ['client', 'server', 'waypoint']) {
    const r = await ca.issueWorkloadCertificate(mustParseSpiffe(id(sa)));
    if (!r.ok) throw r.error;
    certs.set(id(sa), r.value);
  }
  const logger = new Logger({ component: 'bench', level: 'error', sink: () => {} });
  // The app.
  const app = http.createServer((req, res) => { req.resume(); req.on('end', () => { res.writeHead(200, { 'content-type': 'text/plain' }); res.end('hello world\n'); }); });
  await new Promise<void>((r) => app.listen(8080, APP_IP, () => r()));
  // A ztunnel-like HBONE inbound in front of the app (identity: server).
  const inbound = new HboneServer({
    certificate: () => certs.get(id('server'))!, trustDomain: 'cluster.local', logger,
    onRequest: (req) => {
      const up = net.connect({ host: req.target.ip, port: req.target.port, noDelay: true }, () => { void relay(req.accept(), up).done; });
      up.once('error', () => req.reject(503, 'upstream'));
    },
  });
  await inbound.listen(APP_IP, 15008);
  // The waypoint.
  const certificates: CertificateSource = {
    get: async (i) => certs.get(i)!, current: (i) => certs.get(i), forget: () => {}, list: () => [], close: () => {},
  };
  const registry = new MetricsRegistry();
  const wp = new Waypoint({
    waypoint: { namespace: 'shop', name: 'waypoint' }, identity: id('waypoint'), trustDomain: 'cluster.local', rootNamespace: 'istio-system',
    podIp: WAYPOINT_IP, network: new HostPodNetwork(), bindAddress: WAYPOINT_IP, certificates, logger, metrics: registry,
    clock: systemClock, readFile: () => '',
  });
  wp.setConfig(new MeshView({
    workloads: [{
      uid: 'Kubernetes//Pod/shop/server', name: 'server', namespace: 'shop', addresses: [APP_IP], network: '', tunnelProtocol: 'HBONE',
      trustDomain: 'cluster.local', serviceAccount: 'server', node: 'node-1', canonicalName: 'server', canonicalRevision: 'v1',
      workloadType: 'POD', workloadName: 'server', authorizationPolicies: [], status: 'HEALTHY', clusterId: 'Kubernetes',
      services: { 'shop/server.shop.svc.cluster.local': { ports: [{ servicePort: 80, targetPort: 8080 }] } },
    }],
    services: [{ name: 'server', namespace: 'shop', hostname: 'server.shop.svc.cluster.local', addresses: [{ network: '', address: VIP }], ports: [{ servicePort: 80, targetPort: 8080 }], subjectAltNames: [] }],
    authorizations: [],
  }), [], '1');
  await wp.start();
  // The client side: a pool (like the source ztunnel) and a local listener per path.
  const pool = new HbonePool({ logger, clock: systemClock, createSocket: (dst) => net.connect({ host: dst.ip, port: dst.port, noDelay: true }) });
  const front = async (to: { ip: string; port: number }, authority: string, expect: string): Promise<number> => {
    const server = net.createServer({ noDelay: true }, (s) => {
      void pool.connect({ sourceIdentity: id('client'), certificate: () => certs.get(id('client'))!, destination: to, expectedIdentities: [expect], authority })
        .then((t: Duplex) => { void relay(s, t).done; }, () => s.destroy());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    return (server.address() as net.AddressInfo).port;
  };
  const viaHbone = await front({ ip: APP_IP, port: 15008 }, `${APP_IP}:8080`, id('server'));
  const viaWaypoint = await front({ ip: WAYPOINT_IP, port: 15008 }, `${VIP}:80`, id('waypoint'));

  const run = async (host: string, port: number): Promise<{ rps: number; p99: number }> => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: CONC });
    const lat: number[] = [];
    const until = Date.now() + SECONDS * 1000;
    await Promise.all(Array.from({ length: CONC }, async () => {
      while (Date.now() < until) {
        const t0 = performance.now();
        await new Promise<void>((resolve, reject) => {
          const r = http.get({ host, port, path: '/', agent }, (m) => { m.resume(); m.on('end', () => resolve()); });
          r.on('error', reject);
        });
        lat.push(performance.now() - t0);
      }
    }));
    agent.destroy();
    lat.sort((a, b) => a - b);
    return { rps: lat.length / SECONDS, p99: lat[Math.floor(lat.length * 0.99)] ?? 0 };
  };
  const skip = { rps: NaN, p99: NaN };
  const direct = values.only && values.only !== 'direct' ? skip : await run(APP_IP, 8080);
  const hbone = values.only && values.only !== 'hbone' ? skip : await run('127.0.0.1', viaHbone);
  const l7 = values.only && values.only !== 'waypoint' ? skip : await run('127.0.0.1', viaWaypoint);
  const row = (name: string, r: { rps: number; p99: number }) =>
    console.log(`${name.padEnd(10)} ${Math.round(r.rps).toString().padStart(7)} req/s  p99 ${r.p99.toFixed(2).padStart(6)} ms   ×direct ${(r.rps / direct.rps).toFixed(2)}   ×hbone ${(r.rps / hbone.rps).toFixed(2)}`);
  console.log(`keep-alive HTTP/1.1, ${CONC} connections, ${SECONDS} s each, one process on loopback`);
  row('direct', direct);
  row('hbone', hbone);
  row('waypoint', l7);
  console.log('upstream tunnels made', (wp as unknown as { upstreams: { tunnelsMade: number } }).upstreams.tunnelsMade);
  console.log('downstream tunnels accepted', registry.render().split('\n').filter((l) => l.startsWith('ambit_waypoint_tunnels_total')).join(' '));
  await wp.close(100);
  process.exit(0);
}

void main();
