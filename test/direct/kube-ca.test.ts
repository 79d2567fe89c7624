// Kubernetes identities for the CA and xDS: projected service-account tokens checked with a
// TokenReview (the API server stand-in answers it), the pod binding checked against the Pod.
// A ztunnel gets identities only of pods on its node; a waypoint only its own.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startKubeMesh, type KubeMesh } from '../helpers/kube/kube-mesh.js';
import { namespace, pod } from '../helpers/kube/objects.js';
import { KubeTokenReviewer } from '../../src/kubernetes/token-review.js';
import { kubernetesCallerPolicy } from '../../src/kubernetes/kube-callers.js';
import { loadKubeConfig } from '../../src/kubernetes/kube-client.js';
import { systemClock } from '../../src/core/clock.js';
import { CaClient } from '../../src/xds/ca-client.js';
import { generateKeyAndCsr } from '../../src/identity/csr.js';
import { mustParseSpiffe } from '../../src/identity/spiffe.js';
import { XdsSource } from '../../src/dataplane/xds-source.js';
import { memoryLogger } from '../../src/core/logger.js';
import { waitFor } from '../helpers/wait.js';

let mesh: KubeMesh;
const TD = 'cluster.local';
const id = (ns: string, sa: string) => `spiffe://${TD}/ns/${ns}/sa/${sa}`;
const clients: CaClient[] = [];

function bind(token: string, ns: string, sa: string, podName: string, opts: { audiences?: string[]; expiresAtMs?: number; podUid?: string } = {}): void {
  const p = mesh.api.get('Pod', ns, podName);
  mesh.api.tokens.set(token, {
    username: `system:serviceaccount:${ns}:${sa}`, audiences: opts.audiences ?? ['istio-ca'], expiresAtMs: opts.expiresAtMs,
    groups: ['system:serviceaccounts', `system:serviceaccounts:${ns}`],
    extra: { 'authentication.kubernetes.io/pod-name': [podName], 'authentication.kubernetes.io/pod-uid': [opts.podUid ?? p?.metadata.uid ?? 'none'] },
  });
}

async function ask(token: string, requested?: string): Promise<string> {
  const ca = new CaClient({ address: mesh.xdsAddress, token, tls: mesh.tls, timeoutMs: 3000 });
  clients.push(ca);
  const { csrPem } = await generateKeyAndCsr(mustParseSpiffe(requested ?? id('shop', 'waypoint')));
  const chain = await ca.createCertificate({ csrPem, ttlSeconds: 600, ...(requested ? { impersonatedIdentity: requested } : {}) });
  return chain.join('');
}

before(async () => {
  mesh = await startKubeMesh({
    callers: (api, parts) => kubernetesCallerPolicy({
      reviewer: new KubeTokenReviewer({ kubeConfig: loadKubeConfig({ kubeconfigText: api.kubeconfig() }), clock: systemClock, cacheMs: 0 }),
      informers: { get: (k, ns, n) => parts().informers.get(k, ns, n) },
      ztunnel: { namespace: 'istio-system', serviceAccount: 'ztunnel' }, trustDomain: TD,
    }),
  });
  mesh.api.put(
    namespace('istio-system'), namespace('shop', { 'istio.io/dataplane-mode': 'ambient' }),
    pod('istio-system', 'ztunnel-a', { node: 'node-1', ip: '192.0.2.11', sa: 'ztunnel' }),
    pod('istio-system', 'ztunnel-b', { node: 'node-2', ip: '192.0.2.12', sa: 'ztunnel' }),
    pod('shop', 'client', { node: 'node-1', ip: '10.244.1.5', sa: 'client' }),
    pod('shop', 'server', { node: 'node-2', ip: '10.244.2.7', sa: 'server' }),
    pod('shop', 'waypoint-7f9c', { node: 'node-2', ip: '10.244.2.9', sa: 'waypoint', labels: { 'gateway.networking.k8s.io/gateway-name': 'waypoint' } }),
  );
  await waitFor('sync', () => mesh.parts.source.synced(), 10_000);
  bind('tok-ztunnel-a', 'istio-system', 'ztunnel', 'ztunnel-a');
  bind('tok-waypoint', 'shop', 'waypoint', 'waypoint-7f9c');
});

after(async () => {
  for (const c of clients) c.close();
  await mesh?.close();
});

const refusals = () => mesh.cpLogs.filter((l) => l.msg === 'certificate refused' || l.msg === 'certificate request refused');

test('a ztunnel gets the identity of a pod on its own node', async () => {
  const pem = await ask('tok-ztunnel-a', id('shop', 'client'));
  assert.match(pem, /BEGIN CERTIFICATE/);
});

test('a ztunnel is refused the identity of a pod on another node, and the refusal says who asked for what', async () => {
  await assert.rejects(ask('tok-ztunnel-a', id('shop', 'server')), /PERMISSION_DENIED.*node node-1 runs no workload with identity spiffe:\/\/cluster\.local\/ns\/shop\/sa\/server/);
  const l = refusals().find((x) => String(x.reason).includes('ns/shop/sa/server'))!;
  assert.equal(l.credential, id('istio-system', 'ztunnel'));
  assert.equal(l.caller, 'node-1');
  assert.equal(l.requested, id('shop', 'server'));
  assert.match(String(l.reason), /istio-system\/ztunnel \(pod istio-system\/ztunnel-a on node node-1\)/);
});

test('a waypoint gets its own identity and is refused another', async () => {
  assert.match(await ask('tok-waypoint'), /BEGIN CERTIFICATE/);
  assert.match(await ask('tok-waypoint', id('shop', 'waypoint')), /BEGIN CERTIFICATE/);
  await assert.rejects(ask('tok-waypoint', id('shop', 'client')), /PERMISSION_DENIED.*may obtain only its own identity/);
});

test('bad, expired, wrong-audience and unbound tokens are refused', async () => {
  await assert.rejects(ask('no-such-token', id('shop', 'client')), /UNAUTHENTICATED.*invalid bearer token/);
  bind('tok-expired', 'istio-system', 'ztunnel', 'ztunnel-a', { expiresAtMs: Date.now() - 1000 });
  await assert.rejects(ask('tok-expired', id('shop', 'client')), /UNAUTHENTICATED.*expired/);
  bind('tok-audience', 'istio-system', 'ztunnel', 'ztunnel-a', { audiences: ['https://kubernetes.default.svc'] });
  await assert.rejects(ask('tok-audience', id('shop', 'client')), /UNAUTHENTICATED.*audiences/);
  mesh.api.tokens.set('tok-unbound', { username: 'system:serviceaccount:istio-system:ztunnel', audiences: ['istio-ca'] });
  await assert.rejects(ask('tok-unbound', id('shop', 'client')), /UNAUTHENTICATED.*not bound to a pod/);
  mesh.api.tokens.set('tok-user', { username: 'alice', audiences: ['istio-ca'] });
  await assert.rejects(ask('tok-user', id('shop', 'client')), /UNAUTHENTICATED.*not a service account/);
});

test('a token bound to a pod that was replaced (same name, new uid) is refused', async () => {
  bind('tok-stale', 'istio-system', 'ztunnel', 'ztunnel-a', { podUid: 'uid-of-the-old-pod' });
  await assert.rejects(ask('tok-stale', id('shop', 'client')), /UNAUTHENTICATED.*does not exist/);
});

test('xDS: a ztunnel token serves its own node id, and is refused another node\'s', async () => {
  const { logger } = memoryLogger();
  const states: unknown[] = [];
  const ok = new XdsSource({ address: mesh.xdsAddress, node: 'node-1', token: 'tok-ztunnel-a', tls: mesh.tls, logger, onState: (s) => states.push(s) });
  ok.start();
  await waitFor('xDS state for node-1', () => states.length > 0);
  ok.close();
  const events: string[] = [];
  const bad = new XdsSource({ address: mesh.xdsAddress, node: 'node-2', token: 'tok-ztunnel-a', tls: mesh.tls, logger, onState: () => events.push('state'), onConnection: (e) => events.push(`${e.state}:${e.error?.message ?? ''}`) });
  bad.start();
  await waitFor('node id mismatch refused', () => events.some((e) => /does not match the authenticated node 'node-1'/.test(e)));
  bad.close();
  assert.ok(!events.includes('state'));
});
