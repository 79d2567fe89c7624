import { test } from 'node:test';
import assert from 'node:assert/strict';
import { meshFromYaml, yaml } from '../helpers/config.js';
import { MeshView } from '../../src/dataplane/mesh-view.js';
import { decideOutbound, roundRobin, type OutboundRoute } from '../../src/dataplane/route.js';
import { decideInbound } from '../../src/dataplane/inbound-decision.js';
import type { Workload } from '../../src/xds/workload-api.js';

const mesh = yaml`
  apiVersion: v1
  kind: Namespace
  metadata: {name: shop, labels: {istio.io/dataplane-mode: ambient}}
  ---
  apiVersion: v1
  kind: Namespace
  metadata: {name: legacy}
  ---
  apiVersion: gateway.networking.k8s.io/v1
  kind: Gateway
  metadata: {name: wp, namespace: shop, labels: {istio.io/waypoint-for: all}, annotations: {ambit.dev/replicas: "2"}}
  spec: {gatewayClassName: istio-waypoint, listeners: [{name: mesh, port: 15008, protocol: HBONE}]}
  ---
  apiVersion: v1
  kind: Pod
  metadata: {name: client, namespace: shop, labels: {app: client}}
  spec: {serviceAccountName: client, nodeName: node-1, containers: [{name: c, command: [sleep, "1"]}]}
  status: {podIP: 10.244.1.10}
  ---
  apiVersion: apps/v1
  kind: Deployment
  metadata: {name: api, namespace: shop}
  spec:
    replicas: 2
    selector: {matchLabels: {app: api}}
    template:
      metadata: {labels: {app: api}}
      spec: {serviceAccountName: api, containers: [{name: c, command: [sleep, "1"], ports: [{name: http, containerPort: 8080}]}]}
  ---
  apiVersion: v1
  kind: Service
  metadata: {name: api, namespace: shop}
  spec: {selector: {app: api}, clusterIP: 10.96.0.50, ports: [{name: http, port: 80, targetPort: http}]}
  ---
  apiVersion: v1
  kind: Pod
  metadata: {name: reviews, namespace: shop, labels: {app: reviews, istio.io/use-waypoint: wp}}
  spec: {serviceAccountName: reviews, containers: [{name: c, command: [sleep, "1"]}]}
  status: {podIP: 10.244.2.20}
  ---
  apiVersion: v1
  kind: Service
  metadata: {name: reviews, namespace: shop, labels: {istio.io/use-waypoint: wp}}
  spec: {selector: {app: reviews}, clusterIP: 10.96.0.60, ports: [{port: 9080}]}
  ---
  apiVersion: v1
  kind: Pod
  metadata: {name: old, namespace: legacy, labels: {app: old}}
  spec: {containers: [{name: c, command: [sleep, "1"]}]}
  status: {podIP: 10.244.2.30}
  ---
  apiVersion: v1
  kind: Service
  metadata: {name: old, namespace: legacy}
  spec: {selector: {app: old}, clusterIP: 10.96.0.70, ports: [{port: 80, targetPort: 8000}]}
  ---
  apiVersion: v1
  kind: Service
  metadata: {name: empty, namespace: shop}
  spec: {selector: {app: nothing}, clusterIP: 10.96.0.80, ports: [{port: 80}]}
`;

function setup(mutate?: (ws: Workload[]) => void) {
  const check = meshFromYaml(mesh);
  assert.ok(check.api, JSON.stringify(check.diagnostics));
  const snapshot = structuredClone({ workloads: check.api.workloads, services: check.api.services, authorizations: check.api.authorizations });
  mutate?.(snapshot.workloads);
  const state = new MeshView(snapshot);
  const w = (name: string) => snapshot.workloads.find((x) => x.name === name)!;
  return { state, w, model: check.model! };
}

function hbone(r: OutboundRoute) {
  assert.equal(r.kind, 'hbone', JSON.stringify(r));
  return r as Extract<OutboundRoute, { kind: 'hbone' }>;
}

test('route: service VIP -> HBONE to an endpoint pod:15008, authority = pod ip:target port (named port resolved)', () => {
  const { state, w } = setup();
  const r = hbone(decideOutbound(state, w('client'), { ip: '10.96.0.50', port: 80 }, roundRobin()));
  assert.equal(r.via, 'direct');
  assert.equal(r.connectTo.port, 15008);
  assert.ok(['api-0', 'api-1'].includes(r.workload!.name));
  assert.equal(r.authority, `${r.workload!.addresses[0]}:8080`);
  assert.equal(r.connectTo.ip, r.workload!.addresses[0]);
  assert.deepEqual(r.expectedIdentities, ['spiffe://cluster.local/ns/shop/sa/api']);
  assert.equal(r.service!.hostname, 'api.shop.svc.cluster.local');
});

test('route: round robin over the ready endpoints of a service', () => {
  const { state, w } = setup();
  const pick = roundRobin();
  const names = Array.from({ length: 4 }, () => hbone(decideOutbound(state, w('client'), { ip: '10.96.0.50', port: 80 }, pick)).workload!.name);
  assert.deepEqual(names, ['api-0', 'api-1', 'api-0', 'api-1']);
});

test('route: unhealthy endpoints are skipped', () => {
  const { state, w } = setup((ws) => { ws.find((x) => x.name === 'api-0')!.status = 'UNHEALTHY'; });
  const pick = roundRobin();
  for (let i = 0; i < 3; i++) assert.equal(hbone(decideOutbound(state, w('client'), { ip: '10.96.0.50', port: 80 }, pick)).workload!.name, 'api-1');
});

test('route: a service with a waypoint -> HBONE to a waypoint replica with :authority = VIP:port', () => {
  const { state, w } = setup();
  const r = hbone(decideOutbound(state, w('client'), { ip: '10.96.0.60', port: 9080 }, roundRobin()));
  assert.equal(r.via, 'waypoint');
  assert.equal(r.authority, '10.96.0.60:9080');
  assert.equal(r.waypoint!.workloadName, 'wp');
  assert.equal(r.connectTo.ip, r.waypoint!.addresses[0]);
  assert.equal(r.connectTo.port, 15008);
  assert.deepEqual(r.expectedIdentities, ['spiffe://cluster.local/ns/shop/sa/wp']);
});

test('route: waypoint replicas are used round robin', () => {
  const { state, w } = setup();
  const pick = roundRobin();
  const names = Array.from({ length: 2 }, () => hbone(decideOutbound(state, w('client'), { ip: '10.96.0.60', port: 9080 }, pick)).waypoint!.name);
  assert.deepEqual(names.sort(), ['wp-0', 'wp-1']);
});

test('route: the waypoint itself is not looped back to the waypoint', () => {
  const { state, w } = setup();
  const r = hbone(decideOutbound(state, w('wp-0'), { ip: '10.96.0.60', port: 9080 }, roundRobin()));
  assert.equal(r.via, 'direct');
  assert.equal(r.workload!.name, 'reviews');
  assert.equal(r.authority, '10.244.2.20:9080');
});

test('route: a pod with a workload waypoint -> waypoint, authority = pod ip:port', () => {
  const { state, w } = setup();
  const r = hbone(decideOutbound(state, w('client'), { ip: '10.244.2.20', port: 9080 }, roundRobin()));
  assert.equal(r.via, 'waypoint');
  assert.equal(r.authority, '10.244.2.20:9080');
  assert.equal(r.workload!.name, 'reviews');
});

test('route: a meshed pod addressed directly -> HBONE to pod:15008', () => {
  const { state, w } = setup();
  const api0 = w('api-0');
  const r = hbone(decideOutbound(state, w('client'), { ip: api0.addresses[0]!, port: 8080 }, roundRobin()));
  assert.equal(r.via, 'direct');
  assert.equal(r.authority, `${api0.addresses[0]}:8080`);
  assert.equal(r.targetPort, 8080);
});

test('route: a pod outside the mesh -> passthrough to its address', () => {
  const { state, w } = setup();
  const r = decideOutbound(state, w('client'), { ip: '10.244.2.30', port: 8000 }, roundRobin());
  assert.equal(r.kind, 'passthrough');
  assert.deepEqual((r as { connectTo: unknown }).connectTo, { ip: '10.244.2.30', port: 8000 });
});

test('route: a service whose endpoints are outside the mesh -> passthrough to endpoint:targetPort', () => {
  const { state, w } = setup();
  const r = decideOutbound(state, w('client'), { ip: '10.96.0.70', port: 80 }, roundRobin());
  assert.equal(r.kind, 'passthrough');
  assert.deepEqual((r as { connectTo: unknown }).connectTo, { ip: '10.244.2.30', port: 8000 });
});

test('route: an address outside the mesh -> passthrough unchanged', () => {
  const { state, w } = setup();
  const r = decideOutbound(state, w('client'), { ip: '192.0.2.1', port: 443 }, roundRobin());
  assert.equal(r.kind, 'passthrough');
  assert.deepEqual((r as { connectTo: unknown }).connectTo, { ip: '192.0.2.1', port: 443 });
});

for (const port of [15001, 15006, 15008]) {
  test(`route: port ${port} of a pod is refused (loop)`, () => {
    const { state, w } = setup();
    const r = decideOutbound(state, w('client'), { ip: w('api-0').addresses[0]!, port }, roundRobin());
    assert.equal(r.kind, 'refuse');
    assert.equal((r as { refusal: string }).refusal, 'capture_port');
  });
}

test('route: a service without endpoints is refused', () => {
  const { state, w } = setup();
  const r = decideOutbound(state, w('client'), { ip: '10.96.0.80', port: 80 }, roundRobin());
  assert.deepEqual([r.kind, (r as { refusal: string }).refusal], ['refuse', 'no_endpoint']);
});

test('route: a waypoint with no ready replica is refused, never bypassed', () => {
  const { state, w } = setup((ws) => { for (const x of ws) if (x.workloadName === 'wp') x.status = 'UNHEALTHY'; });
  const r = decideOutbound(state, w('client'), { ip: '10.96.0.60', port: 9080 }, roundRobin());
  assert.deepEqual([r.kind, (r as { refusal: string }).refusal], ['refuse', 'no_waypoint']);
});

test('route: IPv4-mapped IPv6 destinations are read as IPv4', () => {
  const { state, w } = setup();
  const r = hbone(decideOutbound(state, w('client'), { ip: '::ffff:10.96.0.50', port: 80 }, roundRobin()));
  assert.equal(r.service!.name, 'api');
});

test('route: a service port without a mapping falls back to the port itself', () => {
  const { state, w } = setup();
  const r = hbone(decideOutbound(state, w('client'), { ip: '10.96.0.50', port: 81 }, roundRobin()));
  assert.match(r.authority, /:81$/);
});

test('route: service subject alt names are accepted identities too', () => {
  const { state, w } = setup();
  const svc = state.serviceByVip('10.96.0.50')!;
  (svc as { subjectAltNames: string[] }).subjectAltNames = ['spiffe://cluster.local/ns/shop/sa/api-canary'];
  const r = hbone(decideOutbound(state, w('client'), { ip: '10.96.0.50', port: 80 }, roundRobin()));
  assert.deepEqual(r.expectedIdentities, ['spiffe://cluster.local/ns/shop/sa/api', 'spiffe://cluster.local/ns/shop/sa/api-canary']);
});

test('inbound: the authority must be the listener\'s own workload', () => {
  const { state, w } = setup();
  const d = decideInbound(state, w('api-0'), { target: { ip: w('api-1').addresses[0]!, port: 8080 }, peerIdentity: 'spiffe://cluster.local/ns/shop/sa/client' });
  assert.equal(d.kind, 'reject');
  assert.equal((d as { status: number }).status, 400);
});

test('inbound: a capture port in the authority is refused with 400', () => {
  const { state, w } = setup();
  const d = decideInbound(state, w('api-0'), { target: { ip: w('api-0').addresses[0]!, port: 15006 }, peerIdentity: 'spiffe://cluster.local/ns/shop/sa/client' });
  assert.equal((d as { status: number }).status, 400);
});

test('inbound: allowed without policies; plaintext allowed under PERMISSIVE', () => {
  const { state, w } = setup();
  const a = w('api-0');
  assert.equal(decideInbound(state, a, { target: { ip: a.addresses[0]!, port: 8080 }, peerIdentity: 'spiffe://cluster.local/ns/shop/sa/client' }).kind, 'accept');
  assert.equal(decideInbound(state, a, { target: { ip: a.addresses[0]!, port: 8080 } }).kind, 'accept');
});

test('inbound: STRICT refuses plaintext with 401 naming the static policy, accepts mTLS', () => {
  const check = meshFromYaml(mesh + '---\n' + yaml`
    apiVersion: security.istio.io/v1
    kind: PeerAuthentication
    metadata: {name: default, namespace: istio-system}
    spec: {mtls: {mode: STRICT}}`);
  const state = new MeshView(check.api!);
  const a = check.api!.workloads.find((x) => x.name === 'api-0')!;
  const plain = decideInbound(state, a, { target: { ip: a.addresses[0]!, port: 8080 }, sourceIp: '10.244.2.30' });
  assert.equal(plain.kind, 'reject');
  assert.equal((plain as { status: number }).status, 401);
  assert.equal((plain as { authz: { policy: string } }).authz.policy, 'istio-system/istio_converted_static_strict');
  assert.equal(decideInbound(state, a, { target: { ip: a.addresses[0]!, port: 8080 }, peerIdentity: 'spiffe://cluster.local/ns/shop/sa/client' }).kind, 'accept');
});

test('inbound: an ALLOW policy admits its principal only', () => {
  const check = meshFromYaml(mesh + '---\n' + yaml`
    apiVersion: security.istio.io/v1
    kind: AuthorizationPolicy
    metadata: {name: api-allow, namespace: shop}
    spec:
      selector: {matchLabels: {app: api}}
      rules: [{from: [{source: {principals: [cluster.local/ns/shop/sa/client]}}]}]`);
  const state = new MeshView(check.api!);
  const a = check.api!.workloads.find((x) => x.name === 'api-0')!;
  const target = { ip: a.addresses[0]!, port: 8080 };
  assert.equal(decideInbound(state, a, { target, peerIdentity: 'spiffe://cluster.local/ns/shop/sa/client' }).kind, 'accept');
  const d = decideInbound(state, a, { target, peerIdentity: 'spiffe://cluster.local/ns/shop/sa/other' });
  assert.equal((d as { status: number }).status, 401);
  const reviews = check.api!.workloads.find((x) => x.name === 'reviews')!;
  assert.equal(decideInbound(state, reviews, { target: { ip: '10.244.2.20', port: 9080 }, peerIdentity: 'spiffe://cluster.local/ns/shop/sa/other' }).kind, 'accept', 'the selector picks api only');
});
