// Which policies apply to a workload (ztunnel) or a waypoint target; compile's scope and fields.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AuthorizationPolicySpec } from '../../src/config/resources.js';
import {
  compilePolicy,
  fromAuthorization,
  policiesForTarget,
  policiesForWorkload,
  policiesForZtunnel,
  staticStrictAuthorization,
  type CompiledPolicy,
  type PolicyTarget,
} from '../../src/rbac/index.js';
import { ap, compiled, ROOT } from './rbac-fixtures.js';

const web = { app: 'web', version: 'v1' };
const P = (nsName: string, spec: AuthorizationPolicySpec): CompiledPolicy => compiled(nsName, { rules: [{}], ...spec });

const all: CompiledPolicy[] = [
  P('istio-system/mesh-wide', {}),
  P('istio-system/mesh-web', { selector: { matchLabels: { app: 'web' } } }),
  P('shop/ns-wide', {}),
  P('shop/web-only', { selector: { matchLabels: { app: 'web' } } }),
  P('shop/web-v2', { selector: { matchLabels: { app: 'web', version: 'v2' } } }),
  P('shop/empty-selector', { selector: {} }),
  P('other/ns-wide', {}),
  P('other/web-only', { selector: { matchLabels: { app: 'web' } } }),
  P('shop/waypoint', { targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'waypoint' }] }),
  P('shop/svc', { targetRefs: [{ kind: 'Service', group: '', name: 'web' }] }),
  P('shop/svc-old', { targetRef: { kind: 'Service', name: 'web' } }),
  P('shop/cross', { targetRefs: [{ kind: 'Service', name: 'web', namespace: 'other' }] }),
  P('shop/se', { targetRefs: [{ kind: 'ServiceEntry', group: 'networking.istio.io', name: 'ext' }] }),
  P('shop/wrong-group', { targetRefs: [{ kind: 'Gateway', group: 'networking.istio.io', name: 'waypoint' }] }),
  P('istio-system/all-waypoints', { targetRefs: [{ kind: 'GatewayClass', group: 'gateway.networking.k8s.io', name: 'istio-waypoint' }] }),
  P('shop/class-not-root', { targetRefs: [{ kind: 'GatewayClass', name: 'istio-waypoint' }] }),
];

const keys = (ps: CompiledPolicy[]) => ps.map((p) => p.key).sort();

interface WorkloadRow { name: string; namespace: string; labels: Record<string, string>; expect: string[] }
const workloadRows: WorkloadRow[] = [
  {
    name: 'web v1 in shop: root global, root selector, namespace, matching selectors; never targetRefs',
    namespace: 'shop', labels: web,
    expect: ['istio-system/mesh-web', 'istio-system/mesh-wide', 'shop/empty-selector', 'shop/ns-wide', 'shop/web-only'],
  },
  {
    name: 'db in shop: selectors that do not match are left out',
    namespace: 'shop', labels: { app: 'db' },
    expect: ['istio-system/mesh-wide', 'shop/empty-selector', 'shop/ns-wide'],
  },
  {
    name: 'web in other: the root selector policy applies in every namespace, shop\'s do not',
    namespace: 'other', labels: web,
    expect: ['istio-system/mesh-web', 'istio-system/mesh-wide', 'other/ns-wide', 'other/web-only'],
  },
  {
    name: 'a workload with no labels in a namespace without policies: only the global one',
    namespace: 'empty', labels: {},
    expect: ['istio-system/mesh-wide'],
  },
  {
    name: 'a selector needs every label (web v2 only)',
    namespace: 'shop', labels: { app: 'web', version: 'v2' },
    expect: ['istio-system/mesh-web', 'istio-system/mesh-wide', 'shop/empty-selector', 'shop/ns-wide', 'shop/web-only', 'shop/web-v2'],
  },
];

for (const row of workloadRows) {
  test(`applicable: workload: ${row.name}`, () => {
    assert.deepEqual(keys(policiesForWorkload(all, { namespace: row.namespace, labels: row.labels }, ROOT)), row.expect);
  });
}

interface TargetRow { name: string; target: PolicyTarget; expect: string[] }
const targetRows: TargetRow[] = [
  { name: 'the waypoint Gateway (namespace defaults to the policy\'s; wrong group excluded; class-wide root policy included)', target: { kind: 'Gateway', namespace: 'shop', name: 'waypoint', gatewayClassName: 'istio-waypoint' }, expect: ['istio-system/all-waypoints', 'shop/waypoint'] },
  { name: 'a Gateway of another class does not get the class-wide policy', target: { kind: 'Gateway', namespace: 'shop', name: 'waypoint', gatewayClassName: 'other-class' }, expect: ['shop/waypoint'] },
  { name: 'a Service (targetRefs and the deprecated targetRef)', target: { kind: 'Service', namespace: 'shop', name: 'web' }, expect: ['shop/svc', 'shop/svc-old'] },
  { name: 'a Service in another namespace named by an explicit ref namespace', target: { kind: 'Service', namespace: 'other', name: 'web' }, expect: ['shop/cross'] },
  { name: 'a ServiceEntry', target: { kind: 'ServiceEntry', namespace: 'shop', name: 'ext' }, expect: ['shop/se'] },
  { name: 'kind must match: a Service named waypoint gets nothing', target: { kind: 'Service', namespace: 'shop', name: 'waypoint' }, expect: [] },
];

for (const row of targetRows) {
  test(`applicable: target: ${row.name}`, () => {
    assert.deepEqual(keys(policiesForTarget(all, row.target, { rootNamespace: ROOT })), row.expect);
  });
}

test('applicable: ztunnel selection over the workload API: global, namespace, and the names the workload lists', () => {
  const received = [
    fromAuthorization({ name: 'g', namespace: ROOT, scope: 'GLOBAL', action: 'ALLOW', rules: [], dryRun: false }),
    fromAuthorization({ name: 'n', namespace: 'shop', scope: 'NAMESPACE', action: 'ALLOW', rules: [], dryRun: false }),
    fromAuthorization({ name: 'n', namespace: 'other', scope: 'NAMESPACE', action: 'ALLOW', rules: [], dryRun: false }),
    fromAuthorization({ name: 'sel', namespace: 'shop', scope: 'WORKLOAD_SELECTOR', action: 'ALLOW', rules: [], dryRun: false }),
    fromAuthorization({ name: 'sel2', namespace: 'shop', scope: 'WORKLOAD_SELECTOR', action: 'ALLOW', rules: [], dryRun: false }),
    fromAuthorization(staticStrictAuthorization(ROOT)),
  ];
  const got = policiesForZtunnel(received, { namespace: 'shop', authorizationPolicies: ['shop/sel', 'istio-system/istio_converted_static_strict'] });
  assert.deepEqual(keys(got), ['istio-system/g', 'istio-system/istio_converted_static_strict', 'shop/n', 'shop/sel']);
  // Selector policies received without labels never match by labels.
  assert.deepEqual(keys(policiesForWorkload(received, { namespace: 'shop', labels: web }, ROOT)), ['istio-system/g', 'shop/n']);
});

// ---- compile: scope, dry-run, provider, rule indexes ----

test('compile: scopes', () => {
  const scope = (nsName: string, spec: AuthorizationPolicySpec) => compilePolicy(ap(nsName, spec), { rootNamespace: ROOT }).scope;
  assert.deepEqual(scope('istio-system/a', {}), { kind: 'GLOBAL' });
  assert.deepEqual(scope('shop/a', {}), { kind: 'NAMESPACE' });
  assert.deepEqual(scope('shop/a', { selector: { matchLabels: { app: 'web' } } }), { kind: 'WORKLOAD_SELECTOR', matchLabels: { app: 'web' } });
  assert.deepEqual(scope('shop/a', { targetRefs: [{ kind: 'Gateway', name: 'wp' }] }), { kind: 'TARGET_REFS', targetRefs: [{ kind: 'Gateway', name: 'wp', namespace: 'shop' }] });
  // A custom root namespace.
  assert.deepEqual(compilePolicy(ap('mesh-root/a', {}), { rootNamespace: 'mesh-root' }).scope, { kind: 'GLOBAL' });
  assert.deepEqual(compilePolicy(ap('istio-system/a', {}), { rootNamespace: 'mesh-root' }).scope, { kind: 'NAMESPACE' });
});

test('compile: dry-run annotation, CUSTOM provider, source rule indexes survive dropped rules', () => {
  const p = compilePolicy(
    ap('shop/x', { action: 'CUSTOM', provider: { name: 'opa' }, rules: [{ from: [{ source: { ipBlocks: ['bogus'] } }] }, {}] }, { 'istio.io/dry-run': 'true' }),
    { rootNamespace: ROOT },
  );
  assert.equal(p.dryRun, true);
  assert.equal(p.provider, 'opa');
  assert.equal(p.action, 'CUSTOM');
  assert.deepEqual(p.rules.map((r) => r.index), [1]);
  assert.equal(p.key, 'shop/x');
});

test('compile: an empty source entry matches anything, with a warning', () => {
  const p = compilePolicy(ap('shop/x', { rules: [{ from: [{ source: {} }] }] }), { rootNamespace: ROOT });
  assert.deepEqual(p.rules, [{ index: 0, clauses: [] }]);
  assert.deepEqual(p.warnings.map((w) => w.code), ['AMBIT_WARN_AUTHZ_EMPTY_ENTRY']);
});
