// Sidecar mode, the pure parts: who is a sidecar pod (model), what its workload says on the
// wire (translation, native_tunnel through the codec), which policies its sidecar enforces,
// PeerAuthentication on its plaintext port, and `authz check` naming the sidecar.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { meshFromYaml, yaml } from '../helpers/config.js';
import { decodeAddress, encodeWorkload } from '../../src/xds/codec.js';
import { workload } from '../helpers/xds-fixtures.js';
import { MeshView } from '../../src/dataplane/mesh-view.js';
import { compilePolicy } from '../../src/rbac/index.js';
import { decidePlaintext, isPeerAuthenticationPolicy, sidecarInboundPolicies } from '../../src/sidecar/sidecar-policy.js';
import { explainAuthz } from '../../src/controlplane/explain-authz.js';
import type { AuthorizationPolicyResource } from '../../src/config/resources.js';

const config = yaml`
  apiVersion: v1
  kind: Namespace
  metadata: {name: amb, labels: {istio.io/dataplane-mode: ambient}}
  ---
  apiVersion: v1
  kind: Namespace
  metadata: {name: inj, labels: {istio-injection: enabled}}
  ---
  apiVersion: v1
  kind: Pod
  metadata: {name: a, namespace: amb, labels: {app: a}}
  spec: {containers: [{name: c, command: [sleep, "1"]}]}
  ---
  apiVersion: v1
  kind: Pod
  metadata: {name: by-label, namespace: amb, labels: {app: s, sidecar.istio.io/inject: "true"}}
  spec: {serviceAccountName: s, containers: [{name: c, command: [sleep, "1"]}]}
  ---
  apiVersion: v1
  kind: Pod
  metadata: {name: by-annotation, namespace: amb, labels: {app: t}, annotations: {sidecar.istio.io/inject: "true"}}
  spec: {containers: [{name: c, command: [sleep, "1"]}]}
  ---
  apiVersion: v1
  kind: Pod
  metadata: {name: injected, namespace: inj, labels: {app: i}}
  spec: {containers: [{name: c, command: [sleep, "1"]}]}
  ---
  apiVersion: v1
  kind: Pod
  metadata: {name: opted-out, namespace: inj, labels: {app: o, sidecar.istio.io/inject: "false"}}
  spec: {containers: [{name: c, command: [sleep, "1"]}]}
  ---
  apiVersion: v1
  kind: Service
  metadata: {name: s, namespace: amb}
  spec: {selector: {app: s}, ports: [{port: 80, targetPort: 8080}]}
  ---
  apiVersion: security.istio.io/v1
  kind: AuthorizationPolicy
  metadata: {name: s-no-delete, namespace: amb}
  spec:
    selector: {matchLabels: {app: s}}
    action: DENY
    rules: [{to: [{operation: {methods: [DELETE]}}]}]
  ---
  apiVersion: security.istio.io/v1
  kind: AuthorizationPolicy
  metadata: {name: t-only, namespace: amb}
  spec:
    selector: {matchLabels: {app: t}}
    action: ALLOW
    rules: [{}]
  ---
  apiVersion: security.istio.io/v1
  kind: AuthorizationPolicy
  metadata: {name: svc-bound, namespace: amb}
  spec:
    targetRefs: [{kind: Service, group: "", name: s}]
    action: DENY
    rules: [{}]
  ---
  apiVersion: security.istio.io/v1
  kind: PeerAuthentication
  metadata: {name: strict, namespace: amb}
  spec: {selector: {matchLabels: {app: s}}, mtls: {mode: STRICT}}
`;

const check = meshFromYaml(config);

test('sidecar mode: pod label or annotation, namespace istio-injection, and the pod opt-out', () => {
  assert.deepEqual(check.diagnostics.filter((d) => d.severity === 'error'), []);
  const mode = (ns: string, name: string) => check.model!.workloadByName(ns, name)!.mode;
  assert.deepEqual(
    [mode('amb', 'a'), mode('amb', 'by-label'), mode('amb', 'by-annotation'), mode('inj', 'injected'), mode('inj', 'opted-out')],
    ['ambient', 'sidecar', 'sidecar', 'sidecar', 'none'],
  );
});

test('a sidecar workload speaks HBONE with native_tunnel (kept on the wire); ambient ones do not carry it', () => {
  const api = check.api!;
  const w = (name: string) => api.workloads.find((x) => x.name === name)!;
  assert.equal(w('by-label').tunnelProtocol, 'HBONE');
  assert.equal(w('by-label').nativeTunnel, true);
  assert.equal(w('a').tunnelProtocol, 'HBONE');
  assert.equal(w('a').nativeTunnel, undefined);
  const wire = { ...workload(1), nativeTunnel: true };
  assert.deepEqual(decodeAddress(encodeWorkload(wire)), { workload: wire });
  const plain = workload(2);
  assert.equal(decodeAddress(encodeWorkload(plain)).workload!.nativeTunnel, undefined);
  assert.ok(encodeWorkload(wire).length > encodeWorkload({ ...wire, nativeTunnel: false }).length);
});

test("the sidecar enforces the policies that select its pod (not targetRefs ones), with L7 rules intact", () => {
  const api = check.api!;
  const self = api.workloads.find((x) => x.name === 'by-label')!;
  const compiled = check.model!.policies.authorization.map((l) => compilePolicy(l.resource as AuthorizationPolicyResource, { rootNamespace: 'istio-system', trustDomain: 'cluster.local' }));
  assert.deepEqual(sidecarInboundPolicies(compiled, self).map((p) => p.key), ['amb/s-no-delete']);
  const other = api.workloads.find((x) => x.name === 'by-annotation')!;
  assert.deepEqual(sidecarInboundPolicies(compiled, other).map((p) => p.key), ['amb/t-only']);
});

test('plaintext to a sidecar pod: STRICT refuses, PERMISSIVE accepts (PeerAuthentication only decides here)', () => {
  const api = check.api!;
  const state = new MeshView({ workloads: api.workloads, services: api.services, authorizations: api.authorizations });
  const strict = api.workloads.find((x) => x.name === 'by-label')!;
  const permissive = api.workloads.find((x) => x.name === 'by-annotation')!;
  assert.equal(decidePlaintext(state, strict, '10.1.1.1', { ip: strict.addresses[0]!, port: 8080 }).decision, 'DENY');
  assert.equal(decidePlaintext(state, permissive, '10.1.1.1', { ip: permissive.addresses[0]!, port: 8080 }).decision, 'ALLOW');
  assert.ok(isPeerAuthenticationPolicy('istio_converted_static_strict'));
  assert.ok(isPeerAuthenticationPolicy('converted_peer_authentication_x'));
  assert.ok(!isPeerAuthenticationPolicy('s-no-delete'));
});

test('authz check names the sidecar and evaluates HTTP attributes there', () => {
  const q = (method: string) => explainAuthz(check.model!, check.api!, { from: { namespace: 'amb', name: 'a' }, to: { namespace: 'amb', name: 'by-label', port: 8080 }, http: { method, path: '/', headers: {} } });
  const del = q('DELETE');
  assert.deepEqual([del.decision, del.enforcedBy, del.policy], ['DENY', 'sidecar', 'amb/s-no-delete']);
  const get = q('GET');
  assert.deepEqual([get.decision, get.enforcedBy], ['ALLOW', 'sidecar']);
  const ambient = explainAuthz(check.model!, check.api!, { from: { namespace: 'amb', name: 'by-label' }, to: { namespace: 'amb', name: 'a', port: 80 } });
  assert.equal(ambient.enforcedBy, 'ztunnel');
});
