// The node agent's Kubernetes pod source against the API server stand-in: Pods of its node
// (field selector spec.nodeName) and Namespaces through the shared informers; what the agent
// decides from it is what it decides from the control plane's admin API for the same pods.
// Real parts: the client library over HTTPS, a real control plane reading the same stand-in,
// real node agents on unix sockets answering CNI requests as ambit-cni sends them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { memoryLogger } from '../../src/core/logger.js';
import { systemClock } from '../../src/core/clock.js';
import { encodeRequest, parseResponse } from '../../src/cni/plugin-wire.js';
import { loadKubeConfig } from '../../src/kubernetes/kube-client.js';
import { agentPod, KubePodSource } from '../../src/kubernetes/kube-pod-source.js';
import { NodeAgent } from '../../src/nodeagent/node-agent.js';
import { AdminPodSource, wantsCapture, type PodView } from '../../src/nodeagent/pod-source.js';
import type { KubeObject } from '../../src/kubernetes/kube-object.js';
import { KubeApiServer } from '../helpers/kube/apiserver.js';
import { startKubeMesh, type KubeMesh } from '../helpers/kube/kube-mesh.js';
import { namespace, pod } from '../helpers/kube/objects.js';
import { waitFor } from '../helpers/wait.js';

const ANN = 'ambient.istio.io/redirection';

let api: KubeApiServer;
let source: KubePodSource;
const views: PodView[] = [];
const { logger, lines } = memoryLogger({ component: 'node-agent', level: 'debug' });
const latest = () => views[views.length - 1]!;
const keys = (v: PodView | undefined = latest()) => [...(v?.pods.keys() ?? [])].sort();

before(async () => {
  api = new KubeApiServer();
  await api.start();
  api.put(
    namespace('shop', { 'istio.io/dataplane-mode': 'ambient' }), namespace('plain'),
    pod('shop', 'a', { node: 'node-1', ip: '10.254.1.10', sa: 'shop-a', labels: { app: 'a', version: 'v1' } }),
    pod('shop', 'b', { node: 'node-2', ip: '10.254.2.10' }),
    pod('shop', 'pending', { node: 'node-1' }),
    pod('shop', 'unscheduled', {}),
    pod('shop', 'done', { node: 'node-1', ip: '10.254.1.11', phase: 'Succeeded' }),
    pod('shop', 'host', { node: 'node-1', ip: '192.0.2.1', hostNetwork: true }),
    pod('plain', 'web', { node: 'node-1', ip: '10.254.1.12' }),
  );
  source = new KubePodSource({
    kubeConfig: loadKubeConfig({ kubeconfigText: api.kubeconfig() }), node: 'node-1', logger, clock: systemClock,
    backoff: { initialMs: 50, maxMs: 400 }, debounceMs: 10,
  });
  source.start(async (v) => { views.push(v); });
  await waitFor('first view', () => views.length > 0, 10_000);
});

after(async () => {
  source?.close();
  await api?.stop();
});

test('first view: this node\'s pods (an IP-less one included), with the fields the agent reads; the watch is by field selector, with bookmarks', async () => {
  assert.equal(views.length, 1, 'one view for the whole initial list');
  assert.deepEqual(keys(), ['plain/web', 'shop/a', 'shop/pending']);
  assert.deepEqual(latest().pods.get('shop/a'), {
    uid: 'Kubernetes//Pod/shop/a', namespace: 'shop', name: 'a', node: 'node-1', ip: '10.254.1.10', serviceAccount: 'shop-a',
    labels: { app: 'a', version: 'v1' }, annotations: {}, waypointOf: null,
  });
  assert.equal(latest().pods.get('shop/pending')!.ip, '', 'no IP yet: CNI ADD gives it');
  assert.deepEqual(latest().namespaceLabels.get('shop'), { 'kubernetes.io/metadata.name': 'shop', 'istio.io/dataplane-mode': 'ambient' });
  const isWatch = (r: { query: Record<string, string> }) => r.query.watch === 'true' || r.query.watch === '1';
  await waitFor('pods and namespaces watched', () => api.requests.some((r) => r.path === '/api/v1/pods' && isWatch(r)) && api.requests.some((r) => r.path === '/api/v1/namespaces' && isWatch(r)));
  const podReqs = api.requests.filter((r) => r.path === '/api/v1/pods');
  for (const r of podReqs) assert.equal(r.query.fieldSelector, 'spec.nodeName=node-1', 'only this node\'s pods cross the wire');
  assert.deepEqual(podReqs.map((r) => (isWatch(r) ? 'watch' : 'list')), ['list', 'watch']);
  assert.equal(podReqs[1]!.query.allowWatchBookmarks, 'true');
});

test('pods left out, and why (table)', () => {
  const o = (p: Record<string, unknown>) => ({ ...(p as unknown as KubeObject), metadata: { name: 'x', namespace: 'n' } });
  const cases: [string, Record<string, unknown>, string | undefined][] = [
    ['another node', { spec: { nodeName: 'node-2' }, status: { podIP: '10.0.0.1' } }, 'on node node-2'],
    ['unscheduled', { spec: {}, status: {} }, 'on node (none)'],
    ['succeeded', { spec: { nodeName: 'node-1' }, status: { podIP: '10.0.0.1', phase: 'Succeeded' } }, 'terminal (Succeeded)'],
    ['failed', { spec: { nodeName: 'node-1' }, status: { phase: 'Failed' } }, 'terminal (Failed)'],
    ['host network', { spec: { nodeName: 'node-1', hostNetwork: true }, status: { podIP: '192.0.2.1' } }, 'host network'],
    ['pending without IP', { spec: { nodeName: 'node-1' }, status: { phase: 'Pending' } }, undefined],
    ['podIPs only', { spec: { nodeName: 'node-1' }, status: { podIPs: [{ ip: '10.0.0.9' }] } }, undefined],
  ];
  for (const [what, p, skip] of cases) {
    const r = agentPod(o(p), 'node-1', 'Kubernetes');
    assert.equal('skip' in r ? r.skip : undefined, skip, what);
  }
  const r = agentPod(o({ spec: { nodeName: 'node-1' }, status: { podIPs: [{ ip: '10.0.0.9' }] } }), 'node-1', 'east');
  assert.ok(!('skip' in r) && r.ip === '10.0.0.9' && r.uid === 'east//Pod/n/x' && r.serviceAccount === 'default');
});

test('pods added, changed and deleted on this node reach the agent; another node\'s do not; status churn does not', async () => {
  let n = views.length;
  api.put(pod('shop', 'c', { node: 'node-1', ip: '10.254.1.13' }));
  await waitFor('added', () => latest().pods.has('shop/c'));
  assert.equal(views.length, n + 1);
  n = views.length;
  api.put(pod('shop', 'far', { node: 'node-2', ip: '10.254.2.11' }));
  api.modify('Pod', 'shop', 'b', (o) => { o.metadata.labels = { app: 'b2' }; });
  api.modify('Pod', 'shop', 'a', (o) => { o.status.conditions = [{ type: 'Ready', status: 'False' }]; });
  api.put(pod('shop', 'marker', { node: 'node-1', ip: '10.254.1.14' }));
  await waitFor('marker', () => latest().pods.has('shop/marker'));
  assert.equal(views.length, n + 1, 'only the marker made a view: another node\'s pods and readiness churn did not');
  assert.equal(api.requests.filter((r) => r.path === '/api/v1/pods' && r.query.watch && !r.query.fieldSelector).length, 0);

  api.modify('Pod', 'shop', 'c', (o) => { o.metadata.labels = { app: 'c', 'istio.io/dataplane-mode': 'none' }; });
  await waitFor('relabelled', () => latest().pods.get('shop/c')!.labels['istio.io/dataplane-mode'] === 'none');
  assert.equal(wantsCapture(latest(), latest().pods.get('shop/c')!), false, 'opted out by its own label');
  api.modify('Pod', 'shop', 'pending', (o) => { o.status = { phase: 'Running', podIP: '10.254.1.15', podIPs: [{ ip: '10.254.1.15' }] }; });
  await waitFor('got its IP', () => latest().pods.get('shop/pending')?.ip === '10.254.1.15');
  api.modify('Pod', 'shop', 'marker', (o) => { o.status.phase = 'Succeeded'; });
  await waitFor('finished pod leaves', () => !latest().pods.has('shop/marker'));
  api.remove('Pod', 'shop', 'c');
  await waitFor('deleted', () => !latest().pods.has('shop/c'));
  assert.deepEqual(keys(), ['plain/web', 'shop/a', 'shop/pending']);
  const versions = views.map((v) => v.version);
  assert.deepEqual(versions, [...versions].sort((x, y) => x - y), 'versions only move forward');
});

test('namespace labels enrol and un-enrol the pods in it', async () => {
  const web = () => latest().pods.get('plain/web')!;
  assert.equal(wantsCapture(latest(), web()), false);
  api.modify('Namespace', undefined, 'plain', (o) => { o.metadata.labels['istio.io/dataplane-mode'] = 'ambient'; });
  await waitFor('enrolled', () => wantsCapture(latest(), web()));
  api.modify('Namespace', undefined, 'plain', (o) => { delete o.metadata.labels['istio.io/dataplane-mode']; });
  await waitFor('un-enrolled', () => !wantsCapture(latest(), web()));
});

test('410 Gone: the relist loses and duplicates nothing, and still asks for this node only', async () => {
  await waitFor('pods watched', () => api.watcherCount(/^\/pods$/) === 1);
  const from = api.requests.length;
  api.expireWatches();
  // While the informer is between watches: one pod deleted, one changed, one added, one elsewhere.
  api.remove('Pod', 'plain', 'web');
  api.modify('Pod', 'shop', 'a', (o) => { o.metadata.labels = { app: 'a', version: 'v2' }; });
  api.put(pod('shop', 'd', { node: 'node-1', ip: '10.254.1.16' }), pod('shop', 'e', { node: 'node-2', ip: '10.254.2.12' }));
  await waitFor('relist', () => api.requests.slice(from).some((r) => r.path === '/api/v1/pods' && !r.query.watch && r.status === 200), 10_000);
  await waitFor('view equals the server', () => keys().join() === 'shop/a,shop/d,shop/pending' && latest().pods.get('shop/a')!.labels.version === 'v2', 10_000);
  const serverSide = api.list('Pod').filter((p) => p.spec.nodeName === 'node-1' && p.status.phase !== 'Succeeded' && !p.spec.hostNetwork).map((p) => `${p.metadata.namespace}/${p.metadata.name}`).sort();
  assert.deepEqual(keys(), serverSide);
  const relist = api.requests.slice(from).find((r) => r.path === '/api/v1/pods' && !r.query.watch)!;
  assert.equal(relist.query.fieldSelector, 'spec.nodeName=node-1');
  assert.ok(lines.some((l) => l.msg === 'watch ended by the API server' && l.code === 410));
});

test('the redirection annotation is a merge patch of the pod; removing it from a deleted pod is no error', async () => {
  const a = latest().pods.get('shop/a')!;
  await source.setRedirection(a, true);
  assert.equal(api.get('Pod', 'shop', 'a')!.metadata.annotations[ANN], 'enabled');
  const patch = api.requests.filter((r) => r.method === 'PATCH').at(-1)!;
  assert.equal(patch.path, '/api/v1/namespaces/shop/pods/a');
  assert.equal(patch.contentType, 'application/merge-patch+json');
  assert.deepEqual(patch.body, { metadata: { annotations: { [ANN]: 'enabled' } } });
  await waitFor('the view shows it', () => latest().pods.get('shop/a')!.annotations[ANN] === 'enabled');
  await source.setRedirection(a, false);
  assert.equal(api.get('Pod', 'shop', 'a')!.metadata.annotations?.[ANN], undefined);
  await waitFor('the view shows it gone', () => latest().pods.get('shop/a')!.annotations[ANN] === undefined);
  const gone = { ...a, name: 'no-such-pod' };
  await source.setRedirection(gone, false);
  await assert.rejects(source.setRedirection(gone, true), (e: { code?: string }) => e.code === 'AMBIT_ERR_KUBERNETES');
});

test('the API server going away keeps the last view; refresh answers from it; coming back resumes', async () => {
  const before = keys();
  const n = views.length;
  await api.stop();
  await waitFor('failures logged', () => lines.filter((l) => l.msg === 'kubernetes list/watch failed; the last good objects keep serving').length >= 2, 10_000);
  assert.deepEqual(keys((await source.refresh())), before);
  assert.equal(views.length, n);
  await api.restart();
  api.put(pod('shop', 'back', { node: 'node-1', ip: '10.254.1.17' }));
  await waitFor('change after the API came back', () => latest().pods.has('shop/back'), 10_000);
});

test('refresh before the first list waits for it, and rejects with a hint when it never comes', async () => {
  const down = new KubeApiServer();
  await down.start();
  const kubeconfig = down.kubeconfig();
  await down.stop();
  const s = new KubePodSource({ kubeConfig: loadKubeConfig({ kubeconfigText: kubeconfig }), node: 'node-1', logger, clock: systemClock, backoff: { initialMs: 50, maxMs: 100 }, syncTimeoutMs: 300 });
  s.start(async () => undefined);
  try {
    await assert.rejects(s.refresh(), (e: { code?: string; hint?: string }) => e.code === 'AMBIT_ERR_KUBERNETES' && /list and watch pods/.test(e.hint ?? ''));
    assert.equal(s.current(), undefined);
  } finally {
    s.close();
  }
  // With the API up, refresh() waits for the first lists instead of rejecting.
  const s2 = new KubePodSource({ kubeConfig: loadKubeConfig({ kubeconfigText: api.kubeconfig() }), node: 'node-1', logger, clock: systemClock, debounceMs: 10 });
  s2.start(async () => undefined);
  try {
    const v = await s2.refresh();
    assert.deepEqual(keys(v), keys());
  } finally {
    s2.close();
  }
});

// ---- the agent's decisions: Kubernetes source vs the control plane's admin API ----

async function cniCall(socket: string, env: Record<string, string>, stdin: string): Promise<{ exitCode: number; stdout: string }> {
  const c = net.connect(socket);
  const chunks: Buffer[] = [];
  c.on('data', (d: Buffer) => chunks.push(d));
  c.end(encodeRequest({ env, stdin }));
  await new Promise<void>((resolve, reject) => { c.on('close', () => resolve()); c.on('error', reject); });
  return parseResponse(Buffer.concat(chunks))!;
}

test('the agent decides the same from the Kubernetes source as from the admin API, for the same pods', async () => {
  const mesh: KubeMesh = await startKubeMesh({ api: new KubeApiServer() });
  const dir = mkdtempSync(join(tmpdir(), 'ambit-nak-'));
  const agents: NodeAgent[] = [];
  try {
    mesh.api.put(
      namespace('istio-system'), namespace('shop', { 'istio.io/dataplane-mode': 'ambient' }), namespace('plain'), namespace('kube-system', { 'istio.io/dataplane-mode': 'ambient' }),
      pod('shop', 'client', { node: 'node-1', ip: '10.254.1.5', sa: 'client' }),
      pod('shop', 'optout', { node: 'node-1', ip: '10.254.1.6', labels: { app: 'o', 'istio.io/dataplane-mode': 'none' } }),
      pod('plain', 'web', { node: 'node-1', ip: '10.254.1.7' }),
      pod('plain', 'opted-in', { node: 'node-1', ip: '10.254.1.8', labels: { app: 'i', 'istio.io/dataplane-mode': 'ambient' } }),
      pod('kube-system', 'dns', { node: 'node-1', ip: '10.254.1.9' }),
      pod('shop', 'remote', { node: 'node-2', ip: '10.254.2.5' }),
      pod('shop', 'done', { node: 'node-1', ip: '10.254.1.10', phase: 'Failed' }),
      pod('shop', 'pending', { node: 'node-1' }),
    );
    const kube = new KubePodSource({ kubeConfig: loadKubeConfig({ kubeconfigText: mesh.api.kubeconfig() }), node: 'node-1', logger, clock: systemClock, debounceMs: 10 });
    const admin = new AdminPodSource({ url: mesh.adminUrl, token: () => mesh.adminToken, node: 'node-1', clock: systemClock, logger, intervalMs: 50 });
    // Pods are never found by scanning here (the node namespace does not exist): only CNI ADDs.
    const common = { node: 'node-1', nodeNetns: join(dir, 'no-node-netns'), clock: systemClock, logger, dnsCapture: false };
    const byAdmin = new NodeAgent({ ...common, dir: join(dir, 'admin'), podSource: admin });
    const byKube = new NodeAgent({ ...common, dir: join(dir, 'kube'), podSource: kube });
    agents.push(byAdmin, byKube);
    await byAdmin.start();
    await byKube.start();
    await waitFor('both sources have a view', () => !!admin.current()?.pods.has('shop/client') && !!kube.current()?.pods.has('shop/client'), 10_000);

    // The views agree on every pod the control plane counts.
    const a = admin.current()!;
    const k = kube.current()!;
    assert.deepEqual([...k.pods.keys()].filter((x) => x !== 'shop/pending').sort(), [...a.pods.keys()].sort());
    for (const [key, p] of a.pods) {
      const q = k.pods.get(key)!;
      assert.deepEqual({ ...q, waypointOf: null }, { ...p, waypointOf: null }, key);
      assert.equal(wantsCapture(k, q), wantsCapture(a, p), key);
    }

    const prev = { cniVersion: '1.0.0', interfaces: [{ name: 'eth0' }], ips: [{ interface: 0, address: '10.254.1.20/24' }] };
    const decide = async (agent: NodeAgent, ns: string, name: string) => {
      const r = await cniCall(agent.paths.cniSocket, {
        CNI_COMMAND: 'ADD', CNI_CONTAINERID: `cid-${ns}-${name}`, CNI_NETNS: join(dir, 'no-such-netns', name), CNI_IFNAME: 'eth0',
        CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${ns};K8S_POD_NAME=${name}`, CNI_PATH: '/opt/cni/bin',
      }, JSON.stringify({ cniVersion: '1.0.0', name: 'k8s', type: 'ambit-cni', prevResult: prev }));
      if (r.exitCode === 0) return 'pass through';
      const e = JSON.parse(r.stdout) as { code: number; msg: string };
      // Capturing needs the pod's network namespace, which does not exist here: an attempt shows the decision.
      return /could not be captured/.test(e.msg) ? 'capture' : /not known/.test(e.msg) ? `unknown (${e.code})` : `error ${e.code}: ${e.msg}`;
    };
    const table: [string, string, string][] = [
      ['shop', 'client', 'capture'],
      ['shop', 'optout', 'pass through'],
      ['plain', 'web', 'pass through'],
      ['plain', 'opted-in', 'capture'],
      ['kube-system', 'dns', 'pass through'],
      ['shop', 'remote', 'unknown (11)'],
      ['shop', 'done', 'unknown (11)'],
    ];
    for (const [ns, name, want] of table) {
      assert.equal(await decide(byAdmin, ns, name), want, `admin API source: ${ns}/${name}`);
      assert.equal(await decide(byKube, ns, name), want, `Kubernetes source: ${ns}/${name}`);
    }
    // A pod whose sandbox is being made has no IP in the API yet: the control plane does not
    // count it, so the admin API source cannot answer its ADD; the Kubernetes source can.
    assert.equal(await decide(byAdmin, 'shop', 'pending'), 'unknown (11)');
    assert.equal(await decide(byKube, 'shop', 'pending'), 'capture');

    // A namespace label flip reaches both, and both decide alike again.
    mesh.api.modify('Namespace', undefined, 'plain', (o) => { o.metadata.labels['istio.io/dataplane-mode'] = 'ambient'; });
    await waitFor('both see plain enrolled', () => [admin, kube].every((s) => s.current()!.namespaceLabels.get('plain')?.['istio.io/dataplane-mode'] === 'ambient'), 10_000);
    assert.equal(await decide(byAdmin, 'plain', 'web'), 'capture');
    assert.equal(await decide(byKube, 'plain', 'web'), 'capture');
    // No capture happened anywhere, so nothing was annotated.
    assert.equal(mesh.api.requests.filter((r) => r.method === 'PATCH' && r.path.includes('/pods/')).length, 0);
  } finally {
    for (const g of agents) await g.close();
    await mesh.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
