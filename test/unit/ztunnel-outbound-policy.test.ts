// REGISTRY_ONLY at the ztunnel: known destinations (Services, pods, ServiceEntry VIPs,
// endpoints and ranges) pass; anything else is refused and reported as BlackHoleCluster.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { meshFromYaml, yaml } from '../helpers/config.js';
import { translate } from '../../src/controlplane/translate.js';
import { meshSettingsOf } from '../../src/controlplane/mesh-settings.js';
import { MeshView } from '../../src/dataplane/mesh-view.js';
import { decideOutbound, roundRobin } from '../../src/dataplane/route.js';

const mesh = (mode: string) => yaml`
  apiVersion: v1
  kind: ConfigMap
  metadata: {name: istio, namespace: istio-system}
  data:
    mesh: |
      outboundTrafficPolicy:
        mode: ${mode}
  ---
  apiVersion: v1
  kind: Namespace
  metadata: {name: shop, labels: {istio.io/dataplane-mode: ambient}}
  ---
  apiVersion: v1
  kind: Pod
  metadata: {name: client, namespace: shop}
  spec: {nodeName: node-1, containers: [{name: c, command: [sleep, "1"]}]}
  status: {podIP: 10.244.1.10}
  ---
  apiVersion: v1
  kind: Pod
  metadata: {name: server, namespace: shop, labels: {app: server}}
  spec: {nodeName: node-2, containers: [{name: c, command: [sleep, "1"]}]}
  status: {podIP: 10.244.2.10}
  ---
  apiVersion: networking.istio.io/v1
  kind: ServiceEntry
  metadata: {name: db, namespace: shop}
  spec:
    hosts: [db.example]
    addresses: [192.0.2.10]
    ports: [{number: 5432, name: pg}]
    resolution: STATIC
    endpoints: [{address: 198.51.100.7}]
  ---
  apiVersion: networking.istio.io/v1
  kind: ServiceEntry
  metadata: {name: range, namespace: shop}
  spec:
    hosts: [range.example]
    addresses: [203.0.113.0/24]
    ports: [{number: 443, name: tls, protocol: TLS}]
`;

function state(mode: string): MeshView {
  const m = meshFromYaml(mesh(mode));
  assert.deepEqual(m.diagnostics.filter((d) => d.severity === 'error'), []);
  const api = translate(m.model!);
  return new MeshView({ ...api, mesh: meshSettingsOf(m.model!) });
}

const cases: { to: string; port: number; registryOnly: 'refuse' | 'hbone' | 'passthrough' }[] = [
  { to: '10.244.2.10', port: 8080, registryOnly: 'hbone' },
  { to: '192.0.2.10', port: 5432, registryOnly: 'passthrough' },
  { to: '198.51.100.7', port: 5432, registryOnly: 'passthrough' },
  { to: '203.0.113.9', port: 443, registryOnly: 'passthrough' },
  { to: '93.184.216.34', port: 443, registryOnly: 'refuse' },
  { to: '10.244.9.9', port: 80, registryOnly: 'refuse' },
];

for (const c of cases) {
  test(`outbound to ${c.to}:${c.port}: ALLOW_ANY passes, REGISTRY_ONLY ${c.registryOnly}`, () => {
    const allow = state('ALLOW_ANY');
    const client = allow.workloadByIp('10.244.1.10');
    const a = decideOutbound(allow, client, { ip: c.to, port: c.port }, roundRobin());
    assert.notEqual(a.kind, 'refuse');
    const only = state('REGISTRY_ONLY');
    const r = decideOutbound(only, only.workloadByIp('10.244.1.10'), { ip: c.to, port: c.port }, roundRobin());
    assert.equal(r.kind, c.registryOnly);
    if (r.kind === 'refuse') {
      assert.equal(r.refusal, 'registry_only');
      assert.equal(r.service?.hostname, 'BlackHoleCluster');
      assert.match(r.reason, /not in the registry/);
    }
  });
}
