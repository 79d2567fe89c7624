// Egress end to end on the local cluster: an "outside" host (a namespace on the underlay, not in
// the mesh) serves `api.partner.example` over HTTPS with a certificate from a test CA of its own
// and requires a client certificate. A pod calls plain `http://api.partner.example/`: the
// ztunnel's DNS proxy answers the ServiceEntry's auto-allocated VIP, the ztunnel sends the
// connection to the egress waypoint, which applies the L7 policy bound to the ServiceEntry
// (GET allowed, DELETE denied) and the HTTPRoute attached to it, originates mutual TLS with the Secret's certificates, and
// records the request against the ServiceEntry. REGISTRY_ONLY then refuses an unknown
// destination while the registered one keeps working. Unmodified programs: curl, getent, python3.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { yaml } from '../helpers/config.js';
import { b64, issueCert, makeTestCa } from '../helpers/tls-certs.js';
import { waitFor } from '../helpers/wait.js';

const OUTSIDE = '172.30.0.2';
const SERVER = resolve('test/fixtures/partner-server.py');

let cluster: TestCluster;
let partner: ChildProcess | undefined;
let dir: string;
let partnerLog = '';

const meshConfig = (mode: string) => yaml`
  apiVersion: v1
  kind: ConfigMap
  metadata: {name: istio, namespace: istio-system}
  data:
    mesh: |
      outboundTrafficPolicy:
        mode: ${mode}
`;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ambit-egress-'));
  const partnerCa = await makeTestCa('Partner Test CA');
  const server = await issueCert(partnerCa, { commonName: 'api.partner.example', dnsNames: ['api.partner.example'] });
  const clientCa = await makeTestCa('Mesh Egress Client CA');
  const client = await issueCert(clientCa, { commonName: 'egress.example.client', usage: 'client' });
  writeFileSync(join(dir, 'server.pem'), server.certPem);
  writeFileSync(join(dir, 'server-key.pem'), server.keyPem);
  writeFileSync(join(dir, 'client-ca.pem'), clientCa.certPem);
  const mesh = yaml`
    apiVersion: v1
    kind: Namespace
    metadata: {name: istio-system}
    ---
    apiVersion: v1
    kind: Namespace
    metadata: {name: shop, labels: {istio.io/dataplane-mode: ambient}}
    ---
    apiVersion: v1
    kind: Namespace
    metadata: {name: egress}
    ---
    apiVersion: v1
    kind: Pod
    metadata: {name: client, namespace: shop, labels: {app: client}}
    spec: {nodeName: node-1, containers: [{name: c, command: [sleep, infinity]}]}
    ---
    apiVersion: gateway.networking.k8s.io/v1
    kind: Gateway
    metadata: {name: egress-waypoint, namespace: egress}
    spec: {gatewayClassName: istio-waypoint, listeners: [{name: mesh, port: 15008, protocol: HBONE}]}
    ---
    apiVersion: networking.istio.io/v1
    kind: ServiceEntry
    metadata: {name: partner, namespace: egress, labels: {istio.io/use-waypoint: egress-waypoint}}
    spec:
      hosts: [api.partner.example]
      ports: [{number: 80, name: http, protocol: HTTP, targetPort: 443}]
      location: MESH_EXTERNAL
      resolution: DNS
    ---
    apiVersion: networking.istio.io/v1
    kind: DestinationRule
    metadata: {name: partner-tls, namespace: egress}
    spec:
      host: api.partner.example
      trafficPolicy:
        tls: {mode: MUTUAL, credentialName: partner-client, sni: api.partner.example}
    ---
    apiVersion: security.istio.io/v1
    kind: AuthorizationPolicy
    metadata: {name: partner-read-only, namespace: egress}
    spec:
      targetRefs: [{kind: ServiceEntry, group: networking.istio.io, name: partner}]
      action: ALLOW
      rules: [{to: [{operation: {methods: [GET]}}]}]
    ---
    apiVersion: gateway.networking.k8s.io/v1
    kind: HTTPRoute
    metadata: {name: partner-route, namespace: egress}
    spec:
      parentRefs: [{kind: ServiceEntry, group: networking.istio.io, name: partner}]
      rules: [{filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-mesh-egress, value: ambit}]}}]}]
  ` + `---\napiVersion: v1\nkind: Secret\nmetadata: {name: partner-client, namespace: egress}\ntype: kubernetes.io/tls\ndata:\n  tls.crt: ${b64(client.certPem)}\n  tls.key: ${b64(client.keyPem)}\n  ca.crt: ${b64(partnerCa.certPem)}\n`;
  cluster = startCluster(mesh, { name: 'eg', upArgs: ['--outside-host', 'api.partner.example'] });
  partner = spawn('ip', ['netns', 'exec', `${cluster.prefix}-outside`, 'python3', SERVER, OUTSIDE, join(dir, 'server.pem'), join(dir, 'server-key.pem'), join(dir, 'client-ca.pem')], { stdio: ['ignore', 'pipe', 'pipe'] });
  partner.stdout!.on('data', (c: Buffer) => { partnerLog += c.toString(); });
  partner.stderr!.on('data', (c: Buffer) => { partnerLog += c.toString(); });
  await waitFor(`the partner server (${partnerLog})`, () => partnerLog.includes('partner ready'), 10_000);
});

after(() => {
  partner?.kill('SIGTERM');
  const r = cluster?.down();
  if (r && r.code !== 0) console.error(r.stderr);
  rmSync(dir, { recursive: true, force: true });
});

const curl = (args: string[]) => cluster.exec('shop/client', ['curl', '-sS', '--max-time', '8', ...args]);

test('DNS: the pod resolves the ServiceEntry host to its auto-allocated VIP through the ztunnel DNS proxy', async () => {
  let out = '';
  await waitFor(`getent hosts api.partner.example -> 240.240.0.1 (last: ${out})`, () => {
    out = cluster.exec('shop/client', ['getent', 'hosts', 'api.partner.example']).stdout;
    return out.includes('240.240.0.1');
  }, 30_000);
  // A name the registry does not hold goes upstream (the outside resolver) and does not exist.
  assert.notEqual(cluster.exec('shop/client', ['getent', 'hosts', 'nothing.partner.example']).code, 0);
});

test('egress through the waypoint: plain HTTP from the pod becomes mutual TLS to the partner; GET allowed, DELETE denied', async () => {
  let r = curl(['-w', '\\n%{http_code}', 'http://api.partner.example/orders?id=7']);
  await waitFor(`GET through the egress waypoint (last: ${r.code} ${r.stdout} ${r.stderr}; partner: ${partnerLog.slice(-500)})`, () => {
    r = curl(['-w', '\\n%{http_code}', 'http://api.partner.example/orders?id=7']);
    return r.stdout.trim().endsWith('200');
  }, 30_000);
  const body = JSON.parse(r.stdout.trim().split('\n')[0]!) as { tls: boolean; client: { commonName?: string }; path: string; host: string; headers: Record<string, string> };
  assert.equal(body.tls, true, 'the partner was reached over TLS');
  assert.equal(body.client?.commonName, 'egress.example.client', 'the waypoint presented the Secret\'s client certificate');
  assert.equal(body.path, '/orders?id=7');
  assert.equal(body.host, 'api.partner.example');
  assert.equal(body.headers['x-mesh-egress'], 'ambit', 'the HTTPRoute attached to the ServiceEntry applied');
  const del = curl(['-X', 'DELETE', '-w', '\\n%{http_code}', 'http://api.partner.example/orders/7']);
  assert.match(del.stdout.trim(), /403$/, `DELETE: ${del.stdout}`);
  assert.match(del.stdout, /RBAC: access denied/);
});

test('telemetry names the ServiceEntry; the Secret is redacted in ambit get', async () => {
  let text = '';
  await waitFor('waypoint request metrics for the ServiceEntry', async () => {
    text = await fetch(`http://${cluster.waypointAdmin(1)}/metrics`).then((r) => r.text(), () => '');
    return /istio_requests_total\{[^}]*destination_service="api\.partner\.example"[^}]*response_code="403"/.test(text);
  }, 10_000);
  assert.match(text, /istio_requests_total\{[^}]*reporter="waypoint"[^}]*destination_service="api\.partner\.example"[^}]*destination_service_namespace="egress"[^}]*response_code="200"/);
  const got = cluster.ambit(['get', 'secret', '-n', 'egress', '-o', 'json']);
  assert.equal(got.code, 0, got.stderr);
  assert.match(got.stdout, /<redacted>/);
  assert.doesNotMatch(got.stdout, /BEGIN|LS0tLS1CRUdJTi/, 'no key material in ambit get');
  const ztunnelMetrics = await fetch(`http://${cluster.ztunnelHost(1)}:15020/metrics`).then((r) => r.text());
  assert.match(ztunnelMetrics, /istio_dns_requests_total\{request_query_type="a",request_protocol="udp",source_canonical_service="client"/);
});

test('REGISTRY_ONLY: an unknown destination is refused (BlackHoleCluster) while the ServiceEntry keeps working', async () => {
  // Before: the outside host's plain port is reachable (ALLOW_ANY passes unknown destinations through).
  const before = curl(['-o', '/dev/null', '-w', '%{http_code}', `http://${OUTSIDE}:8080/`]);
  assert.equal(before.stdout, '200', `ALLOW_ANY: ${before.stderr}`);
  const applied = cluster.apply(meshConfig('REGISTRY_ONLY'));
  assert.equal(applied.code, 0, applied.stderr + applied.stdout);
  await waitFor('REGISTRY_ONLY refuses the unknown destination', () => curl(['-o', '/dev/null', '-w', '%{http_code}', `http://${OUTSIDE}:8080/`]).code !== 0, 15_000);
  assert.match(curl(['-w', '\\n%{http_code}', 'http://api.partner.example/ok']).stdout.trim(), /200$/);
  const m = await fetch(`http://${cluster.ztunnelHost(1)}:15020/metrics`).then((r) => r.text());
  assert.match(m, /istio_tcp_connections_failed_total\{[^}]*destination_service="BlackHoleCluster"/);
});
