// The pure parts of the Kubernetes source: object projection, which pods count, endpoint
// slices, TokenReview answers, status merging, waypoint drift detection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { configDocument, podCounts, project, timestamp, type KubeObject } from '../../src/kubernetes/kube-object.js';
import { WATCHED_KINDS, chooseVersion, collectionPath } from '../../src/kubernetes/watched-kinds.js';
import { selectorlessEndpoints } from '../../src/kubernetes/endpoints.js';
import { readReview } from '../../src/kubernetes/token-review.js';
import { keyOfRef } from '../../src/kubernetes/kube-config-source.js';
import { mergeStatus, type DesiredStatus } from '../../src/kubernetes/status-desired.js';
import { hasFields } from '../../src/kubernetes/waypoint-objects.js';
import { canonical } from '../../src/kubernetes/status-writer.js';

const kind = (k: string) => WATCHED_KINDS.find((w) => w.kind === k)!;
const podOf = (spec: Record<string, unknown>, status: Record<string, unknown>): KubeObject => project(kind('Pod'), 'v1', { metadata: { name: 'p', namespace: 'n' }, spec: { containers: [{ name: 'c' }], ...spec }, status });

test('which pods count: scheduled, with an IP, not finished, not on the host network', () => {
  const cases: [string, Record<string, unknown>, Record<string, unknown>, boolean][] = [
    ['running', { nodeName: 'n1' }, { podIP: '10.0.0.1', phase: 'Running' }, true],
    ['pending with IP', { nodeName: 'n1' }, { podIP: '10.0.0.1', phase: 'Pending' }, true],
    ['unscheduled', {}, { phase: 'Pending' }, false],
    ['scheduled, no IP', { nodeName: 'n1' }, { phase: 'Pending' }, false],
    ['succeeded', { nodeName: 'n1' }, { podIP: '10.0.0.1', phase: 'Succeeded' }, false],
    ['failed', { nodeName: 'n1' }, { podIP: '10.0.0.1', phase: 'Failed' }, false],
    ['host network', { nodeName: 'n1', hostNetwork: true }, { podIP: '192.0.2.1', phase: 'Running' }, false],
    ['unknown phase', { nodeName: 'n1' }, { podIP: '10.0.0.1', phase: 'Unknown' }, true],
  ];
  for (const [what, spec, status, counts] of cases) assert.equal(podCounts(podOf(spec, status)).counts, counts, what);
});

test('a listed object (typed, Dates) and a watched one (JSON, strings) project the same', () => {
  const json = { metadata: { name: 'p', namespace: 'n', creationTimestamp: '2026-01-02T03:04:05Z', resourceVersion: '7', managedFields: [{ manager: 'x' }], annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}', a: 'b' } }, spec: { nodeName: 'n1', containers: [{ name: 'c', ports: [{ containerPort: 80 }], resources: {} }] }, status: { podIP: '10.0.0.1', phase: 'Running', containerStatuses: [{}] } };
  const typed = { ...structuredClone(json), metadata: { ...structuredClone(json.metadata), creationTimestamp: new Date('2026-01-02T03:04:05.000Z') } };
  assert.deepEqual(project(kind('Pod'), 'v1', typed), project(kind('Pod'), 'v1', json));
  const p = project(kind('Pod'), 'v1', json);
  assert.deepEqual(p.metadata.annotations, { a: 'b' });
  assert.equal((p.metadata as unknown as Record<string, unknown>).managedFields, undefined);
  assert.equal(timestamp(new Date('2026-01-02T03:04:05.123Z')), '2026-01-02T03:04:05Z');
  // What the validator reads: no resourceVersion (a status-only write changes nothing).
  assert.equal((configDocument(p).metadata as Record<string, unknown>).resourceVersion, undefined);
});

test('projection never throws and always gives JSON, whatever the API server sends', () => {
  fc.assert(fc.property(fc.constantFrom(...WATCHED_KINDS), fc.jsonValue(), (k, raw) => {
    const o = project(k, 'v1', raw);
    assert.equal(typeof o.metadata.name, 'string');
    JSON.stringify(configDocument(o));
    if (k.kind === 'Pod') podCounts(o);
  }), { numRuns: 500 });
});

test('versions and paths', () => {
  assert.equal(chooseVersion(['v1', 'v1beta1'], ['v1beta1', 'v1alpha1']), 'v1beta1');
  assert.equal(chooseVersion(['v1'], []), undefined);
  assert.equal(collectionPath(kind('Pod'), 'v1'), '/api/v1/pods');
  assert.equal(collectionPath(kind('AuthorizationPolicy'), 'v1'), '/apis/security.istio.io/v1/authorizationpolicies');
  assert.equal(collectionPath(kind('ConfigMap'), 'v1', 'istio-system'), '/api/v1/namespaces/istio-system/configmaps');
  assert.equal(keyOfRef('Pod shop/client'), 'Pod/shop/client');
  assert.equal(keyOfRef('Namespace shop'), 'Namespace//shop');
  assert.equal(keyOfRef('nonsense'), undefined);
});

test('endpoints of selector-less Services from their EndpointSlices (ready ones)', () => {
  const slice = (svc: string, type: string, eps: unknown[]): KubeObject => project(kind('EndpointSlice'), 'discovery.k8s.io/v1', { metadata: { name: `${svc}-x`, namespace: 'n', labels: { 'kubernetes.io/service-name': svc } }, addressType: type, endpoints: eps });
  const m = selectorlessEndpoints([
    slice('ext', 'IPv4', [{ addresses: ['10.0.0.2'] }, { addresses: ['10.0.0.1'], conditions: { ready: true } }, { addresses: ['10.0.0.3'], conditions: { ready: false } }]),
    slice('ext', 'FQDN', [{ addresses: ['db.example'] }]),
    slice('selected', 'IPv4', [{ addresses: ['10.0.0.9'] }]),
  ], new Set(['n/ext']));
  assert.deepEqual([...m], [['n/ext', ['10.0.0.1', '10.0.0.2']]]);
});

test('TokenReview answers', () => {
  const ok = { authenticated: true, audiences: ['istio-ca'], user: { username: 'system:serviceaccount:istio-system:ztunnel', extra: { 'authentication.kubernetes.io/pod-name': ['z-1'], 'authentication.kubernetes.io/pod-uid': ['u1'], 'authentication.kubernetes.io/node-name': ['n1'] } } };
  assert.deepEqual(readReview(ok, 'istio-ca'), { ok: true, token: { namespace: 'istio-system', serviceAccount: 'ztunnel', pod: { name: 'z-1', uid: 'u1' }, node: 'n1' } });
  assert.equal(readReview({ ...ok, audiences: ['api'] }, 'istio-ca').ok, false);
  assert.equal(readReview({ authenticated: false, error: 'expired' }, 'istio-ca').ok, false);
  assert.equal(readReview(undefined, 'istio-ca').ok, false);
  assert.equal(readReview({ ...ok, user: { username: 'alice' } }, 'istio-ca').ok, false);
  const unbound = readReview({ ...ok, user: { username: 'system:serviceaccount:a:b' } }, 'istio-ca');
  assert.ok(unbound.ok && unbound.token.pod === undefined);
});

test('status merge keeps others\' conditions and an unchanged condition\'s transition time', () => {
  const object = { apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', metadata: { name: 'p', namespace: 'n', generation: 2 } } as KubeObject;
  const d: DesiredStatus = { object, ownedConditionTypes: ['Accepted', 'ZtunnelAccepted', 'WaypointAccepted'], status: { conditions: [{ type: 'ZtunnelAccepted', status: 'True', reason: 'Accepted', message: 'attached to ztunnel', observedGeneration: 2 }] } };
  const current = { conditions: [{ type: 'Other', status: 'True', reason: 'X', message: 'theirs' }, { type: 'ZtunnelAccepted', status: 'True', reason: 'Accepted', message: 'old', lastTransitionTime: '2026-01-01T00:00:00Z' }, { type: 'Accepted', status: 'False', reason: 'Invalid', message: 'stale', lastTransitionTime: '2026-01-01T00:00:00Z' }] };
  const next = mergeStatus(current, d, '2026-02-02T00:00:00Z') as { conditions: { type: string; lastTransitionTime?: string }[] };
  assert.deepEqual(next.conditions.map((c) => c.type), ['Other', 'ZtunnelAccepted']);
  assert.equal(next.conditions[1]!.lastTransitionTime, '2026-01-01T00:00:00Z');
  const flipped = mergeStatus(current, { ...d, status: { conditions: [{ type: 'ZtunnelAccepted', status: 'False', reason: 'UnsupportedValue', message: 'm' }] } }, '2026-02-02T00:00:00Z') as typeof next;
  assert.equal(flipped.conditions[1]!.lastTransitionTime, '2026-02-02T00:00:00Z');
  assert.equal(canonical({ b: 1, a: { d: 2, c: 3 } }), canonical({ a: { c: 3, d: 2 }, b: 1 }));
});

test('waypoint drift: fields Ambit sets are compared, fields others set are not', () => {
  const desired = { spec: { template: { spec: { containers: [{ name: 'w', image: 'a:1', ports: [{ containerPort: 15008 }] }] } } } };
  const actual = { spec: { replicas: 5, template: { spec: { containers: [{ name: 'w', image: 'a:1', imagePullPolicy: 'IfNotPresent', ports: [{ containerPort: 15008, protocol: 'TCP' }] }] } } } };
  assert.equal(hasFields(actual, desired), true);
  assert.equal(hasFields({ spec: { ...actual.spec, template: { spec: { containers: [{ ...actual.spec.template.spec.containers[0], image: 'b:2' }] } } } }, desired), false);
  assert.equal(hasFields({ spec: { template: { spec: { containers: [] } } } }, desired), false);
  assert.equal(hasFields({ port: '15008' }, { port: 15008 }), true);
});
