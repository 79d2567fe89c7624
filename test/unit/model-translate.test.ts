import { test } from 'node:test';
import assert from 'node:assert/strict';
import { meshFromYaml, yaml } from '../helpers/config.js';
import { buildModel } from '../../src/model/build-model.js';
import { validateSources } from '../../src/config/validate.js';

const base = yaml`
  apiVersion: v1
  kind: Namespace
  metadata: {name: shop, labels: {istio.io/dataplane-mode: ambient}}
  ---
  apiVersion: v1
  kind: Namespace
  metadata: {name: plain}
  ---
  apiVersion: apps/v1
  kind: Deployment
  metadata: {name: web, namespace: shop}
  spec:
    replicas: 3
    selector: {matchLabels: {app: web}}
    template:
      metadata: {labels: {app: web, version: v7}}
      spec:
        serviceAccountName: web-sa
        containers: [{name: c, command: [sleep, "1"], ports: [{name: http, containerPort: 8080}]}]
  ---
  apiVersion: v1
  kind: Service
  metadata: {name: web, namespace: shop}
  spec:
    selector: {app: web}
    ports: [{name: http, port: 80, targetPort: http}]
  ---
  apiVersion: v1
  kind: Pod
  metadata: {name: fixed, namespace: plain, labels: {app: fixed}}
  spec: {nodeName: node-2, containers: [{name: c, command: [sleep, "1"]}]}
  status: {podIP: 10.244.2.77}
  ---
  apiVersion: v1
  kind: Pod
  metadata: {name: optout, namespace: shop, labels: {istio.io/dataplane-mode: none}}
  spec: {containers: [{name: c, command: [sleep, "1"]}]}
`;

test('model: pods from deployments get uids, nodes, IPs from the node CIDR, identity and canonical names', () => {
  const m = meshFromYaml(base);
  assert.deepEqual(m.diagnostics.filter((d) => d.severity === 'error'), []);
  const model = m.model!;
  const web = [0, 1, 2].map((i) => model.workloadByName('shop', `web-${i}`)!);
  for (const w of web) {
    assert.match(w.uid, /^Kubernetes\/\/Pod\/shop\/web-\d$/);
    assert.equal(w.identity, 'spiffe://cluster.local/ns/shop/sa/web-sa');
    assert.equal(w.canonicalName, 'web');
    assert.equal(w.canonicalRevision, 'v7');
    assert.equal(w.workloadType, 'DEPLOYMENT');
    const node = model.nodes.find((n) => n.name === w.node)!;
    assert.ok(w.ip.startsWith(node.podCidr.replace(/0\/24$/, '')), `${w.ip} in ${node.podCidr}`);
  }
  assert.equal(new Set(web.map((w) => w.node)).size, 2, 'replicas are spread over both nodes');
  assert.equal(model.workloadByName('plain', 'fixed')!.ip, '10.244.2.77');
  assert.equal(model.workloadByIp('10.244.2.77')!.name, 'fixed');
  assert.equal(model.workloadByName('shop', 'optout')!.mode, 'none');
  assert.equal(web[0]!.mode, 'ambient');
  assert.equal(model.workloadByName('plain', 'fixed')!.mode, 'none');
});

test('model: a service selects its endpoints and resolves named target ports per workload', () => {
  const model = meshFromYaml(base).model!;
  const svc = model.service('shop', 'web')!;
  assert.equal(svc.endpoints.length, 3);
  assert.equal(svc.hostname, 'web.shop.svc.cluster.local');
  assert.match(svc.vip!, /^10\.96\./);
  assert.equal(model.serviceByVip(svc.vip!), svc);
  assert.deepEqual(model.workloadByName('shop', 'web-0')!.servicePorts['shop/web.shop.svc.cluster.local'], [{ servicePort: 80, targetPort: 8080 }]);
});

test('model: allocation is sticky across changes (no renumbering of the running cluster)', () => {
  const first = buildModel(validateSources([{ file: 'a', text: base }]).set).model;
  const extra = yaml`
    apiVersion: v1
    kind: Pod
    metadata: {name: aaa-first-by-name, namespace: shop}
    spec: {containers: [{name: c, command: [sleep, "1"]}]}
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: aaa, namespace: shop}
    spec: {ports: [{port: 1}]}
  `;
  const set2 = validateSources([{ file: 'a', text: base }, { file: 'b', text: extra }]).set;
  const second = buildModel(set2, { previous: first }).model;
  for (const w of first.workloads.values()) {
    assert.equal(second.workloads.get(w.uid)!.ip, w.ip, `${w.name} kept its IP`);
    assert.equal(second.workloads.get(w.uid)!.node, w.node);
  }
  assert.equal(second.service('shop', 'web')!.vip, first.service('shop', 'web')!.vip);
  const fresh = second.workloadByName('shop', 'aaa-first-by-name')!;
  assert.ok(![...first.workloads.values()].some((w) => w.ip === fresh.ip));
});

const waypointMesh = (wpFor: string, extraNsLabels = '', svcLabels = '{}', podLabels = '{app: api}') => yaml`
  apiVersion: v1
  kind: Namespace
  metadata: {name: shop, labels: {istio.io/dataplane-mode: ambient${extraNsLabels}}}
  ---
  apiVersion: gateway.networking.k8s.io/v1
  kind: Gateway
  metadata: {name: wp, namespace: shop, labels: {istio.io/waypoint-for: ${wpFor}}}
  spec:
    gatewayClassName: istio-waypoint
    listeners: [{name: mesh, port: 15008, protocol: HBONE}]
  ---
  apiVersion: v1
  kind: Pod
  metadata: {name: api, namespace: shop, labels: ${podLabels}}
  spec: {containers: [{name: c, command: [sleep, "1"]}]}
  ---
  apiVersion: v1
  kind: Service
  metadata: {name: api, namespace: shop, labels: ${svcLabels}}
  spec: {selector: {app: api}, ports: [{port: 80}]}
`;

for (const c of [
  { wpFor: 'service', ns: ', istio.io/use-waypoint: wp', svc: '{}', pod: '{app: api}', svcWp: true, podWp: false },
  { wpFor: 'workload', ns: ', istio.io/use-waypoint: wp', svc: '{}', pod: '{app: api}', svcWp: false, podWp: true },
  { wpFor: 'all', ns: ', istio.io/use-waypoint: wp', svc: '{}', pod: '{app: api}', svcWp: true, podWp: true },
  { wpFor: 'none', ns: ', istio.io/use-waypoint: wp', svc: '{}', pod: '{app: api}', svcWp: false, podWp: false },
  { wpFor: 'all', ns: ', istio.io/use-waypoint: wp', svc: '{istio.io/use-waypoint: none}', pod: '{app: api}', svcWp: false, podWp: true },
  { wpFor: 'all', ns: ', istio.io/use-waypoint: wp', svc: '{}', pod: '{app: api, istio.io/use-waypoint: none}', svcWp: true, podWp: false },
  { wpFor: 'all', ns: '', svc: '{istio.io/use-waypoint: wp}', pod: '{app: api}', svcWp: true, podWp: false },
  { wpFor: 'all', ns: '', svc: '{}', pod: '{app: api, istio.io/use-waypoint: wp}', svcWp: false, podWp: true },
]) {
  test(`waypoint binding: for=${c.wpFor} ns="${c.ns}" svc=${c.svc} pod=${c.pod}`, () => {
    const m = meshFromYaml(waypointMesh(c.wpFor, c.ns, c.svc, c.pod));
    assert.deepEqual(m.diagnostics.filter((d) => d.severity === 'error'), []);
    const svc = m.api!.services.find((s) => s.name === 'api')!;
    const pod = m.api!.workloads.find((w) => w.name === 'api')!;
    const wpVip = m.model!.waypoint('shop', 'wp')!.vip;
    assert.equal(svc.waypoint?.address?.address, c.svcWp ? wpVip : undefined);
    assert.equal(pod.waypoint?.address?.address, c.podWp ? wpVip : undefined);
    if (c.svcWp) assert.equal(svc.waypoint!.hboneMtlsPort, 15008);
  });
}

test('waypoint: replicas are pods with the gateway service account, a Service in front, and no waypoint of their own', () => {
  const text = waypointMesh('all', ', istio.io/use-waypoint: wp').replace('name: wp, namespace: shop,', 'name: wp, namespace: shop, annotations: {ambit.dev/replicas: "2"},');
  const m = meshFromYaml(text);
  const wp = m.model!.waypoint('shop', 'wp')!;
  assert.equal(wp.pods.length, 2);
  assert.equal(wp.identity, 'spiffe://cluster.local/ns/shop/sa/wp');
  const replicas = m.api!.workloads.filter((w) => w.workloadName === 'wp');
  assert.equal(replicas.length, 2);
  for (const r of replicas) {
    assert.equal(r.serviceAccount, 'wp');
    assert.equal(r.waypoint, undefined);
    assert.equal(r.tunnelProtocol, 'NONE');
  }
  const svc = m.api!.services.find((s) => s.hostname === 'wp.shop.svc.cluster.local')!;
  assert.deepEqual(svc.ports, [{ servicePort: 15008, targetPort: 15008, appProtocol: undefined }]);
  assert.equal(svc.waypoint, undefined);
});

test('translate: workloads carry Istio uids, HBONE only when enrolled, and their selector policies', () => {
  const m = meshFromYaml(base + yaml`
    ---
    apiVersion: security.istio.io/v1
    kind: AuthorizationPolicy
    metadata: {name: web-allow, namespace: shop}
    spec:
      selector: {matchLabels: {app: web}}
      rules: [{from: [{source: {namespaces: [shop]}}]}]
    ---
    apiVersion: security.istio.io/v1
    kind: AuthorizationPolicy
    metadata: {name: ns-wide, namespace: shop}
    spec:
      action: DENY
      rules: [{from: [{source: {ipBlocks: [192.168.0.0/16]}}]}]
    ---
    apiVersion: security.istio.io/v1
    kind: AuthorizationPolicy
    metadata: {name: mesh-wide, namespace: istio-system}
    spec: {action: ALLOW, rules: [{}]}
  `);
  const api = m.api!;
  const web0 = api.workloads.find((w) => w.uid === 'Kubernetes//Pod/shop/web-0')!;
  assert.equal(web0.tunnelProtocol, 'HBONE');
  assert.deepEqual(web0.authorizationPolicies, ['shop/web-allow']);
  assert.equal(api.workloads.find((w) => w.name === 'fixed')!.tunnelProtocol, 'NONE');
  const byName = Object.fromEntries(api.authorizations.map((a) => [a.name, a]));
  assert.equal(byName['web-allow']!.scope, 'WORKLOAD_SELECTOR');
  assert.equal(byName['ns-wide']!.scope, 'NAMESPACE');
  assert.equal(byName['ns-wide']!.action, 'DENY');
  assert.deepEqual(byName['ns-wide']!.rules[0]!.clauses[0]!.matches[0]!.sourceIps, [{ address: '192.168.0.0', length: 16 }]);
  assert.equal(byName['mesh-wide']!.scope, 'GLOBAL');
});

test('translate: STRICT PeerAuthentication becomes the static DENY policy on the affected workloads only', () => {
  const m = meshFromYaml(base + yaml`
    ---
    apiVersion: security.istio.io/v1
    kind: PeerAuthentication
    metadata: {name: default, namespace: shop}
    spec: {mtls: {mode: STRICT}}
  `);
  const api = m.api!;
  const strict = api.authorizations.find((a) => a.name === 'istio_converted_static_strict')!;
  assert.equal(strict.namespace, 'istio-system');
  assert.equal(strict.action, 'DENY');
  assert.deepEqual(strict.rules[0]!.clauses[0]!.matches[0]!.notPrincipals, [{ presence: {} }]);
  assert.ok(api.workloads.find((w) => w.name === 'web-0')!.authorizationPolicies.includes('istio-system/istio_converted_static_strict'));
  assert.deepEqual(api.workloads.find((w) => w.name === 'fixed')!.authorizationPolicies, []);
});

test('translate: port-level mTLS becomes a converted per-workload DENY', () => {
  const m = meshFromYaml(base + yaml`
    ---
    apiVersion: security.istio.io/v1
    kind: PeerAuthentication
    metadata: {name: default, namespace: shop}
    spec: {mtls: {mode: STRICT}}
    ---
    apiVersion: security.istio.io/v1
    kind: PeerAuthentication
    metadata: {name: web-metrics, namespace: shop}
    spec:
      selector: {matchLabels: {app: web}}
      portLevelMtls: {"9090": {mode: PERMISSIVE}}
  `);
  const api = m.api!;
  const conv = api.authorizations.find((a) => a.name === 'converted_peer_authentication_web-metrics')!;
  assert.equal(conv.action, 'DENY');
  assert.deepEqual(conv.rules[0]!.clauses[1]!.matches[0]!.notDestinationPorts, [9090]);
  assert.deepEqual(api.workloads.find((w) => w.name === 'web-0')!.authorizationPolicies, ['shop/converted_peer_authentication_web-metrics']);
  assert.ok(api.workloads.find((w) => w.name === 'optout')!.authorizationPolicies.length === 0);
});

test('translate: targetRefs policies are the waypoint\'s; L7 rules at the ztunnel warn with the rule\'s line', () => {
  const m = meshFromYaml(base + yaml`
    ---
    apiVersion: security.istio.io/v1
    kind: AuthorizationPolicy
    metadata: {name: deny-delete, namespace: shop}
    spec:
      selector: {matchLabels: {app: web}}
      action: DENY
      rules:
      - to: [{operation: {methods: [DELETE]}}]
    ---
    apiVersion: security.istio.io/v1
    kind: AuthorizationPolicy
    metadata: {name: for-waypoint, namespace: shop}
    spec:
      targetRefs: [{kind: Service, group: "", name: web}]
      rules: [{to: [{operation: {methods: [GET]}}]}]
  `);
  const api = m.api!;
  assert.equal(api.authorizations.find((a) => a.name === 'for-waypoint'), undefined);
  const deny = api.authorizations.find((a) => a.name === 'deny-delete')!;
  assert.equal(deny.rules.length, 1, 'the DENY keeps its rule, widened to L4');
  const w = m.diagnostics.find((d) => d.resource === 'AuthorizationPolicy shop/deny-delete' && d.severity === 'warning')!;
  assert.ok(w, 'a warning names the policy');
  assert.equal(w.path, 'spec.rules[0]');
  assert.equal(w.line, base.split('\n').length + 8);
  assert.match(w.message, /DELETE|methods/);
});
