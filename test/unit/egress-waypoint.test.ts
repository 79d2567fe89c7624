// The egress waypoint's pure parts: which Secret reaches which proxy (and how it is shown
// elsewhere), the TLS it compiles from DestinationRule + Secret, and routes attached to a
// ServiceEntry.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { meshFromYaml, yaml } from '../helpers/config.js';
import { b64, issueCert, makeTestCa } from '../helpers/tls-certs.js';
import { redactSecret, secretConsumers, secretVisible, waypointOfNode, REDACTED } from '../../src/controlplane/secret-scope.js';
import { waypointConfigObjects } from '../../src/controlplane/xds-push.js';
import { translate } from '../../src/controlplane/translate.js';
import { compileWaypointConfig } from '../../src/waypoint/waypoint-config.js';
import { decideRoute } from '../../src/waypoint/routing.js';
import { MeshView } from '../../src/dataplane/mesh-view.js';
import type { ConfigObject } from '../../src/xds/config-resource.js';

async function mesh() {
  const partnerCa = await makeTestCa('Partner CA');
  const clientCa = await makeTestCa('Client CA');
  const client = await issueCert(clientCa, { commonName: 'client', usage: 'client' });
  const text = yaml`
    apiVersion: v1
    kind: Namespace
    metadata: {name: egress}
    ---
    apiVersion: gateway.networking.k8s.io/v1
    kind: Gateway
    metadata: {name: egress-waypoint, namespace: egress}
    spec: {gatewayClassName: istio-waypoint, listeners: [{name: mesh, port: 15008, protocol: HBONE}]}
    ---
    apiVersion: gateway.networking.k8s.io/v1
    kind: Gateway
    metadata: {name: other, namespace: egress}
    spec: {gatewayClassName: istio-waypoint, listeners: [{name: mesh, port: 15008, protocol: HBONE}]}
    ---
    apiVersion: networking.istio.io/v1
    kind: ServiceEntry
    metadata: {name: partner, namespace: egress, labels: {istio.io/use-waypoint: egress-waypoint}}
    spec: {hosts: [api.partner.example], ports: [{number: 80, name: http, protocol: HTTP, targetPort: 443}], resolution: DNS}
    ---
    apiVersion: networking.istio.io/v1
    kind: DestinationRule
    metadata: {name: partner-tls, namespace: egress}
    spec:
      host: api.partner.example
      trafficPolicy:
        tls: {mode: MUTUAL, credentialName: partner-client, sni: api.partner.example}
    ---
    apiVersion: gateway.networking.k8s.io/v1
    kind: HTTPRoute
    metadata: {name: r, namespace: egress}
    spec:
      parentRefs: [{kind: ServiceEntry, group: networking.istio.io, name: partner}]
      rules:
      - matches: [{path: {type: PathPrefix, value: /v2}}]
        filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-api, value: v2}]}}]
  ` + `---\napiVersion: v1\nkind: Secret\nmetadata: {name: partner-client, namespace: egress}\ntype: kubernetes.io/tls\ndata:\n  tls.crt: ${b64(client.certPem)}\n  tls.key: ${b64(client.keyPem)}\n  ca.crt: ${b64(partnerCa.certPem)}\n`
    + `---\napiVersion: v1\nkind: Secret\nmetadata: {name: unrelated, namespace: egress}\nstringData: {password: hunter2}\n`;
  const m = meshFromYaml(text);
  assert.deepEqual(m.diagnostics.filter((d) => d.severity === 'error'), []);
  return { m, partnerCa, client };
}

test('a Secret reaches only the replicas of the waypoint that originates TLS with it, on their own node', async () => {
  const { m } = await mesh();
  const users = secretConsumers(m.set, m.model!);
  assert.deepEqual([...(users.get('egress/partner-client') ?? [])], ['egress/egress-waypoint']);
  const replica = m.model!.workloadByName('egress', 'egress-waypoint-0')!;
  const other = m.model!.workloadByName('egress', 'other-0')!;
  assert.equal(waypointOfNode(m.model!, `${replica.node}~egress-waypoint-0.egress`), 'egress/egress-waypoint');
  assert.equal(secretVisible(m.model!, users, `${replica.node}~egress-waypoint-0.egress`, 'Secret/egress/partner-client'), true);
  const elsewhere = replica.node === 'node-1' ? 'node-2' : 'node-1';
  assert.equal(secretVisible(m.model!, users, `${elsewhere}~egress-waypoint-0.egress`, 'Secret/egress/partner-client'), false, 'another node cannot claim the replica');
  assert.equal(secretVisible(m.model!, users, `${other.node}~other-0.egress`, 'Secret/egress/partner-client'), false, 'another waypoint');
  assert.equal(secretVisible(m.model!, users, replica.node, 'Secret/egress/partner-client'), false, 'a ztunnel');
  assert.equal(secretVisible(m.model!, users, `${replica.node}~egress-waypoint-0.egress`, 'Secret/egress/unrelated'), false);
  assert.equal(secretVisible(m.model!, users, replica.node, 'HTTPRoute/egress/r'), true);
  const pushed = waypointConfigObjects(m.set, users).filter((o) => o.kind === 'Secret').map((o) => o.metadata.name);
  assert.deepEqual(pushed, ['partner-client'], 'an unused Secret is not even pushed');
  const shown = redactSecret(m.set.ofKind('Secret').find((s) => s.metadata.name === 'unrelated')!);
  assert.deepEqual(shown.stringData, { password: REDACTED });
});

test('the waypoint compiles mutual TLS from the DestinationRule and the Secret; a missing Secret is an error, not plaintext', async () => {
  const { m, partnerCa } = await mesh();
  const api = translate(m.model!);
  const state = new MeshView(api);
  const users = secretConsumers(m.set, m.model!);
  const objects = waypointConfigObjects(m.set, users);
  const cfg = compileWaypointConfig({ version: '1', state, objects, rootNamespace: 'istio-system', trustDomain: 'cluster.local', readFile: () => '', waypointNamespace: 'egress' });
  const svc = state.serviceByKey('egress/api.partner.example')!;
  const entry = cfg.egress.entryOf(svc)!;
  assert.equal(entry.name, 'partner');
  const tls = entry.tls(80)!;
  assert.equal(tls.mode, 'MUTUAL');
  assert.equal(tls.sni, 'api.partner.example');
  assert.equal(tls.ca, partnerCa.certPem);
  assert.match(tls.cert ?? '', /BEGIN CERTIFICATE/);
  assert.equal(tls.error, undefined);
  assert.doesNotMatch(JSON.stringify(cfg.egress.describe()), /BEGIN|PRIVATE/, 'config_dump shows no material');
  const without = compileWaypointConfig({ version: '2', state, objects: objects.filter((o) => o.kind !== 'Secret') as ConfigObject[], rootNamespace: 'istio-system', trustDomain: 'cluster.local', readFile: () => '', waypointNamespace: 'egress' });
  assert.match(without.egress.entryOf(svc)!.tls(80)!.error ?? '', /Secret egress\/partner-client .* is not available/);
  assert.ok(without.warnings.some((w) => /requests get 503/.test(w)));
  // Routes attached to the ServiceEntry apply to its host; without a backendRef they send to it.
  const hit = decideRoute(cfg.routes, { hostname: 'api.partner.example', port: 80 }, { method: 'GET', path: '/v2/x', host: 'api.partner.example', headers: {} }, () => 0);
  assert.equal(hit.kind, 'forward');
  if (hit.kind !== 'forward') return;
  assert.deepEqual(hit.backend, { namespace: 'egress', name: 'partner', port: 80, hostname: 'api.partner.example' });
  assert.deepEqual(hit.requestHeaders.set, [['x-api', 'v2']]);
  const miss = decideRoute(cfg.routes, { hostname: 'api.partner.example', port: 80 }, { method: 'GET', path: '/v1', host: 'api.partner.example', headers: {} }, () => 0);
  assert.equal(miss.kind, 'not-found');
});

test('authz check explains a ServiceEntry destination: its egress waypoint and the policies bound to the ServiceEntry', async () => {
  const { explainAuthz } = await import('../../src/controlplane/explain-authz.js');
  const text = yaml`
    apiVersion: v1
    kind: Namespace
    metadata: {name: shop, labels: {istio.io/dataplane-mode: ambient}}
    ---
    apiVersion: v1
    kind: Pod
    metadata: {name: client, namespace: shop}
    spec: {containers: [{name: c, command: [sleep, "1"]}]}
    ---
    apiVersion: gateway.networking.k8s.io/v1
    kind: Gateway
    metadata: {name: egress-waypoint, namespace: egress}
    spec: {gatewayClassName: istio-waypoint, listeners: [{name: mesh, port: 15008, protocol: HBONE}]}
    ---
    apiVersion: networking.istio.io/v1
    kind: ServiceEntry
    metadata: {name: partner, namespace: egress, labels: {istio.io/use-waypoint: egress-waypoint}}
    spec: {hosts: [api.partner.example], ports: [{number: 80, name: http, protocol: HTTP}], resolution: DNS}
    ---
    apiVersion: networking.istio.io/v1
    kind: ServiceEntry
    metadata: {name: open, namespace: egress}
    spec: {hosts: [open.example], ports: [{number: 80, name: http, protocol: HTTP}], resolution: DNS}
    ---
    apiVersion: security.istio.io/v1
    kind: AuthorizationPolicy
    metadata: {name: read-only, namespace: egress}
    spec:
      targetRefs: [{kind: ServiceEntry, group: networking.istio.io, name: partner}]
      rules: [{to: [{operation: {methods: [GET]}}]}]
  `;
  const m = meshFromYaml(text);
  const ask = (to: string, method: string) => explainAuthz(m.model!, m.api!, { from: { namespace: 'shop', name: 'client' }, to: { namespace: 'egress', name: to, port: 80 }, http: { method, path: '/', headers: {} } });
  assert.equal(ask('partner', 'GET').decision, 'ALLOW');
  const denied = ask('api.partner.example', 'DELETE');
  assert.equal(denied.decision, 'DENY');
  assert.equal(denied.enforcedBy, 'waypoint');
  assert.deepEqual(denied.steps[0]!.policiesConsidered, ['egress/read-only']);
  const open = ask('open.example', 'DELETE');
  assert.equal(open.path, 'not-meshed');
  assert.match(open.reason, /no waypoint/);
});
