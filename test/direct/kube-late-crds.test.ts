// CRDs installed after the control plane started: the Gateway API kinds are not served at
// start (not watched, reported), then the stand-in starts serving them, as installing their
// CRDs does; the control plane finds them at its next discovery and serves them, no restart.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { KubeApiServer } from '../helpers/kube/apiserver.js';
import { startKubeMesh, type KubeMesh } from '../helpers/kube/kube-mesh.js';
import { namespace, pod, service, waypointGateway } from '../helpers/kube/objects.js';
import { DEFAULT_RESOURCES } from '../helpers/kube/resources.js';
import { waitFor } from '../helpers/wait.js';

const GATEWAY_API = 'gateway.networking.k8s.io';
let mesh: KubeMesh | undefined;

after(async () => {
  await mesh?.close();
});

test('Gateway API CRDs installed after start are watched from the next discovery; a waypoint then binds without a restart', async () => {
  const api = new KubeApiServer(DEFAULT_RESOURCES.filter((t) => t.group !== GATEWAY_API));
  await api.start();
  mesh = await startKubeMesh({ api, rediscoverMs: 100 });
  api.put(
    namespace('istio-system'), namespace('shop', { 'istio.io/dataplane-mode': 'ambient', 'istio.io/use-waypoint': 'waypoint' }),
    pod('shop', 'server', { node: 'node-2', ip: '10.244.2.7', sa: 'server' }),
    service('shop', 'server', { clusterIP: '10.96.0.50' }),
  );
  const z = mesh.ztunnel('node-1');
  await waitFor('first push', () => z.latest()?.serviceByVip('10.96.0.50') !== undefined, 10_000);
  assert.equal(mesh.parts.informers.watching('Gateway'), false);
  assert.ok(mesh.parts.informers.notServed().some((k) => k.startsWith('Gateway ')), mesh.parts.informers.notServed().join());
  assert.equal(z.latest()!.serviceByVip('10.96.0.50')!.waypoint, undefined, 'no waypoint while its Gateway cannot be read');

  api.installTypes(...DEFAULT_RESOURCES.filter((t) => t.group === GATEWAY_API));
  api.put(waypointGateway('shop', 'waypoint'), service('shop', 'waypoint', { clusterIP: '10.96.0.99', port: 15008, targetPort: 15008, selector: { 'gateway.networking.k8s.io/gateway-name': 'waypoint' } }));
  await waitFor('the Gateway kind is watched', () => mesh!.parts.informers.watching('Gateway'), 5_000);
  await waitFor('the service is bound to its waypoint', () => z.latest()?.serviceByVip('10.96.0.50')?.waypoint !== undefined, 5_000);
  assert.ok(!mesh.parts.informers.notServed().some((k) => k.startsWith('Gateway ')));
  assert.ok(mesh.cpLogs.some((l) => l.msg === 'a kind is now served: watching it' && l.kind === 'Gateway'));
});
