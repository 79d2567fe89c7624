// DestinationRule traffic policies: the pure decisions (policy merge, load balancer, circuit
// breakers, outlier detection) as tables, and the cluster state over a fake clock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileTrafficPolicies, DEFAULT_POOL, lbOf, mergePolicies, poolOf, UNLIMITED, type EffectivePolicy, type LbPolicy } from '../../src/waypoint/traffic/policy.js';
import { hashKeyOf, pickEndpoint } from '../../src/waypoint/traffic/lb-pick.js';
import { admit, canStart, emptyCounts, retryAllowed } from '../../src/waypoint/traffic/pool-admission.js';
import { OutlierState } from '../../src/waypoint/traffic/outlier.js';
import { UpstreamClusters } from '../../src/waypoint/traffic/clusters.js';
import { FakeClock } from '../../src/core/clock.js';
import type { DestinationRuleResource } from '../../src/config/egress-resources.js';

const dr = (ns: string, name: string, spec: DestinationRuleResource['spec'], created?: string): DestinationRuleResource => ({
  apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name, namespace: ns, ...(created ? { creationTimestamp: created } : {}) }, spec,
});

test('lbOf: the simple kinds and the consistent hash keys', () => {
  const cases: [Parameters<typeof lbOf>[0], LbPolicy][] = [
    [undefined, { kind: 'LEAST_REQUEST' }],
    [{ simple: 'LEAST_CONN' }, { kind: 'LEAST_REQUEST' }],
    [{ simple: 'ROUND_ROBIN' }, { kind: 'ROUND_ROBIN' }],
    [{ simple: 'RANDOM' }, { kind: 'RANDOM' }],
    [{ consistentHash: { httpHeaderName: 'X-User' } }, { kind: 'HASH', by: 'header', name: 'x-user' }],
    [{ consistentHash: { httpCookie: { name: 'sid', ttl: '10s' } } }, { kind: 'HASH', by: 'cookie', name: 'sid', ttlS: 10 }],
    [{ consistentHash: { useSourceIp: true } }, { kind: 'HASH', by: 'source-ip' }],
    [{ consistentHash: { httpQueryParameterName: 'u' } }, { kind: 'HASH', by: 'query', name: 'u' }],
  ];
  for (const [input, want] of cases) assert.deepEqual(lbOf(input), want, JSON.stringify(input));
});

test('poolOf: unset limits are unlimited (Envoy 2^32-1); durations parsed', () => {
  assert.deepEqual(poolOf(undefined), DEFAULT_POOL);
  assert.deepEqual(poolOf({ tcp: { maxConnections: 1, connectTimeout: '250ms' }, http: { http1MaxPendingRequests: 2, http2MaxRequests: 3, maxRetries: 4, maxRequestsPerConnection: 5, idleTimeout: '2s' } }),
    { maxConnections: 1, maxPending: 2, maxRequests: 3, maxRetries: 4, maxRequestsPerConnection: 5, connectTimeoutMs: 250, idleTimeoutMs: 2000 });
});

test('mergePolicies: port level beats the rule, the subset beats both, each section replaced whole', () => {
  const top = { loadBalancer: { simple: 'RANDOM' as const }, connectionPool: { tcp: { maxConnections: 5 } }, portLevelSettings: [{ port: { number: 80 }, connectionPool: { http: { maxRetries: 1 } } }] };
  const sub = { loadBalancer: { simple: 'ROUND_ROBIN' as const } };
  assert.deepEqual(mergePolicies([top], 80), { loadBalancer: { simple: 'RANDOM' }, connectionPool: { http: { maxRetries: 1 } } });
  assert.deepEqual(mergePolicies([top], 81), { loadBalancer: { simple: 'RANDOM' }, connectionPool: { tcp: { maxConnections: 5 } } });
  assert.deepEqual(mergePolicies([top, sub], 81), { loadBalancer: { simple: 'ROUND_ROBIN' }, connectionPool: { tcp: { maxConnections: 5 } } });
});

test('compileTrafficPolicies: lookup order proxy ns, host ns, root; short hosts; subsets resolved; oldest wins', () => {
  const rules = [
    dr('shop', 'newer', { host: 'reviews', trafficPolicy: { loadBalancer: { simple: 'RANDOM' } } }, '2026-01-02T00:00:00Z'),
    dr('shop', 'older', { host: 'reviews.shop.svc.cluster.local', trafficPolicy: { loadBalancer: { simple: 'ROUND_ROBIN' } }, subsets: [{ name: 'v1', labels: { version: 'v1' } }] }, '2026-01-01T00:00:00Z'),
    dr('istio-system', 'mesh', { host: '*.svc.cluster.local', trafficPolicy: { connectionPool: { tcp: { maxConnections: 7 } } } }),
    dr('waypoints', 'local', { host: 'ratings.shop.svc.cluster.local', trafficPolicy: { outlierDetection: { consecutive5xxErrors: 2 } } }),
  ];
  const { policies } = compileTrafficPolicies({ rules, proxyNamespace: 'waypoints', rootNamespace: 'istio-system', subsets: new Map([['shop/older', new Map([['v1', ['uid-a']]])]]) });
  const reviews = policies.policyFor('reviews.shop.svc.cluster.local', 'shop', 9080);
  assert.equal(reviews.rule, 'shop/older');
  assert.deepEqual(reviews.lb, { kind: 'ROUND_ROBIN' });
  assert.equal(reviews.subsetUids, undefined);
  const v1 = policies.policyFor('reviews.shop.svc.cluster.local', 'shop', 9080, 'v1');
  assert.deepEqual([...v1.subsetUids!], ['uid-a']);
  assert.notEqual(v1.cluster, reviews.cluster);
  assert.deepEqual([...policies.policyFor('reviews.shop.svc.cluster.local', 'shop', 9080, 'v9').subsetUids!], [], 'an unknown subset selects nothing');
  assert.equal(policies.hasSubset('reviews.shop.svc.cluster.local', 'shop', 'v9'), false);
  const ratings = policies.policyFor('ratings.shop.svc.cluster.local', 'shop', 9080);
  assert.equal(ratings.rule, 'waypoints/local', 'the proxy\'s own namespace first');
  assert.equal(ratings.outlier?.consecutive5xx, 2);
  assert.equal(ratings.outlier?.maxEjectionPercent, 10, 'Istio default');
  assert.equal(policies.policyFor('details.shop.svc.cluster.local', 'shop', 9080).pool.maxConnections, 7, 'the root namespace last');
  assert.equal(policies.policyFor('api.example', 'shop', 443).rule, '');
  assert.equal(policies.policyFor('api.example', 'shop', 443).pool.maxConnections, UNLIMITED);
  assert.equal(policies.policyFor('reviews.shop.svc.cluster.local', 'shop', 9080), reviews, 'one object per cluster');
});

const cands = (...uids: string[]) => uids.map((uid) => ({ uid, inFlight: 0 }));

test('pickEndpoint: round robin, random, least request, empty', () => {
  const rr = { kind: 'ROUND_ROBIN' } as const;
  let cursor = 0;
  const seen: string[] = [];
  for (let i = 0; i < 4; i++) {
    const r = pickEndpoint({ policy: rr, candidates: cands('a', 'b', 'c'), cursor, random: () => 0 })!;
    seen.push(r.uid);
    cursor = r.nextCursor;
  }
  assert.deepEqual(seen, ['a', 'b', 'c', 'a']);
  assert.equal(pickEndpoint({ policy: { kind: 'RANDOM' }, candidates: cands('a', 'b', 'c'), cursor: 0, random: () => 0.7 })!.uid, 'c');
  assert.equal(pickEndpoint({ policy: { kind: 'LEAST_REQUEST' }, candidates: [{ uid: 'a', inFlight: 2 }, { uid: 'b', inFlight: 1 }, { uid: 'c', inFlight: 1 }], cursor: 1, random: () => 0 })!.uid, 'c');
  assert.equal(pickEndpoint({ policy: rr, candidates: [], cursor: 0, random: () => 0 }), undefined);
});

test('pickEndpoint HASH: one key, one endpoint; only the keys of a leaving endpoint move', () => {
  const policy = { kind: 'HASH', by: 'header', name: 'x-user' } as const;
  const all = cands('a', 'b', 'c', 'd');
  const first = new Map<string, string>();
  for (let k = 0; k < 200; k++) {
    const key = `user-${k}`;
    const u = pickEndpoint({ policy, candidates: all, cursor: 0, hashKey: key, random: () => 0 })!.uid;
    assert.equal(pickEndpoint({ policy, candidates: all, cursor: 5, hashKey: key, random: () => 0.9 })!.uid, u, 'stable');
    first.set(key, u);
  }
  const counts = new Map<string, number>();
  for (const u of first.values()) counts.set(u, (counts.get(u) ?? 0) + 1);
  for (const u of ['a', 'b', 'c', 'd']) assert.ok((counts.get(u) ?? 0) > 20, `spread: ${[...counts]}`);
  const without = cands('a', 'b', 'd');
  for (const [key, u] of first) {
    const now = pickEndpoint({ policy, candidates: without, cursor: 0, hashKey: key, random: () => 0 })!.uid;
    if (u !== 'c') assert.equal(now, u, 'a key whose endpoint stayed does not move');
  }
  assert.equal(pickEndpoint({ policy, candidates: all, cursor: 0, random: () => 0.3 })!.uid, 'b', 'no key: random');
});

test('hashKeyOf: header, cookie, source ip, query', () => {
  const req = { headers: { 'x-user': 'jo', cookie: 'a=1; sid=xyz' }, path: '/p?u=42&v=1', sourceIp: '10.0.0.9' };
  assert.equal(hashKeyOf({ kind: 'HASH', by: 'header', name: 'x-user' }, req), 'jo');
  assert.equal(hashKeyOf({ kind: 'HASH', by: 'cookie', name: 'sid' }, req), 'xyz');
  assert.equal(hashKeyOf({ kind: 'HASH', by: 'cookie', name: 'none' }, req), undefined);
  assert.equal(hashKeyOf({ kind: 'HASH', by: 'source-ip' }, req), '10.0.0.9');
  assert.equal(hashKeyOf({ kind: 'HASH', by: 'query', name: 'u' }, req), '42');
  assert.equal(hashKeyOf({ kind: 'ROUND_ROBIN' }, req), undefined);
});

test('admit: circuit breakers as Envoy applies them', () => {
  const limits = { ...DEFAULT_POOL, maxConnections: 1, maxPending: 1, maxRequests: 3 };
  const cases: [string, Parameters<typeof admit>[1], boolean, string][] = [
    ['idle', emptyCounts(), true, 'admitted'],
    ['h1 with a connection busy: waits', { active: 1, activeHttp1: 1, pending: 0, retries: 0 }, true, 'queued'],
    ['h1, one already waiting: overflow', { active: 1, activeHttp1: 1, pending: 1, retries: 0 }, true, 'overflow'],
    ['h2 ignores maxConnections', { active: 1, activeHttp1: 1, pending: 1, retries: 0 }, false, 'admitted'],
    ['h2 at maxRequests: overflow', { active: 3, activeHttp1: 0, pending: 0, retries: 0 }, false, 'overflow'],
  ];
  for (const [name, counts, h1, want] of cases) assert.equal(admit(limits, counts, h1).kind, want, name);
  assert.equal(admit({ ...DEFAULT_POOL, maxConnections: 1, maxPending: UNLIMITED }, { active: 1, activeHttp1: 1, pending: 0, retries: 0 }, true).kind, 'queued');
  assert.equal(canStart(limits, { active: 0, activeHttp1: 0, pending: 1, retries: 0 }, true), true);
  assert.equal(retryAllowed({ ...DEFAULT_POOL, maxRetries: 1 }, { ...emptyCounts(), retries: 1 }), false);
});

const od = { consecutive5xx: 3, consecutiveGateway: 0, intervalMs: 1000, baseEjectionMs: 5000, maxEjectionPercent: 50, minHealthPercent: 0 };

test('OutlierState: consecutive 5xx eject, a success resets, ejection ends after base x times', () => {
  const o = new OutlierState(od);
  let t = 0;
  assert.equal(o.record('a', { kind: 'response', status: 500 }, t, 2), false);
  assert.equal(o.record('a', { kind: 'response', status: 200 }, t, 2), false, 'reset');
  o.record('a', { kind: 'response', status: 500 }, t, 2);
  o.record('a', { kind: 'response', status: 502 }, t, 2);
  assert.equal(o.record('a', { kind: 'connect-failed' }, t, 2), true, 'the third in a row ejects');
  assert.equal(o.isEjected('a', t + 4999), true);
  assert.deepEqual(o.usable([{ uid: 'a' }, { uid: 'b' }], t + 1).map((c) => c.uid), ['b']);
  t += 5000;
  assert.equal(o.isEjected('a', t), false, 'back after baseEjectionTime');
  for (let i = 0; i < 3; i++) o.record('a', { kind: 'response', status: 503 }, t, 2);
  assert.equal(o.isEjected('a', t + 9999), true, 'the second ejection lasts twice as long');
  assert.equal(o.isEjected('a', t + 10_000), false);
});

test('OutlierState: maxEjectionPercent keeps endpoints; gateway errors; panic threshold', () => {
  const o = new OutlierState(od);
  for (let i = 0; i < 3; i++) o.record('a', { kind: 'response', status: 500 }, 0, 2);
  for (let i = 0; i < 3; i++) o.record('b', { kind: 'response', status: 500 }, 0, 2);
  assert.equal(o.ejectedCount(0), 1, '50 %: the second of two is kept');
  const g = new OutlierState({ ...od, consecutive5xx: 0, consecutiveGateway: 2 });
  assert.equal(g.record('a', { kind: 'response', status: 500 }, 0, 4), false);
  g.record('a', { kind: 'response', status: 504 }, 0, 4);
  assert.equal(g.record('a', { kind: 'reset' }, 0, 4), true);
  const p = new OutlierState({ ...od, maxEjectionPercent: 100, minHealthPercent: 60 });
  for (let i = 0; i < 3; i++) p.record('a', { kind: 'response', status: 500 }, 0, 2);
  assert.deepEqual(p.usable([{ uid: 'a' }, { uid: 'b' }], 1).map((c) => c.uid), ['a', 'b'], 'below minHealthPercent every endpoint is used');
  const solo = new OutlierState(od);
  for (let i = 0; i < 3; i++) solo.record('a', { kind: 'response', status: 500 }, 0, 1);
  assert.deepEqual(solo.usable([{ uid: 'a' }], 1), [], 'all ejected: nothing usable (503 UH)');
});

const policy = (p: Partial<EffectivePolicy>): EffectivePolicy => ({ rule: 'x/y', cluster: 'c', lb: { kind: 'ROUND_ROBIN' }, pool: DEFAULT_POOL, limited: p.pool !== undefined, ...p });

test('UpstreamClusters: a waiting request starts when a lease is released; overflow beyond the line', async () => {
  const clusters = new UpstreamClusters({ clock: new FakeClock(), random: () => 0 });
  const pol = policy({ pool: { ...DEFAULT_POOL, maxConnections: 1, maxPending: 1 } });
  const a = await clusters.acquire(pol, true);
  assert.equal(a.kind, 'lease');
  let bStarted = false;
  const b = clusters.acquire(pol, true).then((x) => { bStarted = true; return x; });
  const c = await clusters.acquire(pol, true);
  assert.deepEqual(c, { kind: 'overflow', reason: 'max-pending' });
  await new Promise((r) => setImmediate(r));
  assert.equal(bStarted, false);
  if (a.kind === 'lease') { a.lease.release(); a.lease.release(); }
  const bl = await b;
  assert.equal(bl.kind, 'lease');
  void clusters.acquire(pol, true);
  assert.deepEqual(clusters.describe(), [{ cluster: 'c', active: 1, activeHttp1: 1, pending: 1, retries: 0, waiting: 1, ejected: 0 }], 'b holds the connection, d waits');
  assert.equal(clusters.retryStart(pol), true);
  clusters.retryDone(pol);
});

test('UpstreamClusters: outlier ejection over the fake clock, recovery after the base time', async () => {
  const clock = new FakeClock();
  const clusters = new UpstreamClusters({ clock, random: () => 0 });
  const pol = policy({ outlier: { ...od, maxEjectionPercent: 100 } });
  const eps = [{ uid: 'bad' }, { uid: 'good' }];
  for (let i = 0; i < 3; i++) clusters.record(pol, 'bad', { kind: 'response', status: 500 }, 2);
  assert.deepEqual(clusters.usable(pol, eps).map((e) => e.uid), ['good']);
  await clock.advance(5000);
  assert.deepEqual(clusters.usable(pol, eps).map((e) => e.uid), ['bad', 'good']);
});
