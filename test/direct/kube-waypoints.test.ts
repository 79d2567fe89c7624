// Waypoints as Deployments: for a Gateway of class istio-waypoint the control plane keeps a
// ServiceAccount, a Deployment and a Service (server-side apply against the API server
// stand-in), repairs drift, leaves replicas to an HPA, and the objects go with the Gateway.
// Each object is checked against the Kubernetes OpenAPI schema of its kind (kubernetes-models).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';

import { startKubeMesh, type KubeMesh } from '../helpers/kube/kube-mesh.js';
import { namespace, pod, service, waypointGateway } from '../helpers/kube/objects.js';
import { waitFor } from '../helpers/wait.js';

let mesh: KubeMesh;
type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

before(async () => {
  mesh = await startKubeMesh({
    waypoints: { image: 'registry.example/ambit:test', xdsAddress: 'ambit-control-plane.istio-system.svc:15012', trustDomain: 'cluster.local', rootNamespace: 'istio-system', debounceMs: 10, resyncMs: 60_000 },
  });
  mesh.api.put(
    namespace('istio-system'), namespace('shop', { 'istio.io/dataplane-mode': 'ambient', 'istio.io/use-waypoint': 'waypoint' }),
    pod('shop', 'server', { node: 'node-2', ip: '10.244.2.7', sa: 'server' }), service('shop', 'server', { clusterIP: '10.96.0.50' }),
  );
  await waitFor('sync', () => mesh.parts.source.synced(), 10_000);
});

after(async () => {
  await mesh?.close();
});

const applies = () => mesh.api.requests.filter((r) => r.method === 'PATCH' && r.contentType === 'application/apply-patch+yaml');

test('a waypoint Gateway gets a ServiceAccount, a Deployment and a Service, named after it and owned by it', async () => {
  const [gw] = mesh.api.put(waypointGateway('shop', 'waypoint'));
  await waitFor('objects made', () => ['ServiceAccount', 'Deployment', 'Service'].every((k) => mesh.api.get(k, 'shop', 'waypoint')));
  for (const kind of ['ServiceAccount', 'Deployment', 'Service']) {
    const o = mesh.api.get(kind, 'shop', 'waypoint')!;
    assert.deepEqual(o.metadata.ownerReferences, [{ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', name: 'waypoint', uid: gw!.metadata.uid }], kind);
    assert.equal(o.metadata.labels['gateway.networking.k8s.io/gateway-name'], 'waypoint', kind);
  }
  for (const r of applies()) {
    assert.equal(r.query.fieldManager, 'ambit-control-plane');
    assert.equal(r.query.force, 'true');
  }
  const deployApply = applies().find((r) => r.path === '/apis/apps/v1/namespaces/shop/deployments/waypoint')!;
  assert.equal((deployApply.body as Obj).spec.replicas, undefined, 'replicas is never applied');
  const d = mesh.api.get('Deployment', 'shop', 'waypoint')!;
  assert.equal(d.spec.template.metadata.labels['istio.io/dataplane-mode'], 'none');
  assert.equal(d.spec.template.spec.serviceAccountName, 'waypoint');
  assert.equal(d.spec.template.spec.volumes[0].projected.sources[0].serviceAccountToken.audience, 'istio-ca');
  const s = mesh.api.get('Service', 'shop', 'waypoint')!;
  assert.deepEqual(s.spec.ports.map((p: Obj) => p.port), [15021, 15008]);
  new Deployment({ apiVersion: 'apps/v1', kind: 'Deployment', ...d } as ConstructorParameters<typeof Deployment>[0]).validate();
  new Service({ apiVersion: 'v1', kind: 'Service', ...s } as ConstructorParameters<typeof Service>[0]).validate();
  new ServiceAccount({ apiVersion: 'v1', kind: 'ServiceAccount', ...mesh.api.get('ServiceAccount', 'shop', 'waypoint') } as ConstructorParameters<typeof ServiceAccount>[0]).validate();
});

test('the waypoint Service gives the namespace\'s services their waypoint address', async () => {
  const vip = mesh.api.get('Service', 'shop', 'waypoint')!.spec.clusterIP;
  await waitFor('waypoint bound', () => mesh.cp.store.current().api.services.find((x) => x.name === 'server')?.waypoint?.address?.address === vip);
});

test('drift is repaired; replicas set by an HPA are left alone', async () => {
  await new Promise((r) => setTimeout(r, 100));
  const before = applies().length;
  mesh.api.modify('Deployment', 'shop', 'waypoint', (o) => { o.spec.replicas = 5; });
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(applies().length, before, 'a replicas change is not drift');
  mesh.api.modify('Deployment', 'shop', 'waypoint', (o) => { o.spec.template.spec.containers[0].image = 'evil/image:latest'; });
  await waitFor('image restored', () => mesh.api.get('Deployment', 'shop', 'waypoint')!.spec.template.spec.containers[0].image === 'registry.example/ambit:test');
  assert.equal(mesh.api.get('Deployment', 'shop', 'waypoint')!.spec.replicas, 5);
  mesh.api.modify('Service', 'shop', 'waypoint', (o) => { o.spec.ports = o.spec.ports.slice(0, 1); });
  await waitFor('service repaired', () => mesh.api.get('Service', 'shop', 'waypoint')!.spec.ports.length === 2);
});

test('a same-named object the Gateway does not own is left alone', async () => {
  mesh.api.put(service('shop', 'taken', { clusterIP: '10.96.0.77', selector: { app: 'mine' } }));
  mesh.api.put(waypointGateway('shop', 'taken'));
  await waitFor('deployment made', () => mesh.api.get('Deployment', 'shop', 'taken') !== undefined);
  await waitFor('conflict logged', () => mesh.cpLogs.some((l) => l.msg === 'waypoint object exists and is not owned by its Gateway; left alone' && l.object === 'Service/shop/taken'));
  assert.deepEqual(mesh.api.get('Service', 'shop', 'taken')!.spec.selector, { app: 'mine' });
});

test('deleting the Gateway deletes what was made for it', async () => {
  mesh.api.remove('Gateway', 'shop', 'waypoint');
  await waitFor('objects gone', () => ['ServiceAccount', 'Deployment', 'Service'].every((k) => !mesh.api.get(k, 'shop', 'waypoint')));
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(mesh.api.get('Deployment', 'shop', 'waypoint'), undefined, 'not re-created');
});
