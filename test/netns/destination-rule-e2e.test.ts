// DestinationRule traffic policies applied by a waypoint on the local cluster, with unmodified
// clients (curl, python3 http.client) and servers (ambit app echo, python3 http.server):
// outlier detection ejects a backend answering 500s; circuit breakers overflow with 503 and
// response flag UO; a consistent hash keeps one client on one endpoint; subsets with a
// VirtualService split 50/50 over 1,000 requests; GRPCRoute by service/method and TCPRoute to
// two backends at the waypoint.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { waitFor } from '../helpers/wait.js';
import { yaml } from '../helpers/config.js';

const LOAD = resolve('test/fixtures/http-load.py');
const STATUS = resolve('test/fixtures/http-status.py');
const HELLO = resolve('test/fixtures/tcp-hello.py');
let cluster: TestCluster;

function deployment(name: string, labels: string, replicas: number, command: string): string {
  return yaml`
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: ${name}, namespace: dr}
    spec:
      replicas: ${replicas}
      selector: {matchLabels: ${labels}}
      template:
        metadata: {labels: ${labels}}
        spec: {securityContext: {runAsUser: 0}, containers: [{name: main, command: ${command}}]}
  `;
}

function service(name: string, selector: string, port = 80, target = 8080): string {
  return yaml`
    apiVersion: v1
    kind: Service
    metadata: {name: ${name}, namespace: dr}
    spec: {selector: ${selector}, ports: [{name: p, port: ${port}, targetPort: ${target}}]}
  `;
}

const ECHO = '[ambit, app, echo, --port, "8080"]';

before(() => {
  const mesh = [
    yaml`
      apiVersion: v1
      kind: Namespace
      metadata: {name: dr, labels: {istio.io/dataplane-mode: ambient, istio.io/use-waypoint: waypoint}}
      ---
      apiVersion: gateway.networking.k8s.io/v1
      kind: Gateway
      metadata: {name: waypoint, namespace: dr}
      spec: {gatewayClassName: istio-waypoint, listeners: [{name: mesh, port: 15008, protocol: HBONE}]}
      ---
      apiVersion: v1
      kind: Pod
      metadata: {name: client, namespace: dr, labels: {app: client}}
      spec: {nodeName: node-1, containers: [{name: main, command: [sleep, infinity]}]}
      ---
      apiVersion: networking.istio.io/v1
      kind: DestinationRule
      metadata: {name: flaky, namespace: dr}
      spec:
        host: flaky.dr.svc.cluster.local
        trafficPolicy:
          loadBalancer: {simple: ROUND_ROBIN}
          outlierDetection: {consecutive5xxErrors: 3, interval: 1s, baseEjectionTime: 60s, maxEjectionPercent: 100}
      ---
      apiVersion: networking.istio.io/v1
      kind: DestinationRule
      metadata: {name: slow, namespace: dr}
      spec:
        host: slow
        trafficPolicy:
          connectionPool: {tcp: {maxConnections: 1}, http: {http1MaxPendingRequests: 1}}
      ---
      apiVersion: networking.istio.io/v1
      kind: DestinationRule
      metadata: {name: sticky, namespace: dr}
      spec:
        host: sticky.dr.svc.cluster.local
        trafficPolicy:
          loadBalancer: {consistentHash: {httpHeaderName: x-user}}
      ---
      apiVersion: networking.istio.io/v1
      kind: DestinationRule
      metadata: {name: split, namespace: dr}
      spec:
        host: split.dr.svc.cluster.local
        subsets:
        - {name: v1, labels: {version: v1}}
        - {name: v2, labels: {version: v2}}
      ---
      apiVersion: networking.istio.io/v1
      kind: VirtualService
      metadata: {name: split, namespace: dr}
      spec:
        hosts: [split.dr.svc.cluster.local]
        http:
        - route:
          - {destination: {host: split.dr.svc.cluster.local, subset: v1}, weight: 50}
          - {destination: {host: split.dr.svc.cluster.local, subset: v2}, weight: 50}
      ---
      apiVersion: gateway.networking.k8s.io/v1
      kind: GRPCRoute
      metadata: {name: rpc, namespace: dr}
      spec:
        parentRefs: [{group: "", kind: Service, name: rpc, port: 80}]
        rules:
        - matches: [{method: {service: shop.Cart, method: Add}}]
          backendRefs: [{name: split-v1, port: 80}]
        - matches: [{method: {service: shop.Orders}}]
          backendRefs: [{name: split-v2, port: 80}]
      ---
      apiVersion: gateway.networking.k8s.io/v1alpha2
      kind: TCPRoute
      metadata: {name: tcp, namespace: dr}
      spec:
        parentRefs: [{group: "", kind: Service, name: hello, port: 9000}]
        rules: [{backendRefs: [{name: hello-a, port: 9000, weight: 1}, {name: hello-b, port: 9000, weight: 1}]}]
    `,
    deployment('good', '{app: flaky, role: good}', 1, ECHO),
    deployment('bad', '{app: flaky, role: bad}', 1, `[python3, ${STATUS}, "8080", "500"]`),
    service('flaky', '{app: flaky}'),
    deployment('slow', '{app: slow}', 1, ECHO),
    service('slow', '{app: slow}'),
    deployment('sticky', '{app: sticky}', 3, ECHO),
    service('sticky', '{app: sticky}'),
    deployment('split-v1', '{app: split, version: v1}', 1, ECHO),
    deployment('split-v2', '{app: split, version: v2}', 1, ECHO),
    service('split', '{app: split}'),
    service('split-v1', '{app: split, version: v1}'),
    service('split-v2', '{app: split, version: v2}'),
    service('rpc', '{app: split}'),
    deployment('hello-a', '{app: hello-a}', 1, `[python3, ${HELLO}, "9000"]`),
    deployment('hello-b', '{app: hello-b}', 1, `[python3, ${HELLO}, "9000"]`),
    service('hello', '{app: hello-a}', 9000, 9000),
    service('hello-a', '{app: hello-a}', 9000, 9000),
    service('hello-b', '{app: hello-b}', 9000, 9000),
  ].join('\n---\n');
  cluster = startCluster(mesh, { name: 'dr' });
});

after(() => {
  const r = cluster?.down();
  if (r && r.code !== 0) console.error(r.stderr);
});

interface Load { requests: number; codes: Record<string, number>; pods: Record<string, number>; errorCount: number; errors: string[] }
function load(host: string, n: number, ...rest: string[]): Load {
  const r = cluster.exec('dr/client', ['python3', LOAD, host, '80', '/', String(n), 'GET', ...rest], 120_000);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Load;
}

async function ready(host: string): Promise<void> {
  let last = '';
  await waitFor(`${host} answers 200 through the waypoint (last: ${last})`, () => {
    const r = cluster.exec('dr/client', ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '3', `http://${host}/`]);
    last = r.stdout;
    return r.stdout === '200';
  }, 60_000);
}

test('outlier detection: the backend answering 500s is ejected after 3 in a row; the success rate recovers', async () => {
  await ready('sticky.dr');
  const l = load('flaky.dr', 40, '--gap', '25');
  assert.equal(l.errorCount, 0, JSON.stringify(l.errors));
  assert.ok((l.codes['500'] ?? 0) <= 3, `at most consecutive5xxErrors 500s: ${JSON.stringify(l)}`);
  assert.ok((l.codes['200'] ?? 0) >= 37, JSON.stringify(l));
  // Ejected for baseEjectionTime (60 s): the next requests all succeed.
  const after = load('flaky.dr', 20);
  assert.deepEqual(after.codes, { 200: 20 }, JSON.stringify(after));
});

test('connection pool overflow (maxConnections 1, http1MaxPendingRequests 1) answers 503 with flag UO', async () => {
  await ready('slow.dr');
  const urls = Array.from({ length: 6 }, () => 'http://slow.dr/delay/1500');
  const r = cluster.exec('dr/client', ['curl', '-s', '--parallel', '--parallel-immediate', '--parallel-max', '6', '--max-time', '10', ...urls.flatMap((u) => ['-o', '/dev/null', '-w', '%{http_code}\\n', u])], 30_000);
  const codes = r.stdout.trim().split('\n');
  assert.ok(codes.filter((c) => c === '503').length >= 3, `overflow: ${codes.join(',')}`);
  assert.ok(codes.filter((c) => c === '200').length >= 2, `one active and one pending succeed: ${codes.join(',')}`);
  let text = '';
  const uo = /istio_requests_total\{[^}]*destination_service="slow\.dr\.svc\.cluster\.local"[^}]*response_flags="UO"[^}]*response_code="503"/;
  await waitFor('waypoint metrics with response_flags="UO"', async () => {
    text = await fetch(`http://${cluster.waypointAdmin(1)}/metrics`).then((x) => x.text(), () => '');
    return uo.test(text);
  }, 10_000);
});

test('consistent hash by header: one user, one endpoint; users spread over endpoints', async () => {
  const alice = load('sticky.dr', 30, 'x-user:alice');
  assert.equal(Object.keys(alice.pods).length, 1, JSON.stringify(alice.pods));
  const seen = new Set<string>();
  for (let u = 0; u < 12; u++) for (const p of Object.keys(load('sticky.dr', 3, `x-user:user-${u}`).pods)) seen.add(p);
  assert.ok(seen.size >= 2, `different users reach different endpoints: ${[...seen].join(',')}`);
  const noKey = load('sticky.dr', 30);
  assert.ok(Object.keys(noKey.pods).length >= 2, `without the header requests spread: ${JSON.stringify(noKey.pods)}`);
});

test('subsets with a VirtualService split 50/50 over 1,000 requests within ±5 %', async () => {
  await ready('split.dr');
  const l = load('split.dr', 1000);
  assert.equal(l.codes['200'], 1000, JSON.stringify(l));
  const v1 = Object.entries(l.pods).filter(([p]) => p.startsWith('split-v1')).reduce((s, [, n]) => s + n, 0);
  assert.ok(v1 >= 450 && v1 <= 550, `v1 got ${v1} of 1000: ${JSON.stringify(l.pods)}`);
});

test('GRPCRoute at the waypoint by service/method; TCPRoute to two backends', async () => {
  const grpc = (path: string) => cluster.exec('dr/client', ['curl', '-s', '--http2-prior-knowledge', '-X', 'POST', '-H', 'content-type: application/grpc', '--data-binary', '', '-D', '-', '-o', '/dev/null', '--max-time', '5', `http://rpc.dr${path}`]).stdout;
  let out = '';
  await waitFor(`shop.Cart/Add -> split-v1 (last: ${out})`, () => { out = grpc('/shop.Cart/Add'); return /x-echo-pod: split-v1/.test(out); }, 20_000);
  assert.match(grpc('/shop.Orders/List'), /x-echo-pod: split-v2/);
  assert.match(grpc('/shop.Cart/Remove'), /^HTTP\/2 404/);
  const seen = new Map<string, number>();
  await waitFor(`TCPRoute answers from both backends (seen: ${[...seen].join(' ')})`, () => {
    const t = cluster.exec('dr/client', ['timeout', '5', 'bash', '-c', 'cat < /dev/tcp/hello.dr/9000'], 8000);
    const name = t.stdout.trim();
    if (name) seen.set(name.replace(/-\d+$/, ''), (seen.get(name.replace(/-\d+$/, '')) ?? 0) + 1);
    return seen.has('hello-a') && seen.has('hello-b');
  }, 30_000);
});
