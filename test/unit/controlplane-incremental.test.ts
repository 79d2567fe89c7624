// A change of policy kinds alone keeps the model and updates the workload API only where the
// change reaches; a full check of the same config is the oracle: after any sequence of
// changes, the control plane serves exactly what a fresh check would.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ConfigStore } from '../../src/controlplane/config-store.js';
import { checkSet } from '../../src/controlplane/check-mesh.js';
import { validateSet } from '../../src/config/validate.js';
import { memoryLogger } from '../../src/core/logger.js';
import { yaml } from '../helpers/config.js';

const base = yaml`
  apiVersion: v1
  kind: Namespace
  metadata: {name: shop, labels: {istio.io/dataplane-mode: ambient}}
  ---
  apiVersion: v1
  kind: Namespace
  metadata: {name: bank, labels: {istio.io/dataplane-mode: ambient}}
  ---
  apiVersion: v1
  kind: Pod
  metadata: {name: web, namespace: shop, labels: {app: web, tier: front}}
  spec: {nodeName: node-1, serviceAccountName: web, containers: [{name: c, image: x}]}
  ---
  apiVersion: v1
  kind: Pod
  metadata: {name: api, namespace: shop, labels: {app: api, tier: back}}
  spec: {nodeName: node-2, serviceAccountName: api, containers: [{name: c, image: x}]}
  ---
  apiVersion: v1
  kind: Pod
  metadata: {name: ledger, namespace: bank, labels: {app: ledger, tier: back}}
  spec: {nodeName: node-1, serviceAccountName: ledger, containers: [{name: c, image: x}]}
  ---
  apiVersion: v1
  kind: Service
  metadata: {name: api, namespace: shop}
  spec: {selector: {app: api}, ports: [{port: 80, targetPort: 8080}]}
`;

const ns = fc.constantFrom('shop', 'bank', 'istio-system');
const name = fc.constantFrom('p1', 'p2', 'p3');
const selector = fc.constantFrom('', '{matchLabels: {app: web}}', '{matchLabels: {tier: back}}', '{matchLabels: {app: nothing}}');
const rule = fc.constantFrom(
  '[{}]', '[]', '[{from: [{source: {principals: [cluster.local/ns/shop/sa/web]}}]}]',
  '[{to: [{operation: {methods: [DELETE]}}]}]', '[{from: [{source: {namespaces: [bank]}}], to: [{operation: {ports: ["8080"]}}]}]',
);
const policy = fc.record({ ns, name, selector, action: fc.constantFrom('ALLOW', 'DENY', 'AUDIT'), rules: rule }).map((p) => yaml`
  apiVersion: security.istio.io/v1
  kind: AuthorizationPolicy
  metadata: {name: ${p.name}, namespace: ${p.ns}}
  spec: {${p.selector ? `selector: ${p.selector}, ` : ''}action: ${p.action}, rules: ${p.rules}}
`);
const peerAuthn = fc.record({ ns, mode: fc.constantFrom('STRICT', 'PERMISSIVE'), selector }).map((p) => yaml`
  apiVersion: security.istio.io/v1
  kind: PeerAuthentication
  metadata: {name: pa, namespace: ${p.ns}}
  spec: {${p.selector ? `selector: ${p.selector}, ` : ''}mtls: {mode: ${p.mode}}}
`);
const route = fc.constantFrom('/a', '/b').map((prefix) => yaml`
  apiVersion: gateway.networking.k8s.io/v1
  kind: HTTPRoute
  metadata: {name: r, namespace: shop}
  spec: {parentRefs: [{kind: Service, group: "", name: api}], rules: [{matches: [{path: {type: PathPrefix, value: ${prefix}}}], backendRefs: [{name: api, port: 80}]}]}
`);
const change = fc.oneof(
  { weight: 4, arbitrary: policy.map((text) => ({ op: 'apply' as const, text })) },
  { weight: 2, arbitrary: fc.tuple(ns, name).map(([n, p]) => ({ op: 'delete' as const, text: `apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: ${p}, namespace: ${n}}\n` })) },
  { weight: 1, arbitrary: peerAuthn.map((text) => ({ op: 'apply' as const, text })) },
  { weight: 1, arbitrary: route.map((text) => ({ op: 'apply' as const, text })) },
  { weight: 1, arbitrary: fc.constant({ op: 'apply' as const, text: 'apiVersion: v1\nkind: Pod\nmetadata: {name: extra, namespace: shop, labels: {app: web}}\nspec: {nodeName: node-2, containers: [{name: c, image: x}]}\n' }) },
);

function served(api: { workloads: unknown[]; services: unknown[]; authorizations: unknown[]; warnings: { message: string; resource?: string }[]; ruleSources: unknown }): string {
  const ruleSources = Object.fromEntries(Object.entries(api.ruleSources as Record<string, number[]>).sort(([a], [b]) => (a < b ? -1 : 1)));
  return JSON.stringify({ ...api, ruleSources, warnings: api.warnings.map((w) => `${w.resource} ${w.message}`).sort() });
}

test('property: after any sequence of policy (and other) changes, the store serves what a full check of the same config gives', () => {
  fc.assert(fc.property(fc.array(change, { minLength: 1, maxLength: 12 }), (changes) => {
    const store = new ConfigStore({ nodes: ['node-1', 'node-2'], logger: memoryLogger({ level: 'error' }).logger });
    assert.ok(store.apply([{ file: 'base.yaml', text: base }]).ok);
    for (const c of changes) {
      const r = c.op === 'apply' ? store.apply([{ file: 'c.yaml', text: c.text }]) : store.delete([{ file: 'c.yaml', text: c.text }]);
      if (!r.ok && c.op === 'delete') continue; // deleting what does not exist is refused
      assert.ok(r.ok, JSON.stringify(r.diagnostics));
      const snap = store.current();
      const full = checkSet(snap.set, validateSet(snap.set), { nodes: ['node-1', 'node-2'] });
      assert.ok(full.model && full.api);
      assert.equal(served(snap.api), served(full.api));
      assert.deepEqual([...snap.model.workloads.keys()], [...full.model.workloads.keys()]);
      assert.equal(snap.model.policies.authorization.length, full.model.policies.authorization.length);
    }
  }), { seed: 1503, numRuns: 120 });
});

test('a policy change keeps the objects of the workloads it does not reach (the push encodes nothing for them)', () => {
  const store = new ConfigStore({ nodes: ['node-1', 'node-2'], logger: memoryLogger({ level: 'error' }).logger });
  assert.ok(store.apply([{ file: 'base.yaml', text: base }]).ok);
  const before = store.current();
  assert.ok(store.apply([{ file: 'p.yaml', text: yaml`
    apiVersion: security.istio.io/v1
    kind: AuthorizationPolicy
    metadata: {name: only-web, namespace: shop}
    spec: {selector: {matchLabels: {app: web}}, action: ALLOW, rules: [{}]}
  ` }]).ok);
  const after = store.current();
  assert.equal(after.model.workloads, before.model.workloads, 'the model was kept');
  const byUid = (s: typeof before) => new Map(s.api.workloads.map((w) => [w.uid, w]));
  assert.equal(byUid(after).get('Kubernetes//Pod/shop/api'), byUid(before).get('Kubernetes//Pod/shop/api'));
  assert.notEqual(byUid(after).get('Kubernetes//Pod/shop/web'), byUid(before).get('Kubernetes//Pod/shop/web'));
  assert.deepEqual(byUid(after).get('Kubernetes//Pod/shop/web')!.authorizationPolicies, ['shop/only-web']);
});
