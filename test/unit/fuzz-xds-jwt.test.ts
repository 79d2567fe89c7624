// Property tests of two more parsers of bytes from elsewhere:
// - the workload API codec and Ambit's config resource (what a proxy decodes from xDS): any
//   bytes, and messages of the right schema with any field values, decode or are refused with
//   an XdsDecodeError naming the field (the ADS client NACKs that resource with its message);
//   what is accepted encodes back to bytes that decode to the same value;
// - JWT verification and the request authentication around it: any token, any header, query
//   or cookie gets a verdict, never a throw; a token signed by a key of the set verifies, and
//   any change to its header or payload, or its signature bytes, makes it fail.
// `npm run fuzz` runs the same properties with random seeds for longer (test/helpers/fuzz.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  decodeAddress, decodeAddressResource, decodeAuthorization, decodeAuthorizationResource, encodeAddress, encodeAuthorization, XdsDecodeError,
} from '../../src/xds/codec.js';
import { configResource, decodeConfigResource } from '../../src/xds/config-resource.js';
import { workloadRoot } from '../../src/xds/protos.js';
import { ADDRESS_TYPE_URL } from '../../src/xds/workload-api.js';
import { MAX_TOKEN_CHARS, verifyJwt, type Jwks } from '../../src/waypoint/jwt.js';
import { authenticateRequest, type JwtProvider } from '../../src/waypoint/request-authn.js';
import { fuzz, fuzzAsync, quick, withDeadline } from '../helpers/fuzz.js';
import { message } from '../helpers/proto-arbitrary.js';
import { authorization, fullMatch, service, workload } from '../helpers/xds-fixtures.js';
import { makeKey, signJws } from '../helpers/jwt-signer.js';

const SLOW_MS = 250;

/** The decoder's contract: a value, or an XdsDecodeError whose message starts with the field's path. */
function decodesOrRefuses<T>(f: () => T): T | undefined {
  try {
    return quick(f, SLOW_MS, 'decoding');
  } catch (e: unknown) {
    assert.ok(e instanceof XdsDecodeError, `not an XdsDecodeError: ${e instanceof Error ? e.stack : String(e)}`);
    assert.equal(e.code, 'AMBIT_ERR_XDS');
    assert.ok(e.message.startsWith(`${e.path}: `) && e.message.length > e.path.length + 2, e.message);
    // The path names the field (a map key inside it is the sender's text).
    assert.match(e.path, /^(address|workload|service|authorization|config)\b/, e.path);
    return undefined;
  }
}

const validBytes = [
  encodeAddress({ workload: workload(1, { addresses: ['10.0.0.1', 'fd00::1'], waypoint: { address: { network: '', address: '10.0.0.9' }, hboneMtlsPort: 15008 } }) }),
  encodeAddress({ service: service(2) }),
  encodeAuthorization(authorization(3, { rules: [{ clauses: [{ matches: [fullMatch()] }] }] })),
];

/** Bytes of a valid resource with a few bytes changed, dropped, added or cut. */
const mutatedBytes = fc.tuple(fc.constantFrom(...validBytes), fc.array(fc.tuple(fc.constantFrom('set', 'drop', 'insert', 'cut'), fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }))
  .map(([base, edits]) => {
    let b = Buffer.from(base);
    for (const [op, at, v] of edits) {
      const i = at % Math.max(1, b.length);
      if (op === 'set') b[i] = v;
      else if (op === 'drop') b = Buffer.concat([b.subarray(0, i), b.subarray(i + 1)]);
      else if (op === 'insert') b = Buffer.concat([b.subarray(0, i), Buffer.from([v]), b.subarray(i)]);
      else b = b.subarray(0, i);
    }
    return b;
  });

const anyBytes = fc.oneof(fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)), mutatedBytes);

test('property: any bytes decode as an Address, Authorization or config resource, or are refused with the field named', () => {
  fuzz('xds: any bytes', fc.property(anyBytes, fc.string({ maxLength: 30 }), (bytes, name) => {
    decodesOrRefuses(() => decodeAddress(bytes));
    decodesOrRefuses(() => decodeAuthorization(bytes));
    decodesOrRefuses(() => decodeAddressResource(bytes, name));
    decodesOrRefuses(() => decodeAuthorizationResource(bytes, name));
    decodesOrRefuses(() => decodeConfigResource(bytes, name));
  }), { seed: 1430, numRuns: 3000 });
});

const addressType = workloadRoot().lookupType('istio.workload.Address');
const authorizationType = workloadRoot().lookupType('istio.security.Authorization');

test('property: Address messages with any field values decode or are refused with the field named; what decodes encodes back to itself', () => {
  fuzz('xds: Address messages', fc.property(message(addressType), (m) => {
    const bytes = addressType.encode(m).finish();
    const a = decodesOrRefuses(() => decodeAddress(bytes));
    if (a === undefined) return;
    // What a proxy accepted is a value the codec can write, and writing it changes nothing.
    assert.deepEqual(decodeAddress(encodeAddress(a)), a);
    assert.equal(Buffer.compare(encodeAddress(decodeAddress(encodeAddress(a))), encodeAddress(a)), 0, 'canonical bytes');
  }), { seed: 1431, numRuns: 1500 });
});

test('property: Authorization messages with any field values decode or are refused with the field named; what decodes encodes back to itself', () => {
  fuzz('xds: Authorization messages', fc.property(message(authorizationType), (m) => {
    const bytes = authorizationType.encode(m).finish();
    const a = decodesOrRefuses(() => decodeAuthorization(bytes));
    if (a === undefined) return;
    assert.deepEqual(decodeAuthorization(encodeAuthorization(a)), a);
  }), { seed: 1432, numRuns: 1500 });
});

test('property: a config resource whose JSON is anything decodes only when envelope, content and name agree', () => {
  const json = fc.oneof(
    fc.json({ maxDepth: 3 }),
    fc.record({ kind: fc.constantFrom('HTTPRoute', 'Telemetry', ''), metadata: fc.record({ name: fc.constantFrom('r', ''), namespace: fc.option(fc.constantFrom('demo', 'default'), { nil: undefined }) }, { requiredKeys: [] }) }).map((o) => JSON.stringify(o)),
    fc.nat({ max: 20_000 }).map((n) => '['.repeat(n) + ']'.repeat(n)),
  );
  const envelope = fc.record({ kind: fc.constantFrom('HTTPRoute', 'Telemetry', ''), namespace: fc.constantFrom('demo', 'default', ''), name: fc.constantFrom('r', '') });
  fuzz('xds: config resources', fc.property(json, envelope, fc.constantFrom('HTTPRoute/demo/r', 'HTTPRoute/default/r', 'Telemetry/demo/r', ''), (text, env, name) => {
    const t = workloadRoot().lookupType('ambit.config.v1.ConfigResource');
    const bytes = t.encode({ ...env, json: text }).finish();
    const o = decodesOrRefuses(() => decodeConfigResource(bytes, name));
    if (o === undefined) return;
    assert.equal(`${o.kind}/${o.metadata.namespace ?? 'default'}/${o.metadata.name}`, name);
    assert.deepEqual(decodeConfigResource(configResource(o).body, name), o);
  }), { seed: 1433, numRuns: 2000 });
});

test('a resource refused by the codec has a message a NACK can carry (names the field, no stack)', () => {
  const e = (() => { try { decodeAddress(Buffer.from([0x0a, 0x05, 0x0a, 0x01])); } catch (x: unknown) { return x; } return undefined; })();
  assert.ok(e instanceof XdsDecodeError);
  assert.match(e.message, /^address: malformed protobuf/);
  assert.ok(!e.message.includes('\n    at '), 'no stack in the message');
  assert.ok(ADDRESS_TYPE_URL.endsWith('istio.workload.Address'));
});

test('a services map entry without its value is an empty port list, not a TypeError', () => {
  // Workload { uid: "u" (field 20), services (field 22): entry { key: "ns/h" } with no value }.
  const wl = Buffer.from([0xa2, 0x01, 0x01, 0x75, 0xb2, 0x01, 0x06, 0x0a, 0x04, ...Buffer.from('ns/h')]);
  const a = decodeAddress(Buffer.concat([Buffer.from([0x0a, wl.length]), wl]));
  assert.deepEqual(a.workload?.services, { 'ns/h': { ports: [] } });
});

// ---- JWT ----

const ISSUER = 'https://issuer.example';
const keys = [makeKey('ES256', 'k-es'), makeKey('EdDSA', 'k-ed'), makeKey('RS256', 'k-rs')];
const jwks: Jwks = { keys: keys.map((k) => k.jwk) };
const NOW = 1_700_000_000;
const claims = fc.record({
  iss: fc.constant(ISSUER), sub: fc.string({ maxLength: 12 }), aud: fc.oneof(fc.constant('api'), fc.array(fc.constantFrom('api', 'x'), { maxLength: 2 })),
  exp: fc.constant(NOW + 3600), extra: fc.jsonValue({ maxDepth: 2 }),
}, { requiredKeys: ['iss', 'sub', 'exp'] });
// Tokens within the verifier's length bound (a longer one is refused for its length alone).
const signed = fc.tuple(fc.constantFrom(...keys), claims).map(([k, c]) => signJws(k, c)).filter((t) => t.length <= MAX_TOKEN_CHARS);

test('property: any token text gets a verdict with a reason, never a throw', async () => {
  const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
  const tokenish = fc.oneof(
    fc.string({ maxLength: 200 }),
    fc.array(fc.oneof(fc.base64String({ maxLength: 40 }), fc.constantFrom('', '.', '..', '=', '+/', '-_')), { maxLength: 5 }).map((p) => p.join('.')),
    fc.tuple(fc.jsonValue({ maxDepth: 2 }), fc.jsonValue({ maxDepth: 2 }), fc.base64String({ maxLength: 90 })).map(([h, c, s]) => `${b64(h)}.${b64(c)}.${s.replace(/=+$/, '')}`),
    fc.tuple(fc.constantFrom('none', 'HS256', 'ES256', 'RS256', 'EdDSA', 'ES512', 'PS256'), fc.option(fc.constantFrom('k-es', 'k-rs', 'k-ed', 'nope')), fc.jsonValue({ maxDepth: 1 }))
      .map(([alg, kid, crit]) => `${b64({ alg, kid, ...(crit === null ? {} : { crit }) })}.${b64({ iss: ISSUER })}.${Buffer.alloc(64, 1).toString('base64url')}`),
    fc.nat({ max: 40_000 }).map((n) => 'a'.repeat(n)),
  );
  await fuzzAsync('jwt: any token', fc.asyncProperty(tokenish, async (token) => {
    const v = await withDeadline(verifyJwt(token, jwks, { issuer: ISSUER, nowSec: NOW }), SLOW_MS * 10, 'verifying');
    assert.equal(v.ok, false, 'an unsigned or made-up token verified');
    if (!v.ok) assert.ok(v.reason.length > 0 && v.reason.length < 300, v.reason);
  }), { seed: 1434, numRuns: 2000 });
});

test('property: a signed token verifies; any change to its header, payload or signature bytes makes it fail', async () => {
  await fuzzAsync('jwt: tampering', fc.asyncProperty(signed, fc.nat(), fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'), async (token, at, c) => {
    const good = await verifyJwt(token, jwks, { issuer: ISSUER, nowSec: NOW });
    assert.ok(good.ok, good.ok ? '' : good.reason);
    const i = at % token.length;
    if (token[i] === '.' || token[i] === c) return;
    const bad = token.slice(0, i) + c + token.slice(i + 1);
    const v = await verifyJwt(bad, jwks, { issuer: ISSUER, nowSec: NOW });
    if (!v.ok) return;
    // base64url's last character carries unused bits: a change there only may decode to the
    // same signature bytes, which is the same token.
    const [, , s1] = token.split('.');
    const [h2, p2, s2] = bad.split('.');
    assert.equal(`${h2}.${p2}`, token.split('.').slice(0, 2).join('.'), `a changed header or payload verified: ${bad}`);
    assert.equal(Buffer.compare(Buffer.from(s1!, 'base64url'), Buffer.from(s2!, 'base64url')), 0, 'a changed signature verified');
  }), { seed: 1435, numRuns: 400 });
});

test('property: request authentication reads tokens from any headers, query or cookies without throwing; a valid one authenticates', async () => {
  const provider: JwtProvider = {
    issuer: ISSUER, jwks, fromHeaders: [{ name: 'Authorization', prefix: 'Bearer ' }, { name: 'x-jwt' }], fromParams: ['access_token'], fromCookies: ['session'], forwardOriginalToken: false, source: 'demo/jwt',
  };
  const junk = fc.oneof(fc.string({ maxLength: 40 }), fc.constantFrom('Bearer', 'Bearer ', 'bearer x.y.z', 'Basic abc', ' ', '=;=;', 'session=; session=a'));
  await fuzzAsync('jwt: request authentication', fc.asyncProperty(
    fc.dictionary(fc.constantFrom('authorization', 'Authorization', 'x-jwt', 'cookie', 'host', 'x-other'), fc.oneof(junk, fc.array(junk, { maxLength: 3 })), { maxKeys: 4 }),
    fc.oneof(fc.constant('/'), fc.string({ maxLength: 40 }).map((s) => `/p?${s}`), fc.constantFrom('/p?access_token=', '/p?access_token=a&access_token=b', '/p?%zz=1#x')),
    fc.option(fc.tuple(signed, fc.constantFrom('header', 'x-jwt', 'query', 'cookie'))),
    async (headers, path, valid) => {
      const h: Record<string, string | string[] | undefined> = { ...headers };
      let p = path;
      if (valid) {
        // Only the valid token, in one place: every location read then holds a good token.
        for (const k of Object.keys(h)) if (k.toLowerCase() !== 'host') delete h[k];
        p = '/p';
        const [t, where] = valid;
        if (where === 'header') h.authorization = `Bearer ${t}`;
        else if (where === 'x-jwt') h['x-jwt'] = t;
        else if (where === 'query') p = `/p?access_token=${t}`;
        else h.cookie = `a=b; session=${t}`;
      }
      const r = await withDeadline(authenticateRequest([provider], { headers: h, path: p }, NOW), SLOW_MS * 10, 'authenticating');
      if (valid) assert.equal(r.kind, 'authenticated', JSON.stringify(r));
      if (r.kind === 'rejected') {
        assert.equal(r.status, 401);
        assert.match(r.wwwAuthenticate, /^Bearer realm="[^\r\n]*", error="invalid_token"$/);
      }
    },
  ), { seed: 1436, numRuns: 800 });
});
