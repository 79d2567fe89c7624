// Ingress end to end on the local cluster: an ingress gateway (a Gateway of class istio) seen
// from the "outside" host (a namespace on the underlay, not in the mesh, no route to the
// host's networks) with unmodified curl and bash. HTTP and HTTPS with two hostnames and two
// certificates chosen by SNI (one from another namespace through a ReferenceGrant); the
// gateway's own identity reaching a destination whose L4 policy admits only it; a
// cross-namespace backend refused without a ReferenceGrant and served once one is applied; a
// Service reached through its waypoint (istio.io/ingress-use-waypoint) whose L7 policy denies
// a path; GRPCRoute by service/method over h2c; TCPRoute to two backends; request telemetry
// with reporter="source" at the gateway.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { waitFor } from '../helpers/wait.js';
import { yaml } from '../helpers/config.js';
import { b64, issueCert, makeTestCa } from '../helpers/tls-certs.js';

const HELLO = resolve('test/fixtures/tcp-hello.py');
let cluster: TestCluster;
let dir: string;
let gatewayIp = '';

function echo(ns: string, name: string, app: string): string {
  return yaml`
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: ${name}, namespace: ${ns}}
    spec:
      replicas: 1
      selector: {matchLabels: {app: ${app}}}
      template:
        metadata: {labels: {app: ${app}}}
        spec: {serviceAccountName: ${app}, containers: [{name: echo, command: [ambit, app, echo, --port, "8080"]}]}
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: ${name}, namespace: ${ns}}
    spec: {selector: {app: ${app}}, ports: [{name: http, port: 80, targetPort: 8080}]}
  `;
}

function hello(name: string): string {
  return yaml`
    apiVersion: v1
    kind: Pod
    metadata: {name: ${name}, namespace: web, labels: {app: ${name}}}
    spec: {securityContext: {runAsUser: 0}, containers: [{name: hello, command: [python3, ${HELLO}, "9000"]}]}
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: ${name}, namespace: web}
    spec: {selector: {app: ${name}}, ports: [{name: tcp, port: 9000, targetPort: 9000}]}
  `;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ambit-ingress-'));
  const ca = await makeTestCa('Ingress Test CA');
  const shop = await issueCert(ca, { commonName: 'shop.example.com', dnsNames: ['shop.example.com'] });
  const blog = await issueCert(ca, { commonName: 'blog.example.com', dnsNames: ['blog.example.com'] });
  writeFileSync(join(dir, 'ca.pem'), ca.certPem);
  const secret = (ns: string, name: string, c: { certPem: string; keyPem: string }) =>
    `---\napiVersion: v1\nkind: Secret\nmetadata: {name: ${name}, namespace: ${ns}}\ntype: kubernetes.io/tls\ndata:\n  tls.crt: ${b64(c.certPem)}\n  tls.key: ${b64(c.keyPem)}\n`;
  const mesh = [
    yaml`
      apiVersion: v1
      kind: Namespace
      metadata: {name: istio-system}
      ---
      apiVersion: v1
      kind: Namespace
      metadata: {name: ingress}
      ---
      apiVersion: v1
      kind: Namespace
      metadata: {name: certs}
      ---
      apiVersion: v1
      kind: Namespace
      metadata: {name: web, labels: {istio.io/dataplane-mode: ambient}}
      ---
      apiVersion: v1
      kind: Namespace
      metadata: {name: other, labels: {istio.io/dataplane-mode: ambient}}
      ---
      apiVersion: gateway.networking.k8s.io/v1
      kind: Gateway
      metadata: {name: public, namespace: ingress}
      spec:
        gatewayClassName: istio
        listeners:
        - {name: http, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}
        - name: https-shop
          port: 443
          protocol: HTTPS
          hostname: shop.example.com
          tls: {mode: Terminate, certificateRefs: [{name: shop-cert}]}
          allowedRoutes: {namespaces: {from: All}}
        - name: https-blog
          port: 443
          protocol: HTTPS
          hostname: blog.example.com
          tls: {certificateRefs: [{name: blog-cert, namespace: certs}]}
          allowedRoutes: {namespaces: {from: All}}
        - {name: tcp, port: 9000, protocol: TCP, allowedRoutes: {namespaces: {from: All}}}
      ---
      apiVersion: gateway.networking.k8s.io/v1beta1
      kind: ReferenceGrant
      metadata: {name: gateway-certs, namespace: certs}
      spec:
        from: [{group: gateway.networking.k8s.io, kind: Gateway, namespace: ingress}]
        to: [{group: "", kind: Secret, name: blog-cert}]
      ---
      apiVersion: gateway.networking.k8s.io/v1
      kind: Gateway
      metadata: {name: wp, namespace: web}
      spec: {gatewayClassName: istio-waypoint, listeners: [{name: mesh, port: 15008, protocol: HBONE}]}
      ---
      apiVersion: v1
      kind: Service
      metadata: {name: secure, namespace: web, labels: {istio.io/use-waypoint: wp, istio.io/ingress-use-waypoint: "true"}}
      spec: {selector: {app: blog}, ports: [{name: http, port: 80, targetPort: 8080}]}
      ---
      apiVersion: security.istio.io/v1
      kind: AuthorizationPolicy
      metadata: {name: secure-no-admin, namespace: web}
      spec:
        targetRefs: [{kind: Service, group: "", name: secure}]
        action: DENY
        rules: [{to: [{operation: {paths: ["/admin*"]}}]}]
      ---
      apiVersion: security.istio.io/v1
      kind: AuthorizationPolicy
      metadata: {name: shop-only-from-gateway, namespace: web}
      spec:
        selector: {matchLabels: {app: shop}}
        action: ALLOW
        rules: [{from: [{source: {principals: [cluster.local/ns/ingress/sa/public-istio]}}]}]
      ---
      apiVersion: gateway.networking.k8s.io/v1
      kind: HTTPRoute
      metadata: {name: shop, namespace: web}
      spec:
        parentRefs: [{name: public, namespace: ingress}]
        hostnames: [shop.example.com]
        rules: [{backendRefs: [{name: echo-shop, port: 80}]}]
      ---
      apiVersion: gateway.networking.k8s.io/v1
      kind: HTTPRoute
      metadata: {name: blog, namespace: web}
      spec:
        parentRefs: [{name: public, namespace: ingress, sectionName: https-blog}]
        hostnames: [blog.example.com]
        rules: [{backendRefs: [{name: echo-blog, port: 80}]}]
      ---
      apiVersion: gateway.networking.k8s.io/v1
      kind: HTTPRoute
      metadata: {name: secure, namespace: web}
      spec:
        parentRefs: [{name: public, namespace: ingress, sectionName: http}]
        hostnames: [secure.example.com]
        rules: [{backendRefs: [{name: secure, port: 80}]}]
      ---
      apiVersion: gateway.networking.k8s.io/v1
      kind: HTTPRoute
      metadata: {name: cross, namespace: ingress}
      spec:
        parentRefs: [{name: public, sectionName: http}]
        hostnames: [cross.example.com]
        rules: [{backendRefs: [{name: echo-other, namespace: other, port: 80}]}]
      ---
      apiVersion: gateway.networking.k8s.io/v1
      kind: GRPCRoute
      metadata: {name: grpc, namespace: web}
      spec:
        parentRefs: [{name: public, namespace: ingress, sectionName: http}]
        hostnames: [grpc.example.com]
        rules:
        - matches: [{method: {service: shop.Cart, method: Add}}]
          backendRefs: [{name: echo-shop, port: 80}]
        - matches: [{method: {service: blog.Posts}}]
          backendRefs: [{name: echo-blog, port: 80}]
      ---
      apiVersion: gateway.networking.k8s.io/v1alpha2
      kind: TCPRoute
      metadata: {name: tcp, namespace: web}
      spec:
        parentRefs: [{name: public, namespace: ingress, sectionName: tcp}]
        rules: [{backendRefs: [{name: hello-a, port: 9000}, {name: hello-b, port: 9000}]}]
    `,
    echo('web', 'echo-shop', 'shop'),
    echo('web', 'echo-blog', 'blog'),
    echo('other', 'echo-other', 'other'),
    hello('hello-a'),
    hello('hello-b'),
  ].join('\n---\n') + secret('ingress', 'shop-cert', shop) + secret('certs', 'blog-cert', blog);
  cluster = startCluster(mesh, { name: 'in', upArgs: ['--outside'] });
  await waitFor('the ingress gateway pod in ambit status', () => {
    const s = JSON.parse(cluster.ambit(['status', '-o', 'json']).stdout || '{}') as { status?: { pods: { namespace: string; name: string; ip: string; mode: string }[] } };
    gatewayIp = s.status?.pods.find((p) => p.mode === 'gateway' && p.namespace === 'ingress')?.ip ?? '';
    return gatewayIp !== '';
  }, 30_000);
});

after(() => {
  const r = cluster?.down();
  if (r && r.code !== 0) console.error(r.stderr);
  rmSync(dir, { recursive: true, force: true });
});

/** curl from the outside host (not in the mesh). */
function outside(args: string[], timeoutMs = 15_000): { code: number; stdout: string; stderr: string } {
  const r = spawnSync('ip', ['netns', 'exec', `${cluster.prefix}-outside`, 'curl', '-sS', '--max-time', '8', ...args], { encoding: 'utf8', timeout: timeoutMs });
  return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

const http = (host: string, path = '/', extra: string[] = []) => outside(['-w', '\\n%{http_code}', '-H', `host: ${host}`, ...extra, `http://${gatewayIp}${path}`]);
const code = (r: { stdout: string }) => r.stdout.trim().split('\n').pop();
const body = (r: { stdout: string }) => JSON.parse(r.stdout.trim().split('\n').slice(0, -1).join('\n')) as { pod: string; path: string; headers: Record<string, string>; protocol?: string };

test('ambit status prints the gateway address; HTTP from the outside host reaches an ambient service with the gateway\'s identity', async () => {
  assert.match(cluster.ambit(['status']).stdout, new RegExp(`ingress gateway ingress/public: address ${gatewayIp.replace(/\./g, '\\.')}`));
  let r = http('shop.example.com', '/hello');
  await waitFor(`HTTP through the gateway (last: ${r.stdout} ${r.stderr})`, () => { r = http('shop.example.com', '/hello'); return code(r) === '200'; }, 45_000);
  const b = body(r);
  assert.match(b.pod, /^echo-shop-/);
  assert.equal(b.path, '/hello');
  // Envoy's edge headers: the client's address, the scheme.
  assert.equal(b.headers['x-forwarded-proto'], 'http');
  assert.match(b.headers['x-forwarded-for'] ?? '', /172\.30\.0\.2/);
  // No route for the host on this port: 404; blog is bound to the HTTPS listener only.
  assert.equal(code(http('nothing.example.com')), '404');
  assert.equal(code(http('blog.example.com')), '404');
});

test('HTTPS: two hostnames, two certificates chosen by SNI (one through a ReferenceGrant), verified by curl', async () => {
  const https = (host: string) => outside(['-w', '\\n%{http_code}', '--cacert', join(dir, 'ca.pem'), '--resolve', `${host}:443:${gatewayIp}`, `https://${host}/secure-path`]);
  let r = https('shop.example.com');
  await waitFor(`HTTPS shop (last: ${r.stdout} ${r.stderr})`, () => { r = https('shop.example.com'); return code(r) === '200'; }, 20_000);
  assert.match(body(r).pod, /^echo-shop-/);
  assert.equal(body(r).headers['x-forwarded-proto'], 'https');
  r = https('blog.example.com');
  assert.equal(code(r), '200', `${r.stdout} ${r.stderr}`);
  assert.match(body(r).pod, /^echo-blog-/);
  // HTTP/2 over TLS (ALPN h2).
  const h2 = outside(['--http2', '-o', '/dev/null', '-w', '%{http_version} %{http_code}', '--cacert', join(dir, 'ca.pem'), '--resolve', `blog.example.com:443:${gatewayIp}`, 'https://blog.example.com/']);
  assert.equal(h2.stdout.trim(), '2 200', h2.stderr);
  // An SNI no listener has: no certificate, the handshake fails.
  const none = outside(['--cacert', join(dir, 'ca.pem'), '--resolve', `other.example.com:443:${gatewayIp}`, 'https://other.example.com/']);
  assert.notEqual(none.code, 0);
});

test('a cross-namespace backend is refused (500) without a ReferenceGrant and served with one', async () => {
  let r = http('cross.example.com');
  await waitFor(`500 without a grant (last: ${r.stdout})`, () => { r = http('cross.example.com'); return code(r) === '500'; }, 10_000);
  const applied = cluster.apply(yaml`
    apiVersion: gateway.networking.k8s.io/v1beta1
    kind: ReferenceGrant
    metadata: {name: from-ingress, namespace: other}
    spec:
      from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: ingress}]
      to: [{group: "", kind: Service}]
  `);
  assert.equal(applied.code, 0, applied.stderr);
  await waitFor(`200 with the grant (last: ${r.stdout})`, () => { r = http('cross.example.com'); return code(r) === '200'; }, 20_000);
  assert.match(body(r).pod, /^echo-other-/);
});

test('ingress through the destination waypoint (ingress-use-waypoint): its L7 policy denies a path', async () => {
  let r = http('secure.example.com', '/hello');
  await waitFor(`secure /hello (last: ${r.stdout})`, () => { r = http('secure.example.com', '/hello'); return code(r) === '200'; }, 20_000);
  assert.match(body(r).pod, /^echo-blog-/);
  const denied = http('secure.example.com', '/admin/users');
  assert.equal(code(denied), '403', denied.stdout);
  assert.match(denied.stdout, /RBAC: access denied/);
});

test('GRPCRoute by service and method over h2c; TCPRoute to two backends', async () => {
  const grpc = (path: string) => outside(['--http2-prior-knowledge', '-w', '\\n%{http_code}', '-H', 'host: grpc.example.com', '-H', 'content-type: application/grpc', '-X', 'POST', '--data-binary', '', `http://${gatewayIp}${path}`]);
  let r = grpc('/shop.Cart/Add');
  await waitFor(`gRPC shop.Cart/Add (last: ${r.stdout} ${r.stderr})`, () => { r = grpc('/shop.Cart/Add'); return code(r) === '200'; }, 20_000);
  assert.match(body(r).pod, /^echo-shop-/);
  assert.match(body(grpc('/blog.Posts/List')).pod, /^echo-blog-/);
  assert.equal(code(grpc('/shop.Cart/Remove')), '404', 'no rule matches that method');
  const seen = new Map<string, number>();
  await waitFor(`TCPRoute answers from both backends (seen: ${[...seen].join(' ')})`, () => {
    const t = spawnSync('ip', ['netns', 'exec', `${cluster.prefix}-outside`, 'timeout', '5', 'bash', '-c', `cat < /dev/tcp/${gatewayIp}/9000`], { encoding: 'utf8', timeout: 8000 });
    const name = (t.stdout ?? '').trim();
    if (name) seen.set(name, (seen.get(name) ?? 0) + 1);
    return seen.has('hello-a') && seen.has('hello-b');
  }, 30_000);
});

test('gateway telemetry: reporter="source", destination the backend service, the gateway as source', async () => {
  let text = '';
  await waitFor('the gateway\'s request metrics', async () => {
    for (let k = 1; k <= 4 && !/reporter="source"/.test(text); k++) text = await fetch(`http://${cluster.waypointAdmin(k)}/metrics`).then((x) => x.text(), () => '');
    return /istio_requests_total\{[^}]*reporter="source"/.test(text);
  }, 10_000);
  assert.match(text, /istio_requests_total\{[^}]*reporter="source"[^}]*destination_service="echo-shop\.web\.svc\.cluster\.local"[^}]*response_code="200"/);
  assert.match(text, /istio_requests_total\{[^}]*reporter="source"[^}]*destination_service="secure\.web\.svc\.cluster\.local"[^}]*response_code="403"/);
});
