// Status written to the API server stand-in as Istio writes it: Gateway Accepted/Programmed
// with addresses, HTTPRoute parents[].conditions, AuthorizationPolicy conditions; merge
// patches of the status subresource only, skipped when nothing changed. Every written object
// is checked against the Gateway API's own schema (@kubernetes-models/gateway-api).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Gateway } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/Gateway';
import { HTTPRoute } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute';

import { startKubeMesh, type KubeMesh } from '../helpers/kube/kube-mesh.js';
import { authorizationPolicy, namespace, pod, service, waypointGateway } from '../helpers/kube/objects.js';
import { waitFor } from '../helpers/wait.js';

let mesh: KubeMesh;

before(async () => {
  mesh = await startKubeMesh();
  mesh.api.put(
    namespace('istio-system'), namespace('shop', { 'istio.io/dataplane-mode': 'ambient', 'istio.io/use-waypoint': 'waypoint' }),
    pod('shop', 'server', { node: 'node-2', ip: '10.244.2.7', sa: 'server' }),
    service('shop', 'server', { clusterIP: '10.96.0.50' }),
    waypointGateway('shop', 'waypoint'),
  );
  await waitFor('sync', () => mesh.parts.source.synced(), 10_000);
});

after(async () => {
  await mesh?.close();
});

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const conditions = (o: Obj | undefined, type: string): Obj | undefined => (o?.status?.conditions as Obj[] | undefined)?.find((c) => c.type === type);
const statusPatches = () => mesh.api.requests.filter((r) => r.method === 'PATCH' && r.path.endsWith('/status'));

test('a waypoint Gateway without its Service is Accepted but not Programmed; with it, Programmed with its address', async () => {
  await waitFor('Accepted', () => conditions(mesh.api.get('Gateway', 'shop', 'waypoint'), 'Accepted')?.status === 'True');
  let g = mesh.api.get('Gateway', 'shop', 'waypoint')!;
  assert.equal(conditions(g, 'Programmed')?.status, 'False');
  assert.equal(conditions(g, 'Programmed')?.reason, 'AddressNotAssigned');
  const firstAccepted = conditions(g, 'Accepted')!.lastTransitionTime;
  mesh.api.put(service('shop', 'waypoint', { clusterIP: '10.96.0.99', selector: { 'gateway.networking.k8s.io/gateway-name': 'waypoint' }, port: 15008, targetPort: 15008, labels: { 'gateway.networking.k8s.io/gateway-name': 'waypoint' } }));
  await waitFor('Programmed', () => conditions(mesh.api.get('Gateway', 'shop', 'waypoint'), 'Programmed')?.status === 'True');
  g = mesh.api.get('Gateway', 'shop', 'waypoint')!;
  assert.deepEqual(g.status.addresses, [{ type: 'IPAddress', value: '10.96.0.99' }]);
  assert.equal(conditions(g, 'Accepted')!.lastTransitionTime, firstAccepted, 'an unchanged condition keeps its transition time');
  assert.equal(conditions(g, 'Accepted')!.observedGeneration, g.metadata.generation);
  assert.equal(g.status.listeners[0].name, 'mesh');
  new Gateway(g as ConstructorParameters<typeof Gateway>[0]).validate();
  for (const p of statusPatches()) assert.equal(p.contentType, 'application/merge-patch+json');
  assert.ok(statusPatches().every((p) => Object.keys(p.body as Obj).join() === 'status'), 'patches carry status only');
});

test('HTTPRoute parents: Accepted and ResolvedRefs per parent, other controllers\' entries kept', async () => {
  mesh.api.put({
    apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: { name: 'r', namespace: 'shop' },
    spec: { parentRefs: [{ group: '', kind: 'Service', name: 'server', port: 80 }], rules: [{ backendRefs: [{ name: 'server', port: 80 }, { name: 'missing', port: 80 }] }] },
    status: { parents: [{ parentRef: { name: 'ingress' }, controllerName: 'example.com/other', conditions: [{ type: 'Accepted', status: 'True', reason: 'Accepted', message: 'theirs', lastTransitionTime: '2026-01-01T00:00:00Z', observedGeneration: 1 }] }] },
  });
  await waitFor('our parent entry', () => (mesh.api.get('HTTPRoute', 'shop', 'r')?.status?.parents ?? []).length === 2);
  const r = mesh.api.get('HTTPRoute', 'shop', 'r')!;
  const ours = r.status.parents.find((p: Obj) => p.controllerName === 'istio.io/mesh-controller');
  assert.deepEqual(ours.parentRef, { group: '', kind: 'Service', name: 'server', port: 80 });
  assert.equal(ours.conditions.find((c: Obj) => c.type === 'Accepted').status, 'True');
  const rr = ours.conditions.find((c: Obj) => c.type === 'ResolvedRefs');
  assert.equal(rr.status, 'False');
  assert.equal(rr.reason, 'BackendNotFound');
  assert.match(rr.message, /shop\/missing/);
  assert.equal(r.status.parents.find((p: Obj) => p.controllerName === 'example.com/other').conditions[0].message, 'theirs');
  new HTTPRoute(r as ConstructorParameters<typeof HTTPRoute>[0]).validate();
  mesh.api.put(service('shop', 'missing', { clusterIP: '10.96.0.51' }));
  await waitFor('refs resolved', () => mesh.api.get('HTTPRoute', 'shop', 'r')!.status.parents.find((p: Obj) => p.controllerName === 'istio.io/mesh-controller').conditions.find((c: Obj) => c.type === 'ResolvedRefs').status === 'True');
});

test('AuthorizationPolicy: where it is enforced, and when the ztunnel\'s fail-closed rule applies', async () => {
  mesh.api.put(
    authorizationPolicy('shop', 'l4', { selector: { matchLabels: { app: 'server' } }, rules: [{ from: [{ source: { namespaces: ['shop'] } }] }] }),
    authorizationPolicy('shop', 'l7-allow', { selector: { matchLabels: { app: 'server' } }, action: 'ALLOW', rules: [{ to: [{ operation: { methods: ['GET'] } }] }] }),
    authorizationPolicy('shop', 'l7-deny', { action: 'DENY', rules: [{ to: [{ operation: { methods: ['DELETE'] } }] }] }),
    authorizationPolicy('shop', 'at-waypoint', { targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'waypoint' }], rules: [{ to: [{ operation: { methods: ['GET'] } }] }] }),
    authorizationPolicy('shop', 'nowhere', { targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'nope' }], rules: [{}] }),
  );
  await waitFor('conditions', () => ['l4', 'l7-allow', 'l7-deny', 'at-waypoint', 'nowhere'].every((n) => mesh.api.get('AuthorizationPolicy', 'shop', n)?.status?.conditions?.length));
  const c = (n: string, t: string) => conditions(mesh.api.get('AuthorizationPolicy', 'shop', n), t)!;
  assert.deepEqual([c('l4', 'ZtunnelAccepted').status, c('l4', 'ZtunnelAccepted').reason], ['True', 'Accepted']);
  assert.deepEqual([c('l7-allow', 'ZtunnelAccepted').status, c('l7-allow', 'ZtunnelAccepted').reason], ['False', 'UnsupportedValue']);
  assert.match(c('l7-allow', 'ZtunnelAccepted').message, /drops the whole rule/);
  assert.match(c('l7-deny', 'ZtunnelAccepted').message, /treats them as matching/);
  assert.deepEqual([c('at-waypoint', 'WaypointAccepted').status, c('at-waypoint', 'WaypointAccepted').message], ['True', 'bound to shop/waypoint']);
  assert.deepEqual([c('nowhere', 'WaypointAccepted').status, c('nowhere', 'WaypointAccepted').reason], ['False', 'TargetNotFound']);
});

test('an ingress Gateway (class istio): AddressNotAssigned until its LoadBalancer has an address, then Programmed with it; routes counted per listener', async () => {
  mesh.api.put({
    apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', metadata: { name: 'edge', namespace: 'shop' },
    spec: { gatewayClassName: 'istio', listeners: [{ name: 'web', port: 80, protocol: 'HTTP' }, { name: 'db', port: 5432, protocol: 'TCP' }] },
  });
  mesh.api.put({
    apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: { name: 'web', namespace: 'shop' },
    spec: { parentRefs: [{ name: 'edge', sectionName: 'web' }], rules: [{ backendRefs: [{ name: 'server', port: 80 }] }] },
  });
  const lb: Obj = { ...service('shop', 'edge-istio', { clusterIP: '10.96.0.120', selector: { 'gateway.networking.k8s.io/gateway-name': 'edge' } }) };
  mesh.api.put({ ...lb, spec: { ...lb.spec, type: 'LoadBalancer' }, status: { loadBalancer: {} } });
  await waitFor('the ingress Gateway is Accepted', () => conditions(mesh.api.get('Gateway', 'shop', 'edge'), 'Accepted')?.status === 'True');
  await waitFor('the route is counted', () => mesh.api.get('Gateway', 'shop', 'edge')?.status?.listeners?.[0]?.attachedRoutes === 1);
  let g = mesh.api.get('Gateway', 'shop', 'edge')!;
  assert.deepEqual([conditions(g, 'Programmed')?.status, conditions(g, 'Programmed')?.reason], ['False', 'AddressNotAssigned']);
  assert.match(conditions(g, 'Programmed')!.message, /edge-istio\.shop\.svc\.cluster\.local:80,5432/);
  assert.deepEqual(g.status.addresses, [], 'a pending LoadBalancer has no address: its cluster IP is not the ingress address');
  assert.deepEqual(g.status.listeners.map((l: Obj) => [l.name, l.attachedRoutes, l.supportedKinds.map((k: Obj) => k.kind).join()]), [['web', 1, 'HTTPRoute,GRPCRoute'], ['db', 0, 'TCPRoute']]);
  mesh.api.modify('Service', 'shop', 'edge-istio', (o) => { o.status = { loadBalancer: { ingress: [{ ip: '192.0.2.10' }, { hostname: 'edge.example.com' }] } }; });
  await waitFor('Programmed', () => conditions(mesh.api.get('Gateway', 'shop', 'edge'), 'Programmed')?.status === 'True');
  g = mesh.api.get('Gateway', 'shop', 'edge')!;
  assert.deepEqual(g.status.addresses, [{ type: 'IPAddress', value: '192.0.2.10' }, { type: 'Hostname', value: 'edge.example.com' }]);
  new Gateway(g as ConstructorParameters<typeof Gateway>[0]).validate();
  const r = mesh.api.get('HTTPRoute', 'shop', 'web')!;
  const parent = (r.status?.parents ?? []).find((p: Obj) => p.parentRef.name === 'edge');
  assert.equal(parent?.controllerName, 'istio.io/gateway-controller');
  assert.equal((parent?.conditions as Obj[] | undefined)?.find((c) => c.type === 'Accepted')?.status, 'True');
  new HTTPRoute(r as ConstructorParameters<typeof HTTPRoute>[0]).validate();
});

test('an invalid Gateway API or Istio object gets Accepted=False with the validator\'s words', async () => {
  mesh.api.put(authorizationPolicy('shop', 'typo', { action: 'ALOW' }));
  mesh.api.put({ ...waypointGateway('shop', 'broken'), spec: { gatewayClassName: 'istio-waypoint', listeners: [{ name: 'mesh', port: 99999, protocol: 'HBONE' }] } });
  await waitFor('policy condition', () => conditions(mesh.api.get('AuthorizationPolicy', 'shop', 'typo'), 'Accepted')?.status === 'False');
  assert.match(conditions(mesh.api.get('AuthorizationPolicy', 'shop', 'typo'), 'Accepted')!.message, /spec\.action: "ALOW" is not one of/);
  await waitFor('gateway condition', () => conditions(mesh.api.get('Gateway', 'shop', 'broken'), 'Accepted')?.reason === 'Invalid');
  assert.match(conditions(mesh.api.get('Gateway', 'shop', 'broken'), 'Accepted')!.message, /spec\.listeners\[0\]\.port: 99999 is out of range/);
  mesh.api.modify('AuthorizationPolicy', 'shop', 'typo', (o) => { o.spec.action = 'ALLOW'; });
  await waitFor('fixed', () => conditions(mesh.api.get('AuthorizationPolicy', 'shop', 'typo'), 'Accepted') === undefined && conditions(mesh.api.get('AuthorizationPolicy', 'shop', 'typo'), 'ZtunnelAccepted')?.status === 'True');
});

test('status is patched only when it changes', async () => {
  await new Promise((r) => setTimeout(r, 300));
  const before = statusPatches().length;
  mesh.api.put(pod('shop', 'unrelated', { node: 'node-1', ip: '10.244.1.30' }));
  const version = mesh.cp.store.current().version;
  await waitFor('config changed', () => mesh.cp.store.current().version > version);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(statusPatches().length, before);
});
