// Property tests of what the ingress gateway and the DestinationRule load balancer read from
// a client's request (hostile bytes): the virtual host of any Host value, the hash key of any
// headers, cookies and query. Whatever the input: an answer, never a throw or a slow case; a
// hash key always lands on one of the candidates, the same one each time.
// `npm run fuzz` runs the same properties with random seeds for longer (test/helpers/fuzz.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { hostnameMatches, intersectHostnames } from '../../src/gateway/ingress-config.js';
import { hashKeyOf, pickEndpoint } from '../../src/waypoint/traffic/lb-pick.js';
import type { LbPolicy } from '../../src/waypoint/traffic/policy.js';
import { fuzz, quick } from '../helpers/fuzz.js';

const SLOW_MS = 250;
const label = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,8}[a-z0-9])?$/);
const hostname = fc.array(label, { minLength: 1, maxLength: 5 }).map((ls) => ls.join('.'));
const pattern = fc.oneof(hostname, hostname.map((h) => `*.${h}`), fc.constant('*'));
const hostile = fc.oneof(fc.string({ maxLength: 200 }), fc.stringMatching(/^[*.a-z;=, %\\/:[\]-]{0,120}$/));

test('property: hostname matching and intersection answer any input, quickly, and agree with each other', () => {
  fuzz('ingress: hostnames', fc.property(pattern, fc.oneof(hostname, hostile), fc.option(fc.array(fc.oneof(pattern, hostile), { maxLength: 4 }), { nil: undefined }), (p, h, route) => {
    const m = quick(() => hostnameMatches(p, h), SLOW_MS, 'matching');
    assert.equal(typeof m, 'boolean');
    if (p === h) assert.equal(m, true);
    const both = quick(() => intersectHostnames(p === '*' ? undefined : p, route), SLOW_MS, 'intersecting');
    // Every hostname a route gets on a listener is one the listener covers.
    for (const x of both) assert.ok(x === '*' || p === '*' || hostnameMatches(p, x), `${x} under ${p}`);
  }), { seed: 1801, numRuns: 400 });
});

const policy = fc.constantFrom<LbPolicy>(
  { kind: 'HASH', by: 'header', name: 'x-user' }, { kind: 'HASH', by: 'cookie', name: 'sid' },
  { kind: 'HASH', by: 'query', name: 'u' }, { kind: 'HASH', by: 'source-ip' },
);
const headers = fc.record({
  'x-user': fc.option(fc.oneof(hostile, fc.array(hostile, { maxLength: 3 })), { nil: undefined }),
  cookie: fc.option(fc.oneof(hostile, fc.array(hostile, { maxLength: 3 })), { nil: undefined }),
}, { requiredKeys: [] });

test('property: any request gives a hash key or none; a key always picks the same candidate', () => {
  fuzz('lb: hash keys', fc.property(policy, headers, fc.oneof(hostile, hostile.map((q) => `/p?${q}`)), hostile, fc.uniqueArray(label, { minLength: 1, maxLength: 6 }), (p, h, path, ip, uids) => {
    const key = quick(() => hashKeyOf(p, { headers: h as Record<string, string | string[] | undefined>, path, sourceIp: ip }), SLOW_MS, 'hash key');
    assert.ok(key === undefined || typeof key === 'string');
    const candidates = uids.map((uid) => ({ uid, inFlight: 0 }));
    const a = pickEndpoint({ policy: p, candidates, cursor: 0, hashKey: key, random: () => 0.5 });
    assert.ok(a && uids.includes(a.uid));
    if (key !== undefined) assert.equal(pickEndpoint({ policy: p, candidates: [...candidates].reverse(), cursor: 9, hashKey: key, random: () => 0.1 })!.uid, a!.uid, 'order and cursor do not matter');
  }), { seed: 1802, numRuns: 300 });
});
