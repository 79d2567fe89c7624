// How @kubernetes/client-node's informers (as Ambit wraps them) behave against the API server
// stand-in's wire protocol: bookmarks, 410 Gone (as an ERROR event and as an HTTP answer),
// 429 with Retry-After, 500, and the API server going away.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startKubeMesh, type KubeMesh, type KubeZtunnel } from '../helpers/kube/kube-mesh.js';
import { namespace, pod, service } from '../helpers/kube/objects.js';
import type { RecordedRequest } from '../helpers/kube/apiserver.js';
import { waitFor } from '../helpers/wait.js';

let mesh: KubeMesh;
let z: KubeZtunnel;

before(async () => {
  mesh = await startKubeMesh();
  mesh.api.put(
    namespace('istio-system'), namespace('shop', { 'istio.io/dataplane-mode': 'ambient' }),
    pod('shop', 'a', { node: 'node-1', ip: '10.244.1.10' }), pod('shop', 'b', { node: 'node-1', ip: '10.244.1.11' }),
    pod('shop', 'c', { node: 'node-2', ip: '10.244.2.10' }), service('shop', 'a', { clusterIP: '10.96.0.60' }),
  );
  z = mesh.ztunnel('node-1');
  await waitFor('sync and first push', () => mesh.parts.source.synced() && z.latest() !== undefined, 10_000);
});

after(async () => {
  await mesh?.close();
});

const podPath = '/api/v1/pods';
const podRequests = (from = 0): RecordedRequest[] => mesh.api.requests.slice(from).filter((r) => r.path === podPath);
const isWatch = (r: RecordedRequest) => r.query.watch === 'true' || r.query.watch === '1';
const names = () => z.latest()!.snapshot().workloads.map((w) => w.name).sort();

function cachedPods(): string[] {
  return mesh.parts.informers.list('Pod').map((p) => `${p.metadata.name}@${p.metadata.resourceVersion}`).sort();
}
function serverPods(): string[] {
  return mesh.api.list('Pod').map((p) => `${p.metadata.name}@${p.metadata.resourceVersion}`).sort();
}

test('the watch asks for bookmarks and a server-side timeout; a bookmark moves where the next watch starts', async () => {
  const w = podRequests().filter(isWatch)[0]!;
  assert.equal(w.query.allowWatchBookmarks, 'true');
  const t = Number(w.query.timeoutSeconds);
  assert.ok(t >= 300 && t <= 600, `timeoutSeconds ${t}`);
  // Changes elsewhere move the server's resourceVersion; the pod watch sees only a bookmark.
  mesh.api.put(namespace('elsewhere'));
  const bookmarkRv = mesh.api.currentResourceVersion();
  mesh.api.bookmarkAll();
  await new Promise((r) => setTimeout(r, 50));
  const from = mesh.api.requests.length;
  mesh.api.dropWatches();
  await waitFor('rewatch', () => podRequests(from).some(isWatch));
  const rewatch = podRequests(from).find(isWatch)!;
  assert.equal(rewatch.query.resourceVersion, bookmarkRv, 'the next watch starts at the bookmark');
  assert.equal(podRequests(from).filter((r) => !isWatch(r)).length, 0, 'no relist');
});

test('an ERROR event with a 410 Status makes the informer relist; the relist loses and duplicates nothing', async () => {
  await waitFor('pods watched', () => mesh.api.watcherCount(/^\/pods$/) === 1);
  const from = mesh.api.requests.length;
  const updates: string[] = [];
  const onChange = mesh.parts.source.onChange.bind(mesh.parts.source);
  let changes = 0;
  mesh.parts.source.onChange = (k) => { changes++; onChange(k); };
  const pushedBefore = z.states.length;
  mesh.api.expireWatches();
  // While the informers are between watches: one pod deleted, one changed, one added.
  mesh.api.remove('Pod', 'shop', 'b');
  mesh.api.modify('Pod', 'shop', 'c', (o) => { o.metadata.labels = { app: 'c2' }; });
  mesh.api.put(pod('shop', 'd', { node: 'node-1', ip: '10.244.1.12' }));
  await waitFor('relist', () => podRequests(from).some((r) => !isWatch(r)));
  await waitFor('cache equals the server', () => JSON.stringify(cachedPods()) === JSON.stringify(serverPods()));
  await waitFor('ztunnel sees exactly the server\'s pods', () => names().join() === 'a,c,d');
  mesh.parts.source.onChange = onChange;
  void updates;
  // Three changes, each reported once (a, unchanged, is not reported again).
  assert.ok(changes >= 3 && changes <= 6, `changes ${changes}`);
  assert.ok(z.states.length > pushedBefore);
  assert.deepEqual(z.latest()!.snapshot().workloads.filter((w) => w.name === 'a').length, 1);
});

test('an HTTP 410 answer to a watch also relists', async () => {
  const from = mesh.api.requests.length;
  mesh.api.failNext(410, 1, { path: /^\/api\/v1\/pods$/, watch: true });
  mesh.api.dropWatches();
  await waitFor('relist after HTTP 410', () => podRequests(from).some((r) => !isWatch(r) && r.status === 200));
  assert.equal(podRequests(from)[0]!.status, 410);
});

test('a 429 on the list is retried no sooner than its Retry-After; the others keep serving', async () => {
  await waitFor('pods watched', () => mesh.api.watcherCount(/^\/pods$/) === 1);
  const from = mesh.api.requests.length;
  mesh.api.failNext(429, 1, { path: /^\/api\/v1\/pods$/, retryAfterS: 1, watch: false });
  mesh.api.expireWatches();
  await waitFor('list after 429', () => podRequests(from).some((r) => !isWatch(r) && r.status === 200), 10_000);
  const [refused, retried] = podRequests(from).filter((r) => !isWatch(r));
  assert.equal(refused!.status, 429);
  assert.ok(retried!.atMs - refused!.atMs >= 950, `retried after ${retried!.atMs - refused!.atMs} ms`);
  assert.ok(mesh.cpLogs.some((l) => l.msg === 'kubernetes list/watch failed; the last good objects keep serving' && l.code === 429));
});

test('a 500 on a watch is retried with back-off from the last resourceVersion, without a relist', async () => {
  await waitFor('pods watched', () => mesh.api.watcherCount(/^\/pods$/) === 1);
  const from = mesh.api.requests.length;
  const rv = mesh.parts.informers.list('Pod').length ? mesh.api.currentResourceVersion() : '';
  mesh.api.failNext(500, 2, { path: /^\/api\/v1\/pods$/, watch: true });
  mesh.api.dropWatches();
  await waitFor('watch after two 500s', () => podRequests(from).filter(isWatch).some((r) => r.status === 200), 10_000);
  const reqs = podRequests(from);
  assert.deepEqual(reqs.map((r) => `${isWatch(r) ? 'watch' : 'list'} ${r.status}`), ['watch 500', 'watch 500', 'watch 200']);
  assert.ok(reqs.every((r) => Number(r.query.resourceVersion) > 0 && Number(r.query.resourceVersion) <= Number(rv)));
  assert.ok(reqs[2]!.atMs - reqs[1]!.atMs >= reqs[1]!.atMs - reqs[0]!.atMs - 30, 'back-off does not shrink');
});

test('the API server going away keeps the last good config; coming back resumes the watch', async () => {
  const version = mesh.cp.store.current().version;
  const before = names();
  await mesh.api.stop();
  await waitFor('failures logged', () => mesh.cpLogs.filter((l) => l.msg === 'kubernetes list/watch failed; the last good objects keep serving').length > 5);
  assert.equal(mesh.cp.store.current().version, version);
  assert.deepEqual(names(), before);
  assert.equal(mesh.parts.informers.list('Pod').length, 3);
  await mesh.api.restart();
  mesh.api.put(pod('shop', 'e', { node: 'node-1', ip: '10.244.1.13' }));
  await waitFor('change after the API came back', () => names().includes('e'), 10_000);
  assert.deepEqual(names(), [...before, 'e'].sort());
});
