// The Kubernetes config source against the API server stand-in: the control plane lists and
// watches through @kubernetes/client-node informers, validates objects one by one, and pushes
// the workload API to a ztunnel's xDS client over real gRPC.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { stringify } from 'yaml';
import { checkSources } from '../../src/controlplane/check-mesh.js';

import { startKubeMesh, type KubeMesh, type KubeZtunnel } from '../helpers/kube/kube-mesh.js';
import { authorizationPolicy, namespace, pod, service } from '../helpers/kube/objects.js';
import { waitFor } from '../helpers/wait.js';

const initial = [
  namespace('istio-system'),
  namespace('shop', { 'istio.io/dataplane-mode': 'ambient' }),
  namespace('plain'),
  pod('shop', 'client', { node: 'node-1', ip: '10.244.1.5', sa: 'client' }),
  pod('shop', 'server', { node: 'node-2', ip: '10.244.2.7', sa: 'server' }),
  pod('shop', 'pending', {}),
  pod('shop', 'done', { node: 'node-1', ip: '10.244.1.9', phase: 'Succeeded' }),
  pod('plain', 'web', { node: 'node-1', ip: '10.244.1.6' }),
  service('shop', 'server', { clusterIP: '10.96.0.50' }),
  authorizationPolicy('shop', 'allow-client', { selector: { matchLabels: { app: 'server' } }, action: 'ALLOW', rules: [{ from: [{ source: { principals: ['cluster.local/ns/shop/sa/client'] } }] }] }),
];

let mesh: KubeMesh;
let z1: KubeZtunnel;

before(async () => {
  mesh = await startKubeMesh();
  mesh.api.put(...initial);
  z1 = mesh.ztunnel('node-1');
  await waitFor('initial sync', () => mesh.parts.source.synced(), 10_000);
  await waitFor('first push to the ztunnel', () => z1.latest() !== undefined, 10_000);
});

after(async () => {
  await mesh?.close();
});

function workloadIps(z: KubeZtunnel): string[] {
  return z.latest()!.snapshot().workloads.map((w) => `${w.namespace}/${w.name}@${w.addresses[0]}:${w.tunnelProtocol}`).sort();
}

test('initial sync gives the same workload API as the same objects from files', () => {
  const files = checkSources([{ file: 'same.yaml', text: initial.map((o) => stringify(o)).join('---\n') }], undefined, {});
  assert.deepEqual(files.diagnostics.filter((d) => d.severity === 'error'), []);
  const fromKube = mesh.cp.store.current().api;
  // Files place pods without an IP on a node; the cluster's pending pod does not count yet.
  const filesWorkloads = files.api!.workloads.filter((w) => w.name !== 'pending' && w.name !== 'done');
  assert.deepEqual(fromKube.workloads, filesWorkloads);
  assert.deepEqual(fromKube.services, files.api!.services);
  assert.deepEqual(fromKube.authorizations, files.api!.authorizations);
  // Pending (no node, no IP) and finished pods are not workloads.
  assert.equal(fromKube.workloads.some((w) => w.name === 'pending' || w.name === 'done'), false);
});

test('the ztunnel received it over xDS', () => {
  assert.deepEqual(workloadIps(z1), ['plain/web@10.244.1.6:NONE', 'shop/client@10.244.1.5:HBONE', 'shop/server@10.244.2.7:HBONE']);
  assert.ok(z1.latest()!.serviceByVip('10.96.0.50'));
});

test('a pod added, relabelled and deleted reaches the ztunnel', async () => {
  mesh.api.put(pod('shop', 'late', { node: 'node-2', ip: '10.244.2.8', labels: { app: 'server' } }));
  await waitFor('added pod', () => z1.latest()!.workloadByIp('10.244.2.8') !== undefined);
  const svc = z1.latest()!.serviceByVip('10.96.0.50')!;
  await waitFor('new endpoint', () => z1.latest()!.endpointsOf(z1.latest()!.serviceByVip('10.96.0.50')!).some((w) => w.name === 'late'));
  assert.ok(svc);
  mesh.api.modify('Pod', 'shop', 'late', (o) => { o.metadata.labels = { app: 'other' }; });
  await waitFor('relabelled pod leaves the service', () => !z1.latest()!.endpointsOf(z1.latest()!.serviceByVip('10.96.0.50')!).some((w) => w.name === 'late'));
  mesh.api.remove('Pod', 'shop', 'late');
  await waitFor('deleted pod', () => z1.latest()!.workloadByIp('10.244.2.8') === undefined);
});

test('a pending pod counts once it is scheduled with an IP, and stops counting when it finishes', async () => {
  mesh.api.modify('Pod', 'shop', 'pending', (o) => {
    o.spec.nodeName = 'node-1';
    o.status = { phase: 'Running', podIP: '10.244.1.7', podIPs: [{ ip: '10.244.1.7' }] };
  });
  await waitFor('scheduled pod', () => z1.latest()!.workloadByIp('10.244.1.7') !== undefined);
  mesh.api.modify('Pod', 'shop', 'pending', (o) => { o.status.phase = 'Failed'; });
  await waitFor('failed pod leaves', () => z1.latest()!.workloadByIp('10.244.1.7') === undefined);
});

test('a pod whose Ready condition turns False is pushed UNHEALTHY (no connection picked through its Service); Ready again, HEALTHY', async () => {
  mesh.api.put(pod('shop', 'flaky', { node: 'node-2', ip: '10.244.2.9', labels: { app: 'server' } }));
  await waitFor('the pod is an endpoint', () => z1.latest()!.workloadByIp('10.244.2.9')?.status === 'HEALTHY');
  const setReady = (v: string) => mesh.api.modify('Pod', 'shop', 'flaky', (o) => { o.status.conditions = [{ type: 'Ready', status: v, lastProbeTime: null, lastTransitionTime: '2026-01-02T00:00:00Z' }]; });
  setReady('False');
  await waitFor('pushed UNHEALTHY', () => z1.latest()!.workloadByIp('10.244.2.9')?.status === 'UNHEALTHY');
  const view = z1.latest()!;
  const svc = view.serviceByVip('10.96.0.50')!;
  assert.ok(view.endpointsOf(svc).some((w) => w.name === 'flaky'), 'still listed as an endpoint');
  assert.ok(!view.healthyEndpointsOf(svc).some((w) => w.name === 'flaky'), 'but never picked for a new connection');
  setReady('True');
  await waitFor('pushed HEALTHY again', () => z1.latest()!.workloadByIp('10.244.2.9')?.status === 'HEALTHY');
  mesh.api.remove('Pod', 'shop', 'flaky');
  await waitFor('deleted pod', () => z1.latest()!.workloadByIp('10.244.2.9') === undefined);
});

test('a namespace label flip moves its pods in and out of the mesh', async () => {
  mesh.api.modify('Namespace', undefined, 'plain', (o) => { o.metadata.labels['istio.io/dataplane-mode'] = 'ambient'; });
  await waitFor('namespace enrolled', () => z1.latest()!.workloadByIp('10.244.1.6')?.tunnelProtocol === 'HBONE');
  mesh.api.modify('Namespace', undefined, 'plain', (o) => { delete o.metadata.labels['istio.io/dataplane-mode']; });
  await waitFor('namespace left', () => z1.latest()!.workloadByIp('10.244.1.6')?.tunnelProtocol === 'NONE');
});

test('a policy change reaches the ztunnel', async () => {
  mesh.api.modify('AuthorizationPolicy', 'shop', 'allow-client', (o) => { o.spec.rules[0].from[0].source.principals = ['cluster.local/ns/shop/sa/other']; });
  await waitFor('policy change', () => JSON.stringify(z1.latest()!.snapshot().authorizations).includes('sa/other'));
  mesh.api.remove('AuthorizationPolicy', 'shop', 'allow-client');
  await waitFor('policy removed', () => z1.latest()!.snapshot().authorizations.every((a) => a.name !== 'allow-client'));
});

test('an invalid object is skipped and reported; the rest keeps working', async () => {
  const before = mesh.api.requests.length;
  mesh.api.put(authorizationPolicy('shop', 'bad', { action: 'DENYY', rules: [{ from: [{ source: { ipBlocks: ['not-a-cidr'] } }] }] }));
  mesh.api.put(pod('shop', 'after-bad', { node: 'node-1', ip: '10.244.1.20', sa: 'client' }));
  await waitFor('valid change after an invalid object', () => z1.latest()!.workloadByIp('10.244.1.20') !== undefined);
  assert.ok(mesh.parts.source.problems().has('AuthorizationPolicy/shop/bad'));
  const warn = mesh.cpLogs.find((l) => l.msg === 'kubernetes object skipped: it is invalid; the rest of the mesh keeps working' && l.object === 'AuthorizationPolicy/shop/bad');
  assert.ok(warn, 'logged');
  assert.match(String(warn.errors), /spec\.action: "DENYY" is not one of ALLOW, DENY, AUDIT, CUSTOM; did you mean "DENY"\?/);
  await waitFor('Event written', () => mesh.api.requests.slice(before).some((r) => r.method === 'POST' && r.path === '/api/v1/namespaces/shop/events' && r.status === 201));
  const ev = mesh.api.list('Event').find((e) => e.involvedObject.name === 'bad')!;
  assert.equal(ev.reason, 'InvalidConfig');
  assert.equal(ev.type, 'Warning');
  assert.equal(ev.involvedObject.kind, 'AuthorizationPolicy');
  assert.match(ev.message, /bad-cidr|not-a-cidr/);
  mesh.api.remove('AuthorizationPolicy', 'shop', 'bad');
  await waitFor('problem cleared', () => !mesh.parts.source.problems().has('AuthorizationPolicy/shop/bad'));
});

test('two pods claiming one IP: the clash is skipped, the others stay', async () => {
  mesh.api.put(pod('shop', 'clash', { node: 'node-2', ip: '10.244.2.7' }));
  await waitFor('clash reported', () => mesh.parts.source.problems().size > 0);
  const keys = [...mesh.parts.source.problems().keys()];
  assert.ok(keys.some((k) => k === 'Pod/shop/clash' || k === 'Pod/shop/server'), keys.join());
  assert.ok(z1.latest()!.workloadByIp('10.244.1.5'));
  mesh.api.remove('Pod', 'shop', 'clash');
  await waitFor('clash gone', () => mesh.parts.source.problems().size === 0);
  await waitFor('server back', () => z1.latest()!.workloadByIp('10.244.2.7')?.name === 'server');
});

test('Istio\'s mesh config ConfigMap (istio in the root namespace) is watched; others are not', async () => {
  assert.equal(mesh.cp.store.current().model.meshConfig.pathNormalization, 'MERGE_SLASHES');
  mesh.api.put({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'istio', namespace: 'istio-system' }, data: { mesh: 'pathNormalization:\n  normalization: BASE\n' } });
  mesh.api.put({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'istio', namespace: 'shop' }, data: { mesh: 'pathNormalization:\n  normalization: NONE\n' } });
  mesh.api.put({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'other', namespace: 'istio-system' }, data: { x: 'y' } });
  await waitFor('mesh config applied', () => mesh.cp.store.current().model.meshConfig.pathNormalization === 'BASE');
  assert.deepEqual(mesh.parts.informers.list('ConfigMap').map((c) => `${c.metadata.namespace}/${c.metadata.name}`), ['istio-system/istio']);
  mesh.api.modify('ConfigMap', 'istio-system', 'istio', (o) => { o.data.mesh = 'pathNormalization:\n  normalization: SOMETIMES\n'; });
  await waitFor('invalid mesh config reported', () => mesh.parts.source.problems().has('ConfigMap/istio-system/istio'));
  assert.equal(mesh.cp.store.current().model.meshConfig.pathNormalization, 'BASE', 'an invalid change is ignored: the last valid version keeps serving');
  assert.equal(mesh.parts.source.problems().get('ConfigMap/istio-system/istio')!.keptPrevious, true);
  mesh.api.remove('ConfigMap', 'istio-system', 'istio');
  await waitFor('cleared', () => !mesh.parts.source.problems().has('ConfigMap/istio-system/istio'));
  await waitFor('deleted: defaults', () => mesh.cp.store.current().model.meshConfig.pathNormalization === 'MERGE_SLASHES');
});

test('a DENY policy made invalid by a change keeps denying with its last valid version', async () => {
  mesh.api.put(authorizationPolicy('shop', 'deny-web', { action: 'DENY', rules: [{ from: [{ source: { namespaces: ['plain'] } }] }] }));
  await waitFor('deny pushed', () => z1.latest()!.snapshot().authorizations.some((a) => a.name === 'deny-web'));
  mesh.api.modify('AuthorizationPolicy', 'shop', 'deny-web', (o) => { o.spec.action = 'DENYY'; });
  await waitFor('reported', () => mesh.parts.source.problems().has('AuthorizationPolicy/shop/deny-web'));
  assert.ok(z1.latest()!.snapshot().authorizations.some((a) => a.name === 'deny-web' && a.action === 'DENY'));
  await waitFor('event', () => mesh.api.list('Event').some((e) => e.involvedObject.name === 'deny-web'));
  assert.match(mesh.api.list('Event').find((e) => e.involvedObject.name === 'deny-web')!.message, /previous version keeps serving/);
  mesh.api.remove('AuthorizationPolicy', 'shop', 'deny-web');
  await waitFor('deleted', () => !z1.latest()!.snapshot().authorizations.some((a) => a.name === 'deny-web'));
});

test('a Service without a selector takes its endpoints from its EndpointSlices', async () => {
  mesh.api.put(service('shop', 'ext', { clusterIP: '10.96.0.70', selector: null }));
  mesh.api.put({
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'ext-abc', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'ext' } },
    addressType: 'IPv4', endpoints: [{ addresses: ['10.244.2.7'], conditions: { ready: true }, targetRef: { kind: 'Pod', name: 'server', namespace: 'shop' } }], ports: [{ port: 8080, protocol: 'TCP' }],
  });
  const eps = () => { const s = z1.latest()!.serviceByVip('10.96.0.70'); return s ? z1.latest()!.endpointsOf(s).map((w) => w.name) : []; };
  await waitFor('endpoint from the slice', () => eps().join() === 'server');
  mesh.api.modify('EndpointSlice', 'shop', 'ext-abc', (o) => { o.endpoints[0].conditions.ready = false; });
  await waitFor('not ready: no endpoint', () => eps().length === 0);
});
