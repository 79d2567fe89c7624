import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { HTTPRouteResource, VirtualServiceResource } from '../../src/config/resources.js';
import { applyHeaderEdits, compileRoutes, decideRoute, type RouteDecision, type RouteService } from '../../src/waypoint/routing.js';
import { parseGatewayDuration, parseIstioDuration } from '../../src/waypoint/duration.js';
import { replacePrefixSegments } from '../../src/waypoint/route-match.js';

const svc = (name: string, ports: number[] = [80], ns = 'shop'): RouteService => ({
  namespace: ns, name, hostname: `${name}.${ns}.svc.cluster.local`, vips: [`10.96.0.${name.length}`],
  ports: ports.map((p) => ({ port: p, targetPort: p + 8000 })),
});
const SERVICES = [svc('web', [80, 8080]), svc('v1'), svc('v2'), svc('shadow')];

function route(name: string, rules: unknown[], extra: { port?: number; created?: string; parent?: Record<string, unknown> } = {}): HTTPRouteResource {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute',
    metadata: { name, namespace: 'shop', ...(extra.created ? { creationTimestamp: extra.created } : {}) },
    spec: { parentRefs: [(extra.parent as never) ?? { group: '', kind: 'Service', name: 'web', ...(extra.port ? { port: extra.port } : {}) }], rules: rules as never },
  };
}
function vs(name: string, http: unknown[], extra: Partial<VirtualServiceResource['spec']> = {}, created?: string): VirtualServiceResource {
  return {
    apiVersion: 'networking.istio.io/v1', kind: 'VirtualService',
    metadata: { name, namespace: 'shop', ...(created ? { creationTimestamp: created } : {}) },
    spec: { hosts: ['web'], http: http as never, ...extra },
  };
}
const to = (name: string, port = 80) => ({ name, port });
const req = (path: string, extra: { method?: string; headers?: Record<string, string>; host?: string } = {}) =>
  ({ method: extra.method ?? 'GET', path, host: extra.host ?? 'web.shop.svc.cluster.local', headers: extra.headers ?? {} });

/** Deterministic PRNG (mulberry32). */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const never = () => { throw new Error('random() must not be called'); };

function decide(input: { httpRoutes?: HTTPRouteResource[]; virtualServices?: VirtualServiceResource[] }, r: ReturnType<typeof req>, port = 80, random: () => number = never): RouteDecision {
  const { table } = compileRoutes({ httpRoutes: input.httpRoutes ?? [], virtualServices: input.virtualServices ?? [], services: SERVICES });
  return decideRoute(table, { hostname: 'web.shop.svc.cluster.local', port }, r, random);
}
function fwd(d: RouteDecision): Extract<RouteDecision, { kind: 'forward' }> {
  assert.equal(d.kind, 'forward', JSON.stringify(d));
  return d as Extract<RouteDecision, { kind: 'forward' }>;
}

test('no route: forward to the same service and port with Istio default retries', () => {
  const d = fwd(decide({}, req('/x'), 8080));
  assert.equal(d.route, 'default');
  assert.deepEqual(d.backend, { namespace: 'shop', name: 'web', port: 8080 });
  assert.deepEqual(d.retry, { attempts: 2, codes: [503], backoffMs: 25, retryOnConnectFailure: true });
  assert.deepEqual(d.timeouts, {});
  assert.equal(d.backendMissing, undefined);
});

// ---- HTTPRoute matching ----
const matchCases: { name: string; match: unknown; hit: ReturnType<typeof req>[]; miss: ReturnType<typeof req>[] }[] = [
  { name: 'Exact path', match: { path: { type: 'Exact', value: '/a' } }, hit: [req('/a'), req('/a?x=1')], miss: [req('/a/'), req('/ab')] },
  { name: 'PathPrefix is segment-wise', match: { path: { type: 'PathPrefix', value: '/abc' } }, hit: [req('/abc'), req('/abc/'), req('/abc/def')], miss: [req('/abcd'), req('/ab')] },
  { name: 'PathPrefix trailing slash ignored', match: { path: { type: 'PathPrefix', value: '/abc/' } }, hit: [req('/abc'), req('/abc/d')], miss: [req('/abcd')] },
  { name: 'RegularExpression is a full match', match: { path: { type: 'RegularExpression', value: '/v[0-9]+/.*' } }, hit: [req('/v1/x')], miss: [req('/api/v1/x'), req('/v1')] },
  { name: 'header Exact (names case-insensitive)', match: { headers: [{ name: 'X-User', value: 'bob' }] }, hit: [req('/', { headers: { 'x-user': 'bob' } })], miss: [req('/', { headers: { 'x-user': 'Bob' } }), req('/')] },
  { name: 'header RegularExpression', match: { headers: [{ type: 'RegularExpression', name: 'x-v', value: 'v[12]' }] }, hit: [req('/', { headers: { 'x-v': 'v2' } })], miss: [req('/', { headers: { 'x-v': 'v3' } })] },
  { name: 'queryParams Exact', match: { queryParams: [{ name: 'debug', value: '1' }] }, hit: [req('/?debug=1'), req('/p?a=b&debug=1')], miss: [req('/?debug=2'), req('/')] },
  { name: 'queryParams RegularExpression', match: { queryParams: [{ type: 'RegularExpression', name: 'id', value: '[0-9]+' }] }, hit: [req('/?id=42')], miss: [req('/?id=4a')] },
  { name: 'method', match: { method: 'POST' }, hit: [req('/', { method: 'POST' })], miss: [req('/')] },
  { name: 'conditions of one match are ANDed', match: { path: { type: 'PathPrefix', value: '/api' }, method: 'GET', headers: [{ name: 'x-a', value: '1' }] },
    hit: [req('/api/x', { headers: { 'x-a': '1' } })], miss: [req('/api/x'), req('/api/x', { method: 'PUT', headers: { 'x-a': '1' } }), req('/other', { headers: { 'x-a': '1' } })] },
];
for (const c of matchCases) {
  test(`HTTPRoute match: ${c.name}`, () => {
    const routes = [route('r', [{ matches: [c.match], backendRefs: [to('v1')] }])];
    for (const r of c.hit) assert.equal(fwd(decide({ httpRoutes: routes }, r)).backend.name, 'v1', `should match ${r.path}`);
    for (const r of c.miss) assert.deepEqual(decide({ httpRoutes: routes }, r), { kind: 'not-found', route: 'httproute shop/r', status: 404, reason: 'no-match' }, `should not match ${r.path}`);
  });
}

test('HTTPRoute: several matches are ORed; no matches matches everything', () => {
  const routes = [route('r', [
    { matches: [{ path: { type: 'Exact', value: '/a' } }, { headers: [{ name: 'x', value: '1' }] }], backendRefs: [to('v1')] },
    { backendRefs: [to('v2')] },
  ])];
  assert.equal(fwd(decide({ httpRoutes: routes }, req('/a'))).route, 'httproute shop/r rule 0');
  assert.equal(fwd(decide({ httpRoutes: routes }, req('/z', { headers: { x: '1' } }))).route, 'httproute shop/r rule 0');
  assert.equal(fwd(decide({ httpRoutes: routes }, req('/z'))).route, 'httproute shop/r rule 1');
});

test('HTTPRoute precedence: exact > longest prefix > regex > method > headers > query > oldest route', () => {
  const rules = (tag: string, m: unknown) => ({ matches: [m], backendRefs: [to('v1')], filters: [{ type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'x-rule', value: tag }] } }] });
  const tagOf = (d: RouteDecision) => fwd(d).requestHeaders.set[0]![1];
  const routes = [
    route('z-old', [rules('old-prefix', { path: { type: 'PathPrefix', value: '/api' } })], { created: '2024-01-01T00:00:00Z' }),
    route('a-new', [
      rules('new-prefix', { path: { type: 'PathPrefix', value: '/api' } }),
      rules('regex', { path: { type: 'RegularExpression', value: '/api/.*' } }),
      rules('long', { path: { type: 'PathPrefix', value: '/api/v1' } }),
      rules('exact', { path: { type: 'Exact', value: '/api/v1/x' } }),
      rules('method', { path: { type: 'PathPrefix', value: '/api' }, method: 'POST' }),
      rules('headers', { path: { type: 'PathPrefix', value: '/api' }, headers: [{ name: 'a', value: '1' }] }),
      rules('headers2', { path: { type: 'PathPrefix', value: '/api' }, headers: [{ name: 'a', value: '1' }, { name: 'b', value: '1' }] }),
      rules('query', { path: { type: 'PathPrefix', value: '/api' }, queryParams: [{ name: 'q', value: '1' }] }),
      rules('method+headers', { path: { type: 'PathPrefix', value: '/api' }, method: 'PUT', headers: [{ name: 'a', value: '1' }] }),
    ], { created: '2025-01-01T00:00:00Z' }),
  ];
  const t = (r: ReturnType<typeof req>) => tagOf(decide({ httpRoutes: routes }, r));
  assert.equal(t(req('/api/v1/x')), 'exact');
  assert.equal(t(req('/api/v1/y')), 'long');
  assert.equal(t(req('/api/z', { method: 'POST', headers: { a: '1', b: '1' } })), 'method', 'a method beats more headers');
  assert.equal(t(req('/api/z', { method: 'PUT', headers: { a: '1' } })), 'method+headers');
  assert.equal(t(req('/api/z', { headers: { a: '1', b: '1' } })), 'headers2');
  assert.equal(t(req('/api/z?q=1', { headers: { a: '1' } })), 'headers', 'headers beat query params');
  assert.equal(t(req('/api/z?q=1')), 'query');
  assert.equal(t(req('/api/z')), 'old-prefix', 'the older route wins a tie');
  assert.equal(decide({ httpRoutes: routes }, req('/apix')).kind, 'not-found', 'PathPrefix /api does not match /apix');
});

test('HTTPRoute precedence tie without timestamps: namespace/name alphabetical', () => {
  const mk = (name: string, backend: string) => route(name, [{ matches: [{ path: { type: 'PathPrefix', value: '/' } }], backendRefs: [to(backend)] }]);
  assert.equal(fwd(decide({ httpRoutes: [mk('b', 'v2'), mk('a', 'v1')] }, req('/'))).route, 'httproute shop/a rule 0');
});

test('HTTPRoute parentRef port limits the route to that service port', () => {
  const routes = [route('r', [{ backendRefs: [to('v1')] }], { port: 8080 })];
  assert.equal(fwd(decide({ httpRoutes: routes }, req('/'), 8080)).backend.name, 'v1');
  assert.equal(fwd(decide({ httpRoutes: routes }, req('/'), 80)).route, 'default');
});

test('HTTPRoute bound to a Gateway (an ingress gateway\'s) is not applied by the waypoint; without group "" it is ignored with a warning', () => {
  const gw = route('gw', [{ backendRefs: [to('v1')] }], { parent: { name: 'waypoint' } });
  const nogroup = route('ng', [{ backendRefs: [to('v1')] }], { parent: { kind: 'Service', name: 'web' } });
  const { table, warnings } = compileRoutes({ httpRoutes: [gw, nogroup], virtualServices: [], services: SERVICES });
  assert.equal(fwd(decideRoute(table, { hostname: 'web.shop.svc.cluster.local', port: 80 }, req('/'), never)).route, 'default');
  assert.ok(!warnings.some((w) => /HTTPRoute shop\/gw/.test(w)), 'ambit validate warns for a waypoint parent; the waypoint stays quiet');
  assert.ok(warnings.some((w) => /HTTPRoute shop\/ng.*group ""/.test(w)), warnings.join('\n'));
});

test('weighted backends: 90/10 over 10,000 seeded draws; weight 0 never chosen', () => {
  const routes = [route('r', [{ backendRefs: [{ ...to('v1'), weight: 90 }, { ...to('v2'), weight: 10 }, { ...to('shadow'), weight: 0 }] }])];
  const { table } = compileRoutes({ httpRoutes: routes, virtualServices: [], services: SERVICES });
  const random = seeded(42);
  const counts: Record<string, number> = {};
  for (let i = 0; i < 10_000; i++) {
    const d = fwd(decideRoute(table, { hostname: 'web.shop.svc.cluster.local', port: 80 }, req('/'), random));
    counts[d.backend.name] = (counts[d.backend.name] ?? 0) + 1;
  }
  assert.equal(counts.shadow, undefined);
  assert.ok(Math.abs(counts.v1! - 9000) < 200, JSON.stringify(counts));
  assert.ok(Math.abs(counts.v2! - 1000) < 200, JSON.stringify(counts));
});

test('every weight 0 (or no backendRefs) -> 500', () => {
  const a = decide({ httpRoutes: [route('r', [{ backendRefs: [{ ...to('v1'), weight: 0 }] }])] }, req('/'));
  assert.deepEqual(a, { kind: 'not-found', route: 'httproute shop/r rule 0', status: 500, reason: 'no-backends' });
  assert.equal(decide({ httpRoutes: [route('r', [{}])] }, req('/')).kind, 'not-found');
});

test('backend naming a missing Service is still forwarded, marked backendMissing (proxy answers 500)', () => {
  const { table, warnings } = compileRoutes({ httpRoutes: [route('r', [{ backendRefs: [to('ghost')] }])], virtualServices: [], services: SERVICES });
  const d = fwd(decideRoute(table, { hostname: 'web.shop.svc.cluster.local', port: 80 }, req('/'), never));
  assert.deepEqual(d.backend, { namespace: 'shop', name: 'ghost', port: 80 });
  assert.equal(d.backendMissing, true);
  assert.ok(warnings.some((w) => /ghost does not exist/.test(w)));
});

test('filters: request/response header modifiers, rule and backend level; first of a name wins', () => {
  const d = fwd(decide({ httpRoutes: [route('r', [{
    filters: [
      { type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'X-A', value: '1' }, { name: 'x-a', value: 'dup' }], add: [{ name: 'x-b', value: '2' }], remove: ['X-C'] } },
      { type: 'ResponseHeaderModifier', responseHeaderModifier: { set: [{ name: 'x-r', value: 'r' }] } },
    ],
    backendRefs: [{ ...to('v1'), filters: [{ type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'x-backend', value: 'v1' }] } }] }],
  }])] }, req('/')));
  assert.deepEqual(d.requestHeaders, { set: [['x-a', '1'], ['x-backend', 'v1']], add: [['x-b', '2']], remove: ['x-c'] });
  assert.deepEqual(d.responseHeaders, { set: [['x-r', 'r']], add: [], remove: [] });
  assert.deepEqual(applyHeaderEdits({ 'x-c': 'gone', 'x-b': '1', 'x-a': 'old' }, d.requestHeaders), { 'x-a': '1', 'x-b': ['1', '2'], 'x-backend': 'v1' });
});

test('ReplacePrefixMatch follows the Gateway API table', () => {
  const table: [string, string, string, string][] = [
    ['/foo/bar', '/foo', '/xyz', '/xyz/bar'], ['/foo/bar', '/foo', '/xyz/', '/xyz/bar'], ['/foo/bar', '/foo/', '/xyz', '/xyz/bar'],
    ['/foo/bar', '/foo/', '/xyz/', '/xyz/bar'], ['/foo', '/foo', '/xyz', '/xyz'], ['/foo/', '/foo', '/xyz', '/xyz/'],
    ['/foo/bar', '/foo', '', '/bar'], ['/foo/', '/foo', '', '/'], ['/foo', '/foo', '', '/'], ['/foo/', '/foo', '/', '/'], ['/foo', '/foo', '/', '/'],
  ];
  for (const [path, prefix, repl, want] of table) {
    assert.equal(replacePrefixSegments(path, prefix, repl), want, `${path} ${prefix} ${repl}`);
    const d = fwd(decide({ httpRoutes: [route('r', [{ matches: [{ path: { type: 'PathPrefix', value: prefix } }], filters: [{ type: 'URLRewrite', urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: repl } } }], backendRefs: [to('v1')] }])] }, req(path + '?q=1')));
    assert.equal(d.path ?? path + '?q=1', want + '?q=1', `decision for ${path} ${prefix} ${repl}`);
  }
});

test('URLRewrite: full path and hostname', () => {
  const d = fwd(decide({ httpRoutes: [route('r', [{ filters: [{ type: 'URLRewrite', urlRewrite: { hostname: 'api.internal', path: { type: 'ReplaceFullPath', replaceFullPath: '/new' } } }], backendRefs: [to('v1')] }])] }, req('/old/x?a=1')));
  assert.equal(d.path, '/new?a=1');
  assert.equal(d.host, 'api.internal');
});

test('RequestRedirect: defaults, scheme port, prefix replacement, status', () => {
  const mk = (rr: unknown, match?: unknown) => decide({ httpRoutes: [route('r', [{ ...(match ? { matches: [match] } : {}), filters: [{ type: 'RequestRedirect', requestRedirect: rr }], backendRefs: [to('v1')] }])] }, req('/old/page?x=1', { host: 'web.shop.svc.cluster.local' }), 8080);
  assert.deepEqual(mk({}), { kind: 'redirect', route: 'httproute shop/r rule 0', status: 302, location: 'http://web.shop.svc.cluster.local:8080/old/page?x=1' });
  assert.deepEqual(mk({ scheme: 'https', hostname: 'example.com', statusCode: 301 }), { kind: 'redirect', route: 'httproute shop/r rule 0', status: 301, location: 'https://example.com/old/page?x=1' });
  assert.equal((mk({ port: 9443, scheme: 'https' }) as { location: string }).location, 'https://web.shop.svc.cluster.local:9443/old/page?x=1');
  assert.equal((mk({ path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/new' } }, { path: { type: 'PathPrefix', value: '/old' } }) as { location: string }).location, 'http://web.shop.svc.cluster.local:8080/new/page?x=1');
  assert.equal((mk({ path: { type: 'ReplaceFullPath', replaceFullPath: '/x' } }) as { location: string }).location, 'http://web.shop.svc.cluster.local:8080/x?x=1');
});

test('RequestMirror: percent, fraction, default 100; missing mirror backend dropped', () => {
  const d = fwd(decide({ httpRoutes: [route('r', [{ filters: [
    { type: 'RequestMirror', requestMirror: { backendRef: to('shadow') } },
    { type: 'RequestMirror', requestMirror: { backendRef: to('shadow'), percent: 25 } },
    { type: 'RequestMirror', requestMirror: { backendRef: to('shadow'), fraction: { numerator: 1, denominator: 8 } } },
    { type: 'RequestMirror', requestMirror: { backendRef: to('nothing') } },
  ], backendRefs: [to('v1')] }])] }, req('/')));
  assert.deepEqual(d.mirrors.map((m) => m.percent), [100, 25, 12.5]);
  assert.deepEqual(d.mirrors[0]!.backend, { namespace: 'shop', name: 'shadow', port: 80 });
});

test('timeouts and retry of an HTTPRoute rule', () => {
  const d = fwd(decide({ httpRoutes: [route('r', [{ timeouts: { request: '10s', backendRequest: '500ms' }, retry: { attempts: 3, codes: [502, 503], backoff: '100ms' }, backendRefs: [to('v1')] }])] }, req('/')));
  assert.deepEqual(d.timeouts, { requestMs: 10_000, backendRequestMs: 500 });
  assert.deepEqual(d.retry, { attempts: 3, codes: [502, 503], backoffMs: 100, retryOnConnectFailure: true, perTryTimeoutMs: 500 });
  const noRetry = fwd(decide({ httpRoutes: [route('r', [{ retry: { attempts: 0 }, timeouts: { request: '0s' }, backendRefs: [to('v1')] }])] }, req('/')));
  assert.equal(noRetry.retry, undefined);
  assert.deepEqual(noRetry.timeouts, {});
  const dflt = fwd(decide({ httpRoutes: [route('r', [{ retry: {}, backendRefs: [to('v1')] }])] }, req('/')));
  assert.deepEqual(dflt.retry, { attempts: 2, codes: [], backoffMs: 25, retryOnConnectFailure: true });
});

test('duration parsing', () => {
  assert.equal(parseGatewayDuration('10s'), 10_000);
  assert.equal(parseGatewayDuration('1m30s'), 90_000);
  assert.equal(parseGatewayDuration('500ms'), 500);
  assert.equal(parseGatewayDuration('1h'), 3_600_000);
  assert.equal(parseGatewayDuration('1.5s'), undefined);
  assert.equal(parseGatewayDuration('10sec'), undefined);
  assert.equal(parseIstioDuration('1.5s'), 1500);
  assert.equal(parseIstioDuration('100ms'), 100);
  assert.equal(parseIstioDuration('2m'), 120_000);
  assert.equal(parseIstioDuration('5'), undefined);
});

// ---- VirtualService ----

test('VirtualService: rules in order, first match wins; uri/headers/query/method/port; 404 when none matches', () => {
  const v = vs('v', [
    { match: [{ uri: { prefix: '/api' }, headers: { 'x-canary': { exact: 'yes' } } }], route: [{ destination: { host: 'v2' } }] },
    { match: [{ uri: { exact: '/exact' } }, { uri: { regex: '/r[0-9]+' } }], route: [{ destination: { host: 'v1' } }] },
    { match: [{ queryParams: { debug: { exact: '1' } }, method: { exact: 'POST' } }], route: [{ destination: { host: 'shadow.shop.svc.cluster.local' } }] },
    { match: [{ port: 8080 }], route: [{ destination: { host: 'v1' } }] },
    { match: [{ uri: { prefix: '/api' } }], route: [{ destination: { host: 'v1' } }] },
    { match: [{ headers: { 'x-present': {} } }], route: [{ destination: { host: 'v2' } }] },
  ]);
  const name = (r: ReturnType<typeof req>, port = 80) => { const d = decide({ virtualServices: [v] }, r, port); return d.kind === 'forward' ? `${d.route}:${d.backend.name}` : d.kind; };
  assert.equal(name(req('/api/x', { headers: { 'x-canary': 'yes' } })), 'virtualservice shop/v route 0:v2');
  assert.equal(name(req('/apix')), 'virtualservice shop/v route 4:v1', 'uri.prefix is a plain prefix');
  assert.equal(name(req('/exact')), 'virtualservice shop/v route 1:v1');
  assert.equal(name(req('/r12')), 'virtualservice shop/v route 1:v1');
  assert.equal(name(req('/x?debug=1', { method: 'POST' })), 'virtualservice shop/v route 2:shadow');
  assert.equal(name(req('/x'), 8080), 'virtualservice shop/v route 3:v1');
  assert.equal(name(req('/x', { headers: { 'x-present': '' } })), 'virtualservice shop/v route 5:v2');
  assert.deepEqual(decide({ virtualServices: [v] }, req('/x')), { kind: 'not-found', route: 'virtualservice shop/v', status: 404, reason: 'no-match' });
});

test('VirtualService hosts: short name, FQDN, VIP; gateways without mesh ignored', () => {
  for (const hosts of [['web'], ['web.shop.svc.cluster.local'], ['10.96.0.3'], ['*.shop.svc.cluster.local']]) {
    assert.equal(fwd(decide({ virtualServices: [vs('v', [{ route: [{ destination: { host: 'v1' } }] }], { hosts })] }, req('/'))).backend.name, 'v1', hosts[0]);
  }
  const other = { ...vs('v', [{ route: [{ destination: { host: 'v1' } }] }]), metadata: { name: 'v', namespace: 'elsewhere' } };
  assert.equal(fwd(decide({ virtualServices: [other] }, req('/'))).route, 'default', 'a short name resolves in the VirtualService namespace');
  assert.equal(fwd(decide({ virtualServices: [vs('v', [{ route: [{ destination: { host: 'v1' } }] }], { gateways: ['istio-system/ingress'] })] }, req('/'))).route, 'default');
});

test('VirtualService destination port: explicit, the requested port, or the only port', () => {
  const d1 = fwd(decide({ virtualServices: [vs('v', [{ route: [{ destination: { host: 'web' } }] }])] }, req('/'), 8080));
  assert.deepEqual(d1.backend, { namespace: 'shop', name: 'web', port: 8080 });
  const d2 = fwd(decide({ virtualServices: [vs('v', [{ route: [{ destination: { host: 'web', port: { number: 80 } } }] }])] }, req('/'), 8080));
  assert.equal(d2.backend.port, 80);
});

test('VirtualService weights split traffic (80/20 seeded); a subset is carried to the decision', () => {
  const v = vs('v', [{ route: [{ destination: { host: 'v1', subset: 'a' }, weight: 80 }, { destination: { host: 'v2' }, weight: 20 }] }]);
  const { table, warnings } = compileRoutes({ httpRoutes: [], virtualServices: [v], services: SERVICES });
  assert.deepEqual(warnings, []);
  assert.equal(fwd(decideRoute(table, { hostname: 'web.shop.svc.cluster.local', port: 80 }, req('/'), () => 0)).backend.subset, 'a');
  const random = seeded(7);
  let v2 = 0;
  for (let i = 0; i < 10_000; i++) if (fwd(decideRoute(table, { hostname: 'web.shop.svc.cluster.local', port: 80 }, req('/'), random)).backend.name === 'v2') v2++;
  assert.ok(Math.abs(v2 - 2000) < 200, String(v2));
});

test('VirtualService rewrite, redirect, headers, timeout, retries, mirror', () => {
  const d = fwd(decide({ virtualServices: [vs('v', [{
    match: [{ uri: { prefix: '/old' } }],
    rewrite: { uri: '/new', authority: 'api.internal' },
    headers: { request: { set: { 'X-A': '1' }, remove: ['x-b'] }, response: { add: { 'x-r': '2' } } },
    timeout: '1.5s',
    retries: { attempts: 4, perTryTimeout: '200ms', retryOn: '5xx,reset' },
    mirror: { host: 'shadow' }, mirrorPercentage: { value: 12.5 },
    route: [{ destination: { host: 'v1' }, headers: { request: { add: { 'x-dest': 'v1' } } } }],
  }])] }, req('/old/thing?q=1')));
  assert.equal(d.path, '/new/thing?q=1');
  assert.equal(d.host, 'api.internal');
  assert.deepEqual(d.requestHeaders, { set: [['x-a', '1']], add: [['x-dest', 'v1']], remove: ['x-b'] });
  assert.deepEqual(d.responseHeaders, { set: [], add: [['x-r', '2']], remove: [] });
  assert.deepEqual(d.timeouts, { requestMs: 1500 });
  assert.equal(d.retry!.attempts, 4);
  assert.equal(d.retry!.perTryTimeoutMs, 200);
  assert.equal(d.retry!.retryOnConnectFailure, true);
  assert.equal(d.retry!.codes.length, 100);
  assert.deepEqual(d.mirrors, [{ backend: { namespace: 'shop', name: 'shadow', port: 80 }, percent: 12.5 }]);

  const exactRewrite = fwd(decide({ virtualServices: [vs('v', [{ match: [{ uri: { exact: '/a/b' } }], rewrite: { uri: '/c' }, route: [{ destination: { host: 'v1' } }] }])] }, req('/a/b')));
  assert.equal(exactRewrite.path, '/c', 'after an exact match the whole path is replaced');
  const regexRewrite = fwd(decide({ virtualServices: [vs('v', [{ rewrite: { uriRegexRewrite: { match: '^/svc/([^/]+)', rewrite: '/\\1/x' } }, route: [{ destination: { host: 'v1' } }] }])] }, req('/svc/users/1')));
  assert.equal(regexRewrite.path, '/users/x/1');

  const redirect = decide({ virtualServices: [vs('v', [{ redirect: { uri: '/moved', authority: 'new.example' } }])] }, req('/p?x=1', { host: 'web.shop.svc.cluster.local' }));
  assert.deepEqual(redirect, { kind: 'redirect', route: 'virtualservice shop/v route 0', status: 301, location: 'http://new.example/moved?x=1' });
  const https = decide({ virtualServices: [vs('v', [{ redirect: { scheme: 'https', derivePort: 'FROM_PROTOCOL_DEFAULT', redirectCode: 308 } }])] }, req('/p'));
  assert.deepEqual(https, { kind: 'redirect', route: 'virtualservice shop/v route 0', status: 308, location: 'https://web.shop.svc.cluster.local/p' });
});

test('VirtualService retries: absent -> Istio default; attempts 0 -> none; retryOn codes', () => {
  const r = (retries: unknown) => fwd(decide({ virtualServices: [vs('v', [{ ...(retries ? { retries } : {}), route: [{ destination: { host: 'v1' } }] }])] }, req('/'))).retry;
  assert.deepEqual(r(undefined), { attempts: 2, codes: [503], backoffMs: 25, retryOnConnectFailure: true });
  assert.equal(r({ attempts: 0 }), undefined);
  assert.deepEqual(r({ attempts: 3 }), { attempts: 3, codes: [503], backoffMs: 25, retryOnConnectFailure: true });
  assert.deepEqual(r({ attempts: 1, retryOn: 'gateway-error,429' }), { attempts: 1, codes: [429, 502, 503, 504], backoffMs: 25, retryOnConnectFailure: true });
  assert.deepEqual(r({ attempts: 1, retryOn: '503' }), { attempts: 1, codes: [503], backoffMs: 25, retryOnConnectFailure: false });
});

test('VirtualService fault percentages are decided with random()', () => {
  const v = vs('v', [{ fault: { delay: { fixedDelay: '2s', percentage: { value: 30 } }, abort: { httpStatus: 503, percentage: { value: 10 } } }, route: [{ destination: { host: 'v1' } }] }]);
  const { table } = compileRoutes({ httpRoutes: [], virtualServices: [v], services: SERVICES });
  const random = seeded(1);
  let delays = 0;
  let aborts = 0;
  for (let i = 0; i < 10_000; i++) {
    const d = fwd(decideRoute(table, { hostname: 'web.shop.svc.cluster.local', port: 80 }, req('/'), random));
    if (d.fault?.delayMs !== undefined) { assert.equal(d.fault.delayMs, 2000); delays++; }
    if (d.fault?.abortStatus !== undefined) { assert.equal(d.fault.abortStatus, 503); aborts++; }
  }
  assert.ok(Math.abs(delays - 3000) < 200, String(delays));
  assert.ok(Math.abs(aborts - 1000) < 150, String(aborts));
  // Exact draws: delay uses the first random(), abort the second.
  const draws = [0.29, 0.5];
  const d = fwd(decideRoute(table, { hostname: 'web.shop.svc.cluster.local', port: 80 }, req('/'), () => draws.shift()!));
  assert.deepEqual(d.fault, { delayMs: 2000 });
  const none = vs('n', [{ fault: { abort: { httpStatus: 500 } }, route: [{ destination: { host: 'v1' } }] }]);
  assert.equal(fwd(decide({ virtualServices: [none] }, req('/'), 80, () => 0)).fault, undefined, 'no percentage: never fires');
});

test('HTTPRoute and VirtualService for one Service: the HTTPRoute wins, with a warning', () => {
  const { table, warnings } = compileRoutes({
    httpRoutes: [route('r', [{ backendRefs: [to('v1')] }], { port: 80 })],
    virtualServices: [vs('v', [{ route: [{ destination: { host: 'v2' } }] }])],
    services: SERVICES,
  });
  const at = (port: number) => fwd(decideRoute(table, { hostname: 'web.shop.svc.cluster.local', port }, req('/'), never));
  assert.equal(at(80).route, 'httproute shop/r rule 0');
  assert.equal(at(8080).route, 'default', 'the VirtualService is ignored for the whole Service');
  assert.ok(warnings.some((w) => /VirtualService shop\/v: ignored .* HTTPRoute/.test(w)), warnings.join('\n'));
});

test('two VirtualServices for one host: the oldest applies', () => {
  const older = vs('b-older', [{ route: [{ destination: { host: 'v1' } }] }], {}, '2024-01-01T00:00:00Z');
  const newer = vs('a-newer', [{ route: [{ destination: { host: 'v2' } }] }], {}, '2025-01-01T00:00:00Z');
  const { table, warnings } = compileRoutes({ httpRoutes: [], virtualServices: [newer, older], services: SERVICES });
  assert.equal(fwd(decideRoute(table, { hostname: 'web.shop.svc.cluster.local', port: 80 }, req('/'), never)).backend.name, 'v1');
  assert.ok(warnings.some((w) => /a-newer: ignored/.test(w)));
});

test('the table is immutable and decisions do not share state with it', () => {
  const { table } = compileRoutes({ httpRoutes: [route('r', [{ filters: [{ type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'a', value: '1' }] } }], backendRefs: [to('v1')] }])], virtualServices: [], services: SERVICES });
  assert.ok(Object.isFrozen(table));
  const d1 = fwd(decideRoute(table, { hostname: 'web.shop.svc.cluster.local', port: 80 }, req('/'), never));
  d1.requestHeaders.set.push(['b', '2']);
  d1.retry!.codes.push(999);
  const d2 = fwd(decideRoute(table, { hostname: 'web.shop.svc.cluster.local', port: 80 }, req('/'), never));
  assert.deepEqual(d2.requestHeaders.set, [['a', '1']]);
  assert.deepEqual(d2.retry!.codes, [503]);
});

// ---- Regular expressions are RE2 (linear time), as Envoy's safe_regex ----
test('a backtracking-prone regex route is matched in linear time against a hostile path and header', () => {
  const routes = [route('r', [{ matches: [{ path: { type: 'RegularExpression', value: '/(a+)+b' }, headers: [{ type: 'RegularExpression', name: 'x-id', value: '(x+x+)+y' }] }], backendRefs: [to('v1')] }])];
  const hostile = req(`/${'a'.repeat(5000)}!`, { headers: { 'x-id': `${'x'.repeat(5000)}!` } });
  const started = performance.now();
  for (let i = 0; i < 20; i++) assert.equal(decide({ httpRoutes: routes }, hostile).kind, 'not-found', 'no rule matches: 404 NR, as Envoy answers');
  const ms = performance.now() - started;
  // A backtracking engine needs about 2^n steps here (n = 5000): it would never finish.
  assert.ok(ms < 2_000, `20 decisions took ${Math.round(ms)} ms`);
  assert.equal(fwd(decide({ httpRoutes: routes }, req('/aaab', { headers: { 'x-id': 'xxxy' } }))).backend.name, 'v1');
});

test('VirtualService: ignoreUriCase regex, and a regex rewrite whose replacement has a literal $', () => {
  const ci = fwd(decide({ virtualServices: [vs('v', [{ match: [{ uri: { regex: '/API/v[0-9]+' }, ignoreUriCase: true }], route: [{ destination: { host: 'v1' } }] }])] }, req('/api/V2')));
  assert.equal(ci.backend.name, 'v1');
  const dollar = fwd(decide({ virtualServices: [vs('v', [{ rewrite: { uriRegexRewrite: { match: '^/p/(\\w+)', rewrite: '/$cost/\\1' } }, route: [{ destination: { host: 'v1' } }] }])] }, req('/p/abc')));
  assert.equal(dollar.path, '/$cost/abc');
});
