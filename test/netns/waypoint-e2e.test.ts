// Waypoints on the local cluster, end to end: a namespace that uses a waypoint gets HTTP
// routing, L7 authorization, JWT and request telemetry from `ambit waypoint` pods, with
// unmodified clients (python3 http.client, curl) and servers (ambit app echo) in the pods.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createSign, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { clusterLogTails, startCluster, type TestCluster } from '../helpers/cluster.js';
import { yaml } from '../helpers/config.js';
import { waitFor } from '../helpers/wait.js';

const LOAD = resolve('test/fixtures/http-load.py');
const ISSUER = 'https://issuer.ambit.test';
const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...(publicKey.export({ format: 'jwk' }) as Record<string, unknown>), kid: 'k1', alg: 'RS256', use: 'sig' };

function signJwt(claims: Record<string, unknown>, key: KeyObject = privateKey): string {
  const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const input = `${enc({ alg: 'RS256', kid: 'k1', typ: 'JWT' })}.${enc(claims)}`;
  return `${input}.${createSign('RSA-SHA256').update(input).sign(key).toString('base64url')}`;
}

function echoDeployment(version: string, replicas = 1): string {
  return yaml`
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: echo-${version}, namespace: shop}
    spec:
      replicas: ${replicas}
      selector: {matchLabels: {app: echo, version: ${version}}}
      template:
        metadata: {labels: {app: echo, version: ${version}}}
        spec: {serviceAccountName: echo, containers: [{name: echo, command: [ambit, app, echo, --port, "8080"]}]}
  `;
}

function service(name: string, selector: string): string {
  return yaml`
    apiVersion: v1
    kind: Service
    metadata: {name: ${name}, namespace: shop}
    spec: {selector: ${selector}, ports: [{name: http, port: 80, targetPort: 8080}]}
  `;
}

const mesh = [
  yaml`
    apiVersion: v1
    kind: Namespace
    metadata: {name: shop, labels: {istio.io/dataplane-mode: ambient, istio.io/use-waypoint: waypoint}}
    ---
    apiVersion: gateway.networking.k8s.io/v1
    kind: Gateway
    metadata: {name: waypoint, namespace: shop, labels: {istio.io/waypoint-for: service}}
    spec: {gatewayClassName: istio-waypoint, listeners: [{name: mesh, port: 15008, protocol: HBONE}]}
    ---
    apiVersion: v1
    kind: Pod
    metadata: {name: client, namespace: shop, labels: {app: client}}
    spec: {nodeName: node-1, serviceAccountName: client, containers: [{name: main, command: [sleep, infinity]}]}
    ---
    apiVersion: v1
    kind: Pod
    metadata: {name: other, namespace: shop, labels: {app: other}}
    spec: {nodeName: node-1, serviceAccountName: other, containers: [{name: main, command: [sleep, infinity]}]}
  `,
  echoDeployment('v1', 2),
  echoDeployment('v2'),
  service('echo', '{app: echo}'),
  service('echo-v1', '{app: echo, version: v1}'),
  service('echo-v2', '{app: echo, version: v2}'),
  service('secure', '{app: echo}'),
  service('guarded', '{app: echo}'),
  service('allowlist', '{app: echo}'),
  service('tokens', '{app: echo}'),
  service('faulty', '{app: echo}'),
  yaml`
    apiVersion: gateway.networking.k8s.io/v1
    kind: HTTPRoute
    metadata: {name: echo, namespace: shop}
    spec:
      parentRefs: [{group: "", kind: Service, name: echo, port: 80}]
      rules:
      - matches: [{headers: [{name: x-version, value: v2}]}]
        backendRefs: [{name: echo-v2, port: 80}]
      - matches: [{path: {type: PathPrefix, value: /old}}]
        filters: [{type: RequestRedirect, requestRedirect: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}, statusCode: 301}}]
      - matches: [{path: {type: PathPrefix, value: /api}}]
        filters:
        - {type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /v1/api}}}
        - {type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-routed, value: api}]}}
        backendRefs: [{name: echo-v1, port: 80}]
      - matches: [{path: {type: PathPrefix, value: /mirror}}]
        filters: [{type: RequestMirror, requestMirror: {backendRef: {name: echo-v2, port: 80}}}]
        backendRefs: [{name: echo-v1, port: 80}]
      - matches: [{path: {type: PathPrefix, value: /flaky}}]
        backendRefs: [{name: echo-v1, port: 80}]
        retry: {attempts: 3, codes: [503], backoff: 10ms}
      - matches: [{path: {type: PathPrefix, value: /delay}}]
        backendRefs: [{name: echo-v1, port: 80}]
        timeouts: {request: 500ms}
      - backendRefs: [{name: echo-v1, port: 80, weight: 90}, {name: echo-v2, port: 80, weight: 10}]
    ---
    apiVersion: security.istio.io/v1
    kind: AuthorizationPolicy
    metadata: {name: secure-get-only, namespace: shop}
    spec:
      targetRefs: [{kind: Service, group: "", name: secure}]
      action: ALLOW
      rules: [{from: [{source: {principals: [cluster.local/ns/shop/sa/client]}}], to: [{operation: {methods: [GET]}}]}]
    ---
    apiVersion: security.istio.io/v1
    kind: AuthorizationPolicy
    metadata: {name: guarded-no-admin, namespace: shop}
    spec:
      targetRefs: [{kind: Service, group: "", name: guarded}]
      action: DENY
      rules: [{to: [{operation: {paths: ["/admin*"]}}]}]
    ---
    apiVersion: security.istio.io/v1
    kind: AuthorizationPolicy
    metadata: {name: allowlist-public, namespace: shop}
    spec:
      targetRefs: [{kind: Service, group: "", name: allowlist}]
      action: ALLOW
      rules: [{to: [{operation: {paths: ["/public/*"]}}]}]
    ---
    apiVersion: security.istio.io/v1
    kind: RequestAuthentication
    metadata: {name: tokens, namespace: shop}
    spec:
      targetRefs: [{kind: Service, group: "", name: tokens}]
      jwtRules:
      - issuer: "${ISSUER}"
        audiences: [shop]
        jwks: '${JSON.stringify({ keys: [jwk] })}'
        outputClaimToHeaders: [{header: x-jwt-group, claim: group}, {header: x-jwt-level, claim: level}]
    ---
    apiVersion: security.istio.io/v1
    kind: AuthorizationPolicy
    metadata: {name: tokens-admins, namespace: shop}
    spec:
      targetRefs: [{kind: Service, group: "", name: tokens}]
      action: ALLOW
      rules: [{from: [{source: {requestPrincipals: ["${ISSUER}/*"]}}], when: [{key: "request.auth.claims[group]", values: [admin]}]}]
    ---
    apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata: {name: faulty, namespace: shop}
    spec:
      hosts: [faulty]
      http:
      - match: [{uri: {prefix: /abort}}]
        fault: {abort: {httpStatus: 418, percentage: {value: 100}}}
        route: [{destination: {host: faulty}}]
      - match: [{uri: {prefix: /slow}}]
        fault: {delay: {fixedDelay: 400ms, percentage: {value: 100}}}
        route: [{destination: {host: faulty}}]
      - route: [{destination: {host: faulty}}]
  `,
].join('\n---\n');

let c: TestCluster;

before(async () => {
  c = startCluster(mesh, { name: 'w' });
  try {
    await waitFor('first request through the waypoint', () => curl('shop/client', 'http://echo/').stdout.includes('"pod"'), 30_000);
  } catch (e) {
    // Once in CI the first request never got through: say why next time.
    console.error(`${String(e)}\nlast curl: ${JSON.stringify(curl('shop/client', 'http://echo/'))}\n${clusterLogTails(c.stateDir)}`);
    throw e;
  }
});

after(() => {
  if (c) {
    const d = c.down();
    assert.equal(d.code, 0, d.stderr);
  }
});

function curl(pod: string, url: string, extra: string[] = []) {
  return c.exec(pod, ['curl', '-sS', '--max-time', '5', ...extra, url]);
}

function code(pod: string, url: string, extra: string[] = []): string {
  return curl(pod, url, ['-o', '/dev/null', '-w', '%{http_code}', ...extra]).stdout.trim();
}

interface LoadResult { requests: number; codes: Record<string, number>; versions: Record<string, number>; pods: Record<string, number>; errors: string[]; errorCount: number }

function load(pod: string, host: string, path: string, n: number, extra: string[] = []): LoadResult {
  const r = c.exec(pod, ['python3', LOAD, host, '80', path, String(n), ...extra], 120_000);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as LoadResult;
}

function waypointLogs(): Record<string, unknown>[] {
  const dir = join(c.stateDir, 'logs');
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.includes('waypoint'))
    .flatMap((f) => { try { return readFileSync(join(dir, f), 'utf8').split('\n'); } catch { return []; } })
    .flatMap((l) => { try { return [JSON.parse(l) as Record<string, unknown>]; } catch { return []; } });
}

test('requests go through the waypoint: one access-log line per request with both identities', async () => {
  const r = curl('shop/client', 'http://echo-v2/hello', ['-H', 'traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01']);
  assert.equal(r.code, 0, r.stderr);
  const body = JSON.parse(r.stdout) as { headers: Record<string, string> };
  // The waypoint keeps the trace id and starts its own span.
  assert.match(body.headers.traceparent ?? '', /^00-0af7651916cd43dd8448eb211c80319c-(?!b7ad6b7169203331)[0-9a-f]{16}-01$/);
  await waitFor('access log line', () => waypointLogs().some((l) => l.msg === 'request complete' && l.path === '/hello' && l.reporter === 'waypoint'), 5000);
  const line = waypointLogs().find((l) => l.msg === 'request complete' && l.path === '/hello')!;
  assert.equal(line.method, 'GET');
  assert.equal(line.response_code, 200);
  assert.equal(line['src.identity'], 'spiffe://cluster.local/ns/shop/sa/client');
  assert.equal(line['dst.identity'], 'spiffe://cluster.local/ns/shop/sa/echo');
  assert.equal(line['dst.service'], 'echo-v2.shop.svc.cluster.local');
  // The replica is a proxy of its node, synced on the workload API and on its L7 config.
  assert.match(c.ambit(['proxy-status']).stdout, /node-\d~waypoint-0\.shop\s+SYNCED\s+SYNCED\s+-\s+SYNCED/);
});

test('a 90/10 split over 1,000 requests, and a header match goes to v2', () => {
  const r = load('shop/client', 'echo', '/', 1000);
  assert.equal(r.errorCount, 0, JSON.stringify(r.errors));
  assert.equal(r.codes['200'], 1000);
  const v2 = r.versions.v2 ?? 0;
  // Binomial(1000, 0.1): mean 100, sd 9.5; 60..140 is > 4 sd.
  assert.ok(v2 >= 60 && v2 <= 140, `v2 got ${v2} of 1000`);
  const h = load('shop/client', 'echo', '/', 50, ['GET', 'x-version:v2']);
  assert.deepEqual(h.versions, { v2: 50 });
});

test('a redirect and a rewrite with a header set', () => {
  const red = curl('shop/client', 'http://echo/old/page', ['-D', '-', '-o', '/dev/null']);
  assert.match(red.stdout, /^HTTP\/1\.1 301/m);
  assert.match(red.stdout, /^location: http:\/\/echo(:80)?\/new\/page/im);
  const rw = JSON.parse(curl('shop/client', 'http://echo/api/items').stdout) as { path: string; headers: Record<string, string> };
  assert.equal(rw.path, '/v1/api/items');
  assert.equal(rw.headers['x-routed'], 'api');
});

test('a mirror receives a copy of each request; the client sees only the primary answer', async () => {
  const id = `/mirror/${Date.now()}`;
  const r = JSON.parse(curl('shop/client', `http://echo${id}`).stdout) as { version: string };
  assert.equal(r.version, 'v1');
  const log = join(c.stateDir, 'logs', 'pods', 'shop_echo-v2-0_echo.log');
  await waitFor('the mirror got the copy', () => readFileSync(log, 'utf8').split('\n').some((l) => l.includes(id) && l.includes('echo-shadow')), 5000);
});

test('HTTP/2 (h2c) is routed at L7 too, and a non-HTTP protocol is relayed as TCP', async () => {
  const r = curl('shop/client', 'http://echo-v2/h2', ['--http2-prior-knowledge']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((JSON.parse(r.stdout) as { protocol: string }).protocol, 'HTTP/2');
  assert.match(curl('shop/client', 'http://secure/', ['--http2-prior-knowledge', '-X', 'DELETE']).stdout, /RBAC: access denied/);
  const py = 'import socket;s=socket.create_connection(("echo-v1",80));s.sendall(b"hello raw tcp\\n");s.shutdown(socket.SHUT_WR);print(s.makefile().read(),end="")';
  const tcp = c.exec('shop/client', ['python3', '-c', py]);
  assert.equal(tcp.stdout, 'hello raw tcp\n', tcp.stderr);
  // The TCP relay is one connection record: Istio's TCP metrics with reporter waypoint.
  await waitFor('TCP metrics at the waypoint', async () => /istio_tcp_connections_closed_total\{reporter="waypoint"[^}]*source_principal="spiffe:\/\/cluster.local\/ns\/shop\/sa\/client"[^}]*destination_service="echo-v1.shop.svc.cluster.local"/
    .test(await (await fetch(`http://${c.waypointAdmin(1)}/metrics`)).text()), 5000);
});

test('a WebSocket-style upgrade passes the waypoint: 101, then bytes both ways, recorded once with code 101', async () => {
  const py = [
    'import socket',
    's=socket.create_connection(("echo-v1",80))',
    's.sendall(b"GET /ws HTTP/1.1\\r\\nHost: echo-v1\\r\\nConnection: Upgrade\\r\\nUpgrade: websocket\\r\\n\\r\\n")',
    'buf=b""',
    'while b"\\r\\n\\r\\n" not in buf: buf+=s.recv(4096)',
    'head,rest=buf.split(b"\\r\\n\\r\\n",1)',
    'msg=b"frames after the switch"',
    's.sendall(msg)',
    'while len(rest)<len(msg): rest+=s.recv(4096)',
    's.close()',
    'print(head.split(b"\\r\\n")[0].decode()); print(rest.decode())',
  ].join('\n');
  const r = c.exec('shop/client', ['python3', '-c', py]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'HTTP/1.1 101 Switching Protocols\nframes after the switch\n');
  await waitFor('the upgraded request in the waypoint metrics', async () => /istio_requests_total\{reporter="waypoint"[^}]*destination_service="echo-v1.shop.svc.cluster.local"[^}]*response_code="101"/
    .test(await (await fetch(`http://${c.waypointAdmin(1)}/metrics`)).text()), 5000);
});

test('ambit waypoint apply / delete declare and remove a waypoint through the control plane', async () => {
  const a = c.ambit(['waypoint', 'apply', '-n', 'shop', '--name', 'wp2', '--for', 'workload']);
  assert.equal(a.code, 0, a.stderr);
  assert.match(c.ambit(['get', 'gateway', '-n', 'shop']).stdout, /wp2/);
  await waitFor('the replica pod runs', () => (JSON.parse(c.ambit(['status', '-o', 'json']).stdout) as { status: { pods: { name: string }[] } }).status.pods.some((p) => p.name === 'wp2-0'), 10_000);
  const d = c.ambit(['waypoint', 'delete', '-n', 'shop', '--name', 'wp2']);
  assert.equal(d.code, 0, d.stderr);
  assert.doesNotMatch(c.ambit(['get', 'gateway', '-n', 'shop']).stdout, /wp2/);
});

test('L7 policy: GET allowed, DELETE denied with 403 RBAC, another identity denied', () => {
  assert.equal(code('shop/client', 'http://secure/'), '200');
  const del = curl('shop/client', 'http://secure/', ['-X', 'DELETE', '-w', ' %{http_code}']);
  assert.equal(del.stdout.trim(), 'RBAC: access denied 403');
  assert.equal(code('shop/other', 'http://secure/'), '403');
});

// Each spelling reaches the application as its normalized path (MERGE_SLASHES, Ambit's
// default), and that is what the policy matched: none gets past a DENY on /admin*, none
// escapes an ALLOW on /public/*.
const SPELLINGS: [string, string[], string | null][] = [
  ['/admin', [], '/admin'],
  ['/./admin', [], '/admin'],
  ['//admin', [], '/admin'],
  ['/%61dmin', [], '/admin'],
  ['/x/../admin', [], '/admin'],
  ['/x/%2e%2e/admin', [], '/admin'],
  ['/x\\..\\admin', [], '/admin'],
  ['/', ['--request-target', 'http://HOST/admin'], '/admin'],
  ['/admin%00', [], null],
  ['/%%36%31dmin', [], null],
];

function seen(pod: string, host: string, path: string, extra: string[]): { code: string; path?: string } {
  const r = curl(pod, `http://${host}${path}`, ['--path-as-is', '-w', '\n%{http_code}', ...extra.map((a) => a.replace('HOST', host))]);
  const lines = r.stdout.trim().split('\n');
  const code = lines.pop()!;
  let got: string | undefined;
  try { got = (JSON.parse(lines.join('\n')) as { path: string }).path; } catch { /* not the echo app's answer */ }
  return { code, path: got };
}

test('path spellings against a DENY on /admin*: each is denied (403) or refused (400); the application never sees /admin', () => {
  for (const [path, extra, normal] of SPELLINGS) {
    const r = seen('shop/client', 'guarded', path, extra);
    assert.equal(r.code, normal === null ? '400' : '403', `${path} ${extra.join(' ')}: ${JSON.stringify(r)}`);
  }
  assert.deepEqual(seen('shop/client', 'guarded', '/public//a/./b/../c', []), { code: '200', path: '/public/a/c' });
});

test('path spellings against an ALLOW on /public/*: climbing out is denied, spellings of /public/... reach the application normalized', () => {
  for (const [path, extra, normal] of SPELLINGS) {
    const r = seen('shop/client', 'allowlist', path, extra);
    assert.equal(r.code, normal === null ? '400' : '403', `${path}: ${JSON.stringify(r)}`);
  }
  for (const p of ['/public/../admin', '/public/%2e%2e/admin', '/public%2f..%2fadmin/x']) assert.equal(seen('shop/client', 'allowlist', p, []).code, '403', p);
  assert.deepEqual(seen('shop/client', 'allowlist', '/public/./%61/b?x=/../y', []), { code: '200', path: '/public/a/b?x=/../y' });
  assert.deepEqual(seen('shop/client', 'allowlist', '//public//x', []), { code: '200', path: '/public/x' });
  assert.equal(seen('shop/client', 'allowlist', '/public/x', ['-X', 'get']).code, '400');
});

test('JWT: the right claim is allowed, a wrong one denied, none 401, a bad signature 401', () => {
  const now = Math.floor(Date.now() / 1000);
  const good = signJwt({ iss: ISSUER, sub: 'alice', aud: 'shop', group: 'admin', exp: now + 600 });
  const user = signJwt({ iss: ISSUER, sub: 'bob', aud: 'shop', group: 'user', exp: now + 600 });
  const forged = signJwt({ iss: ISSUER, sub: 'mallory', aud: 'shop', group: 'admin', exp: now + 600 }, generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey);
  assert.equal(code('shop/client', 'http://tokens/', ['-H', `authorization: Bearer ${good}`]), '200');
  assert.equal(code('shop/client', 'http://tokens/', ['-H', `authorization: Bearer ${user}`]), '403');
  assert.equal(code('shop/client', 'http://tokens/'), '401');
  assert.equal(code('shop/client', 'http://tokens/', ['-H', `authorization: Bearer ${forged}`]), '401');
});

test('JWT: outputClaimToHeaders sets the claims (a number as an integer) in place of what the client sent; the token is not forwarded', () => {
  const now = Math.floor(Date.now() / 1000);
  const good = signJwt({ iss: ISSUER, sub: 'alice', aud: 'shop', group: 'admin', level: 3, exp: now + 600 });
  const r = curl('shop/client', 'http://tokens/', ['-H', `authorization: Bearer ${good}`, '-H', 'x-jwt-group: spoofed']);
  const seen = JSON.parse(r.stdout) as { headers: Record<string, string> };
  assert.deepEqual([seen.headers['x-jwt-group'], seen.headers['x-jwt-level'], seen.headers.authorization], ['admin', '3', undefined], r.stdout);
});

test('retries turn a backend failing every other request into all successes; a timeout gives 504', () => {
  const r = load('shop/client', 'echo', '/flaky', 40);
  assert.deepEqual(r.codes, { 200: 40 }, JSON.stringify(r));
  const t0 = Date.now();
  assert.equal(code('shop/client', 'http://echo/delay/3000'), '504');
  assert.ok(Date.now() - t0 < 2500, 'the timeout cut the request short');
});

test('request bodies: small ones are replayed by retries, a 3 MiB chunked upload streams through once', () => {
  const small = load('shop/client', 'echo', '/flaky', 10, ['POST', 'content-type:text/plain', 'content-length:0']);
  assert.deepEqual(small.codes, { 200: 10 }, JSON.stringify(small));
  const post = c.exec('shop/client', ['sh', '-c', 'head -c 3145728 /dev/zero | curl -sS --max-time 10 -o /dev/null -w "%{http_code}" -H "Transfer-Encoding: chunked" --data-binary @- http://echo/upload']);
  assert.equal(post.stdout.trim(), '200', post.stderr);
  const retried = c.exec('shop/client', ['sh', '-c', 'for i in 1 2 3 4; do printf "hello" | curl -sS --max-time 5 -o /dev/null -w "%{http_code} " --data-binary @- http://echo/flaky; done']);
  assert.equal(retried.stdout.trim(), '200 200 200 200', retried.stderr);
});

test('fault injection (VirtualService): abort with the status, delay by the fixed delay', () => {
  assert.equal(code('shop/client', 'http://faulty/abort'), '418');
  const t0 = Date.now();
  assert.equal(code('shop/client', 'http://faulty/slow'), '200');
  assert.ok(Date.now() - t0 >= 400, 'delayed');
  assert.equal(code('shop/client', 'http://faulty/other'), '200');
});

test('metrics: istio_requests_total with reporter waypoint, method-independent labels, response codes', async () => {
  const status = JSON.parse(c.ambit(['status', '-o', 'json']).stdout) as { status: { components: { name: string }[] } };
  assert.ok(status.status);
  const text = await (await fetch(`http://${c.waypointAdmin(1)}/metrics`)).text();
  assert.match(text, /istio_requests_total\{[^}]*reporter="waypoint"[^}]*source_principal="spiffe:\/\/cluster.local\/ns\/shop\/sa\/client"[^}]*response_code="403"/);
  assert.match(text, /istio_request_duration_milliseconds_bucket\{[^}]*reporter="waypoint"/);
});

test('Telemetry: one Service\'s access log off, another\'s filtered to errors; metrics still count every request; deleting restores', async () => {
  const telemetry = yaml`
    apiVersion: telemetry.istio.io/v1
    kind: Telemetry
    metadata: {name: quiet-echo-v2, namespace: shop}
    spec:
      targetRefs: [{kind: Service, group: "", name: echo-v2}]
      accessLogging: [{disabled: true}]
    ---
    apiVersion: telemetry.istio.io/v1
    kind: Telemetry
    metadata: {name: faulty-errors, namespace: shop}
    spec:
      targetRefs: [{kind: Service, group: "", name: faulty}]
      accessLogging: [{providers: [{name: envoy}], filter: {expression: "response.code >= 400"}}]
  `;
  const applied = c.apply(telemetry);
  assert.equal(applied.code, 0, applied.stderr);
  const logged = (path: string) => waypointLogs().some((l) => l.msg === 'request complete' && l.path === path);
  const loggedSoon = async (path: string, ms: number) => {
    for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 50))) if (logged(path)) return true;
    return logged(path);
  };
  // In force once a 200 from faulty is no longer logged while the 418 sent after it is.
  let k = 0;
  await waitFor('the Telemetry in force', async () => {
    k++;
    assert.equal(code('shop/client', `http://faulty/fine-${k}`), '200');
    assert.equal(code('shop/client', `http://faulty/abort/${k}`), '418');
    assert.ok(await loggedSoon(`/abort/${k}`, 5000), 'the 418 is logged');
    return !logged(`/fine-${k}`);
  }, 15_000);
  // The waypoint's /config_dump explains the decision per service.
  const dump = await (await fetch(`http://${c.waypointAdmin(1)}/config_dump`)).json() as { accessLogging: { waypoint: unknown; services: Record<string, unknown> } };
  assert.deepEqual(dump.accessLogging.waypoint, { enabled: true, from: [] });
  assert.deepEqual(dump.accessLogging.services['echo-v2.shop.svc.cluster.local'], { enabled: false, from: ['shop/quiet-echo-v2'] });
  assert.deepEqual(dump.accessLogging.services['faulty.shop.svc.cluster.local'], { enabled: true, filter: 'response.code >= 400', from: ['shop/faulty-errors'] });
  const requests = async () => {
    const text = await (await fetch(`http://${c.waypointAdmin(1)}/metrics`)).text();
    return [...text.matchAll(/^istio_requests_total\{[^}]*destination_service="echo-v2\.shop\.svc\.cluster\.local"[^}]*\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
  };
  const before = await requests();
  for (let i = 0; i < 3; i++) assert.equal(code('shop/client', `http://echo-v2/quiet-${i}`), '200');
  assert.equal(code('shop/client', 'http://echo-v1/after-quiet'), '200');
  await waitFor('a request to another service still logged', () => logged('/after-quiet'), 5000);
  assert.ok(!logged('/quiet-0') && !logged('/quiet-1') && !logged('/quiet-2'), 'echo-v2 requests are not logged');
  assert.equal(await requests() - before, 3, 'but they are counted');
  // Deleted, the default (log every request) is back.
  const f = join(tmpdir(), `ambit-e2e-telemetry-${process.pid}.yaml`);
  writeFileSync(f, telemetry);
  try {
    assert.equal(c.ambit(['delete', '-f', f]).code, 0);
  } finally {
    rmSync(f, { force: true });
  }
  await waitFor('echo-v2 logged again after the delete', () => {
    k++;
    assert.equal(code('shop/client', `http://echo-v2/loud-${k}`), '200');
    return loggedSoon(`/loud-${k}`, 1000);
  }, 15_000);
});

test('scaling the waypoint 1 -> 3 -> 1 under steady traffic loses no request', async () => {
  // A new connection per request, so requests spread over the replicas as they come and go.
  const running = c.spawnIn('shop/client', ['python3', LOAD, 'echo', '80', '/', '0', 'GET', 'Connection:close', '--for', '12', '--gap', '5']);
  let out = '';
  running.stdout!.on('data', (b: Buffer) => { out += b.toString(); });
  await new Promise((r) => setTimeout(r, 1500));
  const gw = (n: number) => yaml`
    apiVersion: gateway.networking.k8s.io/v1
    kind: Gateway
    metadata: {name: waypoint, namespace: shop, labels: {istio.io/waypoint-for: service}, annotations: {ambit.dev/replicas: "${n}"}}
    spec: {gatewayClassName: istio-waypoint, listeners: [{name: mesh, port: 15008, protocol: HBONE}]}
  `;
  assert.equal(c.apply(gw(3)).code, 0);
  await new Promise((r) => setTimeout(r, 4000));
  assert.equal(c.apply(gw(1)).code, 0);
  await new Promise<void>((r) => running.once('close', () => r()));
  const res = JSON.parse(out) as LoadResult;
  assert.ok(res.requests > 100, `made ${res.requests} requests`);
  const servedBy = new Set(waypointLogs().filter((l) => l.msg === 'request complete').map((l) => l.pod));
  assert.ok(servedBy.size >= 2, `requests were spread over the replicas: ${[...servedBy].join(', ')}`);
  assert.equal(res.errorCount, 0, JSON.stringify(res.errors));
  assert.deepEqual(Object.keys(res.codes), ['200'], JSON.stringify(res.codes));
});

test('removing the namespace from its waypoint under steady traffic loses no request', async () => {
  const running = c.spawnIn('shop/client', ['python3', LOAD, 'echo-v1', '80', '/', '0', '--for', '6', '--gap', '5']);
  let out = '';
  running.stdout!.on('data', (b: Buffer) => { out += b.toString(); });
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(c.ambit(['label', 'namespace', 'shop', 'istio.io/use-waypoint-']).code, 0);
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(c.ambit(['label', 'namespace', 'shop', 'istio.io/use-waypoint=waypoint']).code, 0);
  await new Promise<void>((r) => running.once('close', () => r()));
  const res = JSON.parse(out) as LoadResult;
  assert.equal(res.errorCount, 0, JSON.stringify(res.errors));
  assert.deepEqual(Object.keys(res.codes), ['200'], JSON.stringify(res.codes));
});
