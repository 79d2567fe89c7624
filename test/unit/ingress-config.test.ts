// Ingress: the pure parts. Validation of the ingress kinds (file/line/field), ReferenceGrant,
// hostname intersection, the compiled ingress config of a whole mesh (listeners, virtual hosts,
// route attachment, cross-namespace refusal, certificates by SNI), GRPCRoute as HTTPRoute,
// TCPRoute picks, the Kubernetes objects of an ingress Gateway.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { meshFromYaml, validateYaml, yaml } from '../helpers/config.js';
import { b64, issueCert, makeTestCa } from '../helpers/tls-certs.js';
import type { Diagnostic } from '../../src/config/diagnostics.js';
import { referenceAllowed } from '../../src/config/reference-grant.js';
import type { ReferenceGrantResource } from '../../src/config/ingress-resources.js';
import { compileIngressConfig, hostnameMatches, intersectHostnames } from '../../src/gateway/ingress-config.js';
import { waypointConfigObjects } from '../../src/controlplane/xds-push.js';
import { proxyHintObjects } from '../../src/controlplane/proxy-hints.js';
import { secretConsumers } from '../../src/controlplane/secret-scope.js';
import { MeshView } from '../../src/dataplane/mesh-view.js';
import { decideRoute } from '../../src/waypoint/routing.js';
import { grpcRouteAsHttpRoute, methodPath } from '../../src/waypoint/route-grpc.js';
import { pickTcpBackend } from '../../src/waypoint/route-tcp.js';
import { ingressGatewayObjects } from '../../src/kubernetes/ingress-objects.js';

const only = (ds: Diagnostic[], code: string, severity: 'error' | 'warning' = 'error'): Diagnostic => {
  const hits = ds.filter((d) => d.code === code && d.severity === severity);
  assert.equal(hits.length, 1, `one ${severity} ${code} in ${JSON.stringify(ds, null, 1)}`);
  return hits[0]!;
};

const gateway = (listeners: string, cls = 'istio') => yaml`
  apiVersion: gateway.networking.k8s.io/v1
  kind: Gateway
  metadata: {name: public, namespace: ingress}
  spec:
    gatewayClassName: ${cls}
    listeners:
${listeners.split('\n').map((l) => '    ' + l).join('\n')}
`;

const gatewayCases: { name: string; listeners: string; code: string; path: string; message: RegExp; severity?: 'error' | 'warning'; cls?: string }[] = [
  { name: 'unknown gateway class', listeners: '- {name: http, port: 80, protocol: HTTP}', cls: 'nginx', code: 'unknown-gateway-class', path: 'spec.gatewayClassName', message: /unknown gateway class "nginx"/, severity: 'warning' },
  { name: 'HTTPS listener without certificate', listeners: '- {name: https, port: 443, protocol: HTTPS}', code: 'missing-certificate', path: 'spec.listeners[0].tls', message: /has no certificate/ },
  { name: 'certificate that is not a Secret', listeners: '- {name: https, port: 443, protocol: HTTPS, tls: {certificateRefs: [{kind: ConfigMap, name: c}]}}', code: 'bad-value', path: 'spec.listeners[0].tls.certificateRefs[0]', message: /only Secrets/ },
  { name: 'two protocols on one port', listeners: '- {name: a, port: 80, protocol: HTTP}\n- {name: b, port: 80, protocol: TCP}', code: 'conflict', path: 'spec.listeners[1].port', message: /already a HTTP listener/ },
  { name: 'same hostname twice on a port', listeners: '- {name: a, port: 80, protocol: HTTP, hostname: a.example}\n- {name: b, port: 80, protocol: HTTP, hostname: a.example}', code: 'conflict', path: 'spec.listeners[1].hostname', message: /another listener on port 80/ },
  { name: 'TLS passthrough', listeners: '- {name: t, port: 443, protocol: TLS}', code: 'unsupported', path: 'spec.listeners[0].protocol', message: /passthrough/ },
  { name: 'bad hostname', listeners: '- {name: a, port: 80, protocol: HTTP, hostname: "a.*.example"}', code: 'bad-host', path: 'spec.listeners[0].hostname', message: /not a hostname/ },
  { name: 'allowedRoutes kind', listeners: '- {name: a, port: 80, protocol: HTTP, allowedRoutes: {kinds: [{kind: Pod}]}}', code: 'bad-value', path: 'spec.listeners[0].allowedRoutes.kinds[0].kind', message: /not a route kind/ },
  { name: 'duplicate listener name', listeners: '- {name: a, port: 80, protocol: HTTP}\n- {name: a, port: 81, protocol: HTTP}', code: 'duplicate', path: 'spec.listeners[1].name', message: /defined twice/ },
];

for (const c of gatewayCases) {
  test(`ingress Gateway validation: ${c.name}`, () => {
    const d = only(validateYaml(gateway(c.listeners, c.cls)).diagnostics, c.code, c.severity ?? 'error');
    assert.equal(d.path, c.path);
    assert.equal(d.resource, 'Gateway ingress/public');
    assert.ok(d.line >= 1 && d.file === 'test.yaml');
    assert.match(d.message, c.message);
  });
}

test('set-wide: a cross-namespace backend without a ReferenceGrant, a missing sectionName, a missing certificate Secret', () => {
  const text = gateway('- {name: http, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}\n- {name: https, port: 443, protocol: HTTPS, tls: {certificateRefs: [{name: nope}]}}') + yaml`
    ---
    apiVersion: gateway.networking.k8s.io/v1
    kind: HTTPRoute
    metadata: {name: r, namespace: ingress}
    spec:
      parentRefs: [{name: public, sectionName: htp}]
      rules: [{backendRefs: [{name: web, namespace: shop, port: 80}]}]
  `;
  const ds = validateYaml(text).diagnostics;
  const ref = only(ds, 'ref-not-permitted', 'warning');
  assert.equal(ref.path, 'spec.rules[0].backendRefs[0]');
  assert.equal(ref.resource, 'HTTPRoute ingress/r');
  assert.match(ref.message, /no ReferenceGrant in shop/);
  assert.ok(ds.some((d) => d.code === 'dangling-reference' && d.path === 'spec.parentRefs[0].sectionName'));
  assert.ok(ds.some((d) => d.code === 'dangling-reference' && /certificate Secret ingress\/nope does not exist/.test(d.message)));
});

test('referenceAllowed: same namespace; grant in the target namespace matching from and to (name optional)', () => {
  const grant = (ns: string, spec: ReferenceGrantResource['spec']): ReferenceGrantResource => ({ apiVersion: 'gateway.networking.k8s.io/v1beta1', kind: 'ReferenceGrant', metadata: { name: 'g', namespace: ns }, spec });
  const from = { group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', namespace: 'a' };
  const to = { group: '', kind: 'Service', namespace: 'b', name: 'web' };
  assert.equal(referenceAllowed([], { ...from, namespace: 'b' }, to), true);
  assert.equal(referenceAllowed([], from, to), false);
  const ok = grant('b', { from: [from], to: [{ group: '', kind: 'Service' }] });
  assert.equal(referenceAllowed([ok], from, to), true);
  assert.equal(referenceAllowed([grant('a', ok.spec)], from, to), false, 'the grant lives in the target namespace');
  assert.equal(referenceAllowed([grant('b', { from: [from], to: [{ group: '', kind: 'Service', name: 'other' }] })], from, to), false);
  assert.equal(referenceAllowed([grant('b', { from: [{ ...from, kind: 'GRPCRoute' }], to: [{ group: '', kind: 'Service' }] })], from, to), false);
});

test('hostname intersection and matching (Gateway API)', () => {
  assert.deepEqual(intersectHostnames(undefined, undefined), ['*']);
  assert.deepEqual(intersectHostnames('a.example.com', undefined), ['a.example.com']);
  assert.deepEqual(intersectHostnames('*.example.com', ['a.example.com', 'b.other.com']), ['a.example.com']);
  assert.deepEqual(intersectHostnames('a.example.com', ['*.example.com']), ['a.example.com']);
  assert.deepEqual(intersectHostnames('a.example.com', ['b.example.com']), []);
  assert.equal(hostnameMatches('*.example.com', 'x.y.example.com'), true);
  assert.equal(hostnameMatches('*.example.com', 'example.com'), false);
});

test('GRPCRoute as HTTPRoute: method matches become paths', () => {
  assert.deepEqual(methodPath({ service: 'shop.Cart', method: 'Add' }), { type: 'Exact', value: '/shop.Cart/Add' });
  assert.deepEqual(methodPath({ service: 'shop.Cart' }), { type: 'PathPrefix', value: '/shop.Cart/' });
  assert.deepEqual(methodPath({ method: 'Add' }), { type: 'RegularExpression', value: '/[^/]+/Add' });
  assert.deepEqual(methodPath({ type: 'RegularExpression', service: 'shop\\..*' }), { type: 'RegularExpression', value: '/shop\\..*/[^/]+' });
  const h = grpcRouteAsHttpRoute({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GRPCRoute', metadata: { name: 'g', namespace: 'n' }, spec: { rules: [{ matches: [{ method: { service: 's.S' }, headers: [{ name: 'x', value: '1' }] }], backendRefs: [{ name: 'b', port: 80, weight: 3 }] }] } });
  assert.deepEqual(h.spec.rules?.[0]?.matches, [{ path: { type: 'PathPrefix', value: '/s.S/' }, headers: [{ name: 'x', value: '1' }] }]);
  assert.deepEqual(h.spec.rules?.[0]?.backendRefs, [{ name: 'b', port: 80, weight: 3 }]);
});

test('pickTcpBackend: by weight; none without weight', () => {
  const e = { route: 'r', backends: [{ namespace: 'a', name: 'x', port: 1, weight: 1 }, { namespace: 'a', name: 'y', port: 1, weight: 3 }] };
  assert.equal(pickTcpBackend(e, () => 0.2)?.name, 'x');
  assert.equal(pickTcpBackend(e, () => 0.3)?.name, 'y');
  assert.equal(pickTcpBackend({ route: 'r', backends: [] }, () => 0), undefined);
});

test('compileIngressConfig over a whole mesh: listeners, virtual hosts, attachment, refusal, certificates by SNI', async () => {
  const ca = await makeTestCa('Unit CA');
  const a = await issueCert(ca, { commonName: 'a.example.com', dnsNames: ['a.example.com'] });
  const text = [yaml`
    apiVersion: v1
    kind: Namespace
    metadata: {name: shop, labels: {istio.io/dataplane-mode: ambient}}
    ---
    apiVersion: v1
    kind: Pod
    metadata: {name: web, namespace: shop, labels: {app: web}}
    spec: {containers: [{name: c, command: [sleep, infinity]}]}
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: web, namespace: shop}
    spec: {selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: local, namespace: ingress}
    spec: {selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}
  `, gateway('- {name: http, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}\n- {name: https-a, port: 443, protocol: HTTPS, hostname: a.example.com, tls: {certificateRefs: [{name: a-cert}]}, allowedRoutes: {namespaces: {from: All}}}\n- {name: same-only, port: 8080, protocol: HTTP}'), yaml`
    apiVersion: gateway.networking.k8s.io/v1
    kind: HTTPRoute
    metadata: {name: shop, namespace: shop}
    spec:
      parentRefs: [{name: public, namespace: ingress}]
      hostnames: [a.example.com, "*.shop.example.com"]
      rules: [{backendRefs: [{name: web, port: 80}]}]
    ---
    apiVersion: gateway.networking.k8s.io/v1
    kind: HTTPRoute
    metadata: {name: cross, namespace: ingress}
    spec:
      parentRefs: [{name: public, sectionName: http}]
      hostnames: [cross.example.com]
      rules: [{backendRefs: [{name: web, namespace: shop, port: 80}]}]
    ---
    apiVersion: gateway.networking.k8s.io/v1
    kind: HTTPRoute
    metadata: {name: catchall, namespace: ingress}
    spec:
      parentRefs: [{name: public, port: 8080}]
      rules: [{backendRefs: [{name: local, port: 80}]}]
  `].join('\n---\n') + `---\napiVersion: v1\nkind: Secret\nmetadata: {name: a-cert, namespace: ingress}\ntype: kubernetes.io/tls\ndata:\n  tls.crt: ${b64(a.certPem)}\n  tls.key: ${b64(a.keyPem)}\n`;
  const check = meshFromYaml(text);
  assert.ok(check.model && check.api, JSON.stringify(check.diagnostics.filter((d) => d.severity === 'error')));
  // The gateway's replicas and Service exist in the model, outside the data plane.
  const replica = [...check.model.workloads.values()].find((w) => w.gatewayOf?.name === 'public')!;
  assert.equal(replica.name, 'public-istio-0');
  assert.equal(replica.mode, 'none');
  assert.equal(replica.identity, 'spiffe://cluster.local/ns/ingress/sa/public-istio');
  assert.deepEqual(check.model.services.get('ingress/public-istio')?.ports.map((p) => p.port), [80, 443, 8080]);
  // The certificate goes to the gateway's replicas only.
  assert.deepEqual([...(secretConsumers(check.set, check.model).get('ingress/a-cert') ?? [])], ['ingress/public']);
  const objects = [...waypointConfigObjects(check.set, new Map([['ingress/a-cert', true]])), ...proxyHintObjects(check.set, check.model)];
  const cfg = compileIngressConfig({ version: '1', gateway: { namespace: 'ingress', name: 'public' }, state: MeshView.fromSnapshot(check.api), objects, rootNamespace: 'istio-system', trustDomain: 'cluster.local', readFile: () => '' });
  assert.equal(cfg.found, true);
  assert.deepEqual([...cfg.ports.keys()], [80, 443, 8080]);
  assert.deepEqual(cfg.ports.get(80)?.vhosts, ['cross.example.com', 'a.example.com', '*.shop.example.com']);
  assert.deepEqual(cfg.ports.get(443)?.vhosts, ['a.example.com'], 'the listener hostname narrows the route\'s');
  assert.deepEqual(cfg.ports.get(8080)?.vhosts, ['*'], 'from: Same (default) admits the route of the gateway\'s namespace');
  assert.equal(cfg.vhostFor(80, 'x.shop.example.com'), '80/*.shop.example.com');
  assert.equal(cfg.vhostFor(80, 'nothing.example.com'), undefined);
  assert.equal(cfg.vhostFor(8080, 'anything'), '8080/*');
  const route = (port: number, host: string) => decideRoute(cfg.l7.routes, { hostname: cfg.vhostFor(port, host)!, port }, { method: 'GET', path: '/', host, headers: {} }, () => 0);
  const shop = route(80, 'a.example.com');
  assert.equal(shop.kind === 'forward' && shop.backend.name, 'web');
  const cross = route(80, 'cross.example.com');
  assert.equal(cross.kind === 'forward' && cross.backendMissing, true, 'no ReferenceGrant: invalid backend (500)');
  assert.ok(cfg.warnings.some((w) => /no ReferenceGrant allows it/.test(w)), cfg.warnings.join('\n'));
  assert.ok(cfg.secureContext(443, 'a.example.com'));
  assert.equal(cfg.secureContext(443, 'b.example.com'), undefined);
  assert.deepEqual(cfg.defaultCertificate(443)?.cert.length, 1);
  const dump = JSON.stringify(cfg.describe());
  assert.ok(!dump.includes('PRIVATE KEY') && !dump.includes(b64(a.keyPem).slice(0, 40)), 'config_dump never carries key material');
  assert.match(dump, /ingress\/a-cert/);
});

test('Kubernetes objects of an ingress Gateway: <name>-istio, LoadBalancer by default, a port per listener port', () => {
  const o = ingressGatewayObjects({ apiVersion: 'gateway.networking.k8s.io/v1', name: 'public', namespace: 'ingress', uid: 'u1', listeners: [{ name: 'http', port: 80, protocol: 'HTTP' }, { name: 'https', port: 443, protocol: 'HTTPS' }, { name: 'https-b', port: 443, protocol: 'HTTPS' }] },
    { image: 'ambit:test', xdsAddress: 'cp:15012', trustDomain: 'cluster.local', rootNamespace: 'istio-system' });
  assert.equal(o.deployment.metadata?.name, 'public-istio');
  assert.equal(o.service.spec?.type, 'LoadBalancer');
  assert.deepEqual(o.service.spec?.ports?.map((p) => p.port), [15021, 80, 443]);
  assert.equal(o.deployment.spec?.template.spec?.serviceAccountName, 'public-istio');
  assert.deepEqual(o.deployment.spec?.template.spec?.containers[0]?.args?.slice(0, 4), ['gateway', '--gateway', 'ingress/public', '--in-pod']);
  assert.equal(o.deployment.spec?.template.metadata?.labels?.['istio.io/dataplane-mode'], 'none');
  const nodePort = ingressGatewayObjects({ apiVersion: 'v1', name: 'p', namespace: 'n', uid: 'u', annotations: { 'networking.istio.io/service-type': 'NodePort' }, listeners: [] }, { image: 'i', xdsAddress: 'x', trustDomain: 't', rootNamespace: 'r' });
  assert.equal(nodePort.service.spec?.type, 'NodePort');
});
