// JWT verification (jwt.ts) and RequestAuthentication at the waypoint (request-authn.ts), with
// real RSA / EC / Ed25519 keys and tokens signed here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import type { RequestAuthenticationResource } from '../../src/config/resources.js';
import { audienceSpellings, verifyJwt, type Jwks } from '../../src/waypoint/jwt.js';
import { authenticateRequest, claimHeaderValue, compileRequestAuthn, type JwtProvider } from '../../src/waypoint/request-authn.js';
import { makeKey, rawToken, signJws, type TestAlg } from '../helpers/jwt-signer.js';
import { validateYaml, yaml } from '../helpers/config.js';

const ISS = 'https://issuer.example.com';
const NOW = 1_750_000_000;
const claims = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  iss: ISS, sub: 'alice', aud: 'shop', iat: NOW - 10, exp: NOW + 3600, ...over,
});

const rsa = makeKey('RS256', 'rsa-1');
const ec = makeKey('ES256', 'ec-1');
const jwks: Jwks = { keys: [rsa.jwk, ec.jwk] };
const opts = { issuer: ISS, nowSec: NOW };

const reasonOf = (v: Awaited<ReturnType<typeof verifyJwt>>): string => (v.ok ? 'OK' : v.reason);

// ---- verifyJwt: algorithms ----

for (const alg of ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'EdDSA'] as TestAlg[]) {
  test(`verifyJwt accepts a valid ${alg} token and rejects it tampered`, async () => {
    const k = makeKey(alg, `k-${alg}`, { withAlg: true });
    const set: Jwks = { keys: [rsa.jwk, k.jwk] };
    const token = signJws(k, claims());
    const v = await verifyJwt(token, set, opts);
    assert.equal(reasonOf(v), 'OK');
    assert.ok(v.ok && v.claims.sub === 'alice' && v.header.alg === alg);
    const [h, , s] = token.split('.');
    const forged = `${h}.${Buffer.from(JSON.stringify(claims({ sub: 'mallory' }))).toString('base64url')}.${s}`;
    assert.equal(reasonOf(await verifyJwt(forged, set, opts)), 'Jwt verification fails');
  });
}

test('ES256 needs the JOSE r||s signature: a DER signature is refused', async () => {
  assert.equal(reasonOf(await verifyJwt(signJws(ec, claims()), jwks, opts)), 'OK');
  assert.equal(reasonOf(await verifyJwt(signJws(ec, claims(), {}, 'der'), jwks, opts)), 'Jwt verification fails');
});

test('alg none and HS256 are refused, even with an oct key in the set', async () => {
  const none = rawToken({ alg: 'none', typ: 'JWT' }, claims());
  assert.match(reasonOf(await verifyJwt(none, jwks, opts)), /alg none is refused/);
  const secret = Buffer.from('shared-secret-shared-secret-0123');
  const input = rawToken({ alg: 'HS256', kid: 'hs' }, claims()).slice(0, -1);
  const hs = `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
  const withOct: Jwks = { keys: [...jwks.keys, { kty: 'oct', kid: 'hs', k: secret.toString('base64url') }] };
  assert.match(reasonOf(await verifyJwt(hs, withOct, opts)), /alg HS256 is refused/);
  assert.match(reasonOf(await verifyJwt(rawToken({ alg: 'XY999' }, claims(), 'AAAA'), jwks, opts)), /not supported/);
});

// ---- verifyJwt: keys ----

test('kid selects the key; an unknown kid is refused; no kid tries every key', async () => {
  assert.match(reasonOf(await verifyJwt(signJws(rsa, claims(), { kid: 'nope' }), jwks, opts)), /doesn't have a key with kid "nope"/);
  const noKid = signJws(ec, claims(), { kid: undefined });
  assert.ok(!JSON.parse(Buffer.from(noKid.split('.')[0]!, 'base64url').toString()).kid);
  assert.equal(reasonOf(await verifyJwt(noKid, jwks, opts)), 'OK');
  // Signed by another key that claims kid rsa-1: the set's rsa-1 does not verify it.
  const impostor = { ...makeKey('RS256', 'rsa-1'), kid: 'rsa-1' };
  assert.equal(reasonOf(await verifyJwt(signJws(impostor, claims()), jwks, opts)), 'Jwt verification fails');
});

test('a key whose alg or family does not fit the token is not used', async () => {
  const k = makeKey('RS256', 'pinned', { withAlg: true }); // key alg RS256
  const ps = { ...k, alg: 'PS256' as TestAlg };
  assert.match(reasonOf(await verifyJwt(signJws(ps, claims()), { keys: [k.jwk] }, opts)), /doesn't have a key to match kid or alg PS256/);
  // ES256 header naming an RSA key.
  assert.match(reasonOf(await verifyJwt(rawToken({ alg: 'ES256', kid: 'rsa-1' }, claims(), 'AAAA'), jwks, opts)), /match kid or alg ES256/);
  // ES384 token against a P-256 key of the same kid.
  const p384 = makeKey('ES384', 'ec-1');
  assert.match(reasonOf(await verifyJwt(signJws(p384, claims()), jwks, opts)), /match kid or alg ES384/);
});

test('several keys fit a token without kid: each is tried; private members of a key are ignored', async () => {
  const a = makeKey('RS256', 'a');
  const b = makeKey('RS256', 'b');
  const set: Jwks = { keys: [a.jwk, b.jwk, rsa.jwk] };
  assert.equal(reasonOf(await verifyJwt(signJws(b, claims(), { kid: undefined }), set, opts)), 'OK');
  assert.equal(reasonOf(await verifyJwt(signJws(makeKey('RS256', 'c'), claims(), { kid: undefined }), set, opts)), 'Jwt verification fails');
  // A JWKS that wrongly carries the private key still verifies with its public part.
  const withPrivate = { keys: [{ ...a.jwk, ...(a.privateKey.export({ format: 'jwk' }) as object), kid: 'a' }] } as Jwks;
  assert.ok('d' in withPrivate.keys[0]!);
  assert.equal(reasonOf(await verifyJwt(signJws(a, claims()), withPrivate, opts)), 'OK');
});

test('RSA keys under 2048 bits are never used', async () => {
  const weak = makeKey('RS256', 'weak', { rsaBits: 1024 });
  assert.equal(reasonOf(await verifyJwt(signJws(weak, claims()), { keys: [weak.jwk] }, opts)), 'Jwt verification fails');
});

test('malformed tokens and crit headers are refused', async () => {
  assert.match(reasonOf(await verifyJwt('abc', jwks, opts)), /Header.Payload.Signature/);
  assert.match(reasonOf(await verifyJwt('a+b.c.d', jwks, opts)), /base64url/);
  assert.match(reasonOf(await verifyJwt(`${Buffer.from('[1]').toString('base64url')}.e30.AAAA`, jwks, opts)), /header is an invalid JSON object/);
  assert.match(reasonOf(await verifyJwt(signJws(rsa, claims(), { crit: ['exp'] }), jwks, opts)), /crit/);
  assert.match(reasonOf(await verifyJwt(signJws(rsa, claims()).split('.').slice(0, 2).join('.') + '.', jwks, opts)), /no signature/);
});

// ---- verifyJwt: claims ----

const timeCases: { name: string; c: Record<string, unknown>; skew?: number; want: RegExp | 'OK' }[] = [
  { name: 'expired', c: { exp: NOW - 120 }, want: /expired/ },
  { name: 'expired within the default 60 s skew', c: { exp: NOW - 30 }, want: 'OK' },
  { name: 'expired, skew 0', c: { exp: NOW }, skew: 0, want: /expired/ },
  { name: 'no exp', c: { exp: undefined }, want: 'OK' },
  { name: 'exp not a number', c: { exp: 'tomorrow' }, want: /exp claim is not a number/ },
  { name: 'nbf in the future', c: { nbf: NOW + 600 }, want: /not yet valid/ },
  { name: 'nbf within skew', c: { nbf: NOW + 30 }, want: 'OK' },
  { name: 'iat in the future', c: { iat: NOW + 600 }, want: /iat/ },
];
for (const tc of timeCases) {
  test(`time: ${tc.name}`, async () => {
    const v = await verifyJwt(signJws(rsa, claims(tc.c)), jwks, { ...opts, ...(tc.skew !== undefined ? { clockSkewSec: tc.skew } : {}) });
    if (tc.want === 'OK') assert.equal(reasonOf(v), 'OK');
    else assert.match(reasonOf(v), tc.want);
  });
}

test('issuer must match exactly', async () => {
  assert.match(reasonOf(await verifyJwt(signJws(rsa, claims({ iss: 'https://evil.example.com' })), jwks, opts)), /issuer "https:\/\/evil.example.com" is not configured/);
  assert.match(reasonOf(await verifyJwt(signJws(rsa, claims({ iss: undefined })), jwks, opts)), /no iss/);
});

test('audiences: string or array; scheme and trailing slash ignored; unchecked when none configured', async () => {
  const ok = async (aud: unknown, audiences?: string[]) => reasonOf(await verifyJwt(signJws(rsa, claims({ aud })), jwks, { ...opts, ...(audiences ? { audiences } : {}) }));
  assert.equal(await ok('shop', ['shop']), 'OK');
  assert.equal(await ok(['a', 'shop'], ['other', 'shop']), 'OK');
  assert.equal(await ok('https://shop.example.com/', ['shop.example.com']), 'OK');
  assert.equal(await ok('billing', ['shop']), 'Audiences in Jwt are not allowed');
  assert.equal(await ok(undefined, ['shop']), 'Audiences in Jwt are not allowed');
  assert.equal(await ok('anything'), 'OK');
});

test('audience spellings: every aud that normalizes to a configured audience, nothing else', () => {
  assert.deepEqual(audienceSpellings(['shop']).sort(), ['http://shop', 'http://shop/', 'https://shop', 'https://shop/', 'shop', 'shop/'].sort());
  assert.deepEqual(audienceSpellings(['https://a.example/']), audienceSpellings(['a.example']));
  // 'a//' normalizes to 'a/': 'a/' itself normalizes to 'a' and is not a spelling of it.
  assert.ok(!audienceSpellings(['a//']).includes('a/'));
  assert.ok(audienceSpellings(['a//']).includes('https://a//'));
});

// ---- compileRequestAuthn ----

const JWKS_TEXT = JSON.stringify(jwks);
const readFile = (path: string): string => {
  if (path === '/etc/ambit/jwks.json') return JWKS_TEXT;
  throw new Error(`ENOENT: no such file ${path}`);
};

function requestAuthns(text: string): RequestAuthenticationResource[] {
  const { set, diagnostics } = validateYaml(text);
  assert.deepEqual(diagnostics.filter((d) => d.severity === 'error'), []);
  return set.ofKind('RequestAuthentication');
}

const RA_YAML = yaml`
  apiVersion: security.istio.io/v1
  kind: RequestAuthentication
  metadata: {name: jwt-waypoint, namespace: shop}
  spec:
    targetRefs:
    - {kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}
    jwtRules:
    - issuer: ${ISS}
      jwks: '${JWKS_TEXT}'
      audiences: [shop]
  ---
  apiVersion: security.istio.io/v1
  kind: RequestAuthentication
  metadata: {name: jwt-svc, namespace: shop}
  spec:
    targetRefs:
    - {kind: Service, group: "", name: cart}
    jwtRules:
    - issuer: https://partner.example.com
      jwksUri: file:///etc/ambit/jwks.json
      fromHeaders:
      - {name: x-partner-token, prefix: "Token "}
      fromParams: [jwt]
  ---
  apiVersion: security.istio.io/v1
  kind: RequestAuthentication
  metadata: {name: by-selector, namespace: shop}
  spec:
    selector: {matchLabels: {app: cart}}
    jwtRules:
    - issuer: ${ISS}
      jwks: '${JWKS_TEXT}'
  ---
  apiVersion: security.istio.io/v1
  kind: RequestAuthentication
  metadata: {name: all-waypoints, namespace: istio-system}
  spec:
    targetRefs:
    - {kind: GatewayClass, group: gateway.networking.k8s.io, name: istio-waypoint}
    jwtRules:
    - issuer: https://mesh-idp.example.com
      jwksUri: file:///etc/ambit/missing.json
`;

test('compileRequestAuthn binds by targetRefs, reads file:// JWKS, warns on selectors, reports unreadable files', async () => {
  const set = compileRequestAuthn(requestAuthns(RA_YAML), readFile);
  const gw = set.providersFor({ kind: 'Gateway', namespace: 'shop', name: 'waypoint' });
  assert.deepEqual(gw.map((p) => p.source), ['shop/jwt-waypoint rule 0']);
  assert.deepEqual(gw[0]!.fromHeaders, [{ name: 'Authorization', prefix: 'Bearer ' }]);
  assert.deepEqual(gw[0]!.fromParams, ['access_token']);
  assert.deepEqual(gw[0]!.audiences, ['shop']);
  const svc = set.providersFor({ kind: 'Service', namespace: 'shop', name: 'cart' });
  assert.deepEqual(svc.map((p) => p.source), ['shop/jwt-svc rule 0']);
  assert.equal(svc[0]!.jwks.keys.length, 2);
  assert.deepEqual(svc[0]!.fromHeaders, [{ name: 'x-partner-token', prefix: 'Token ' }]);
  assert.deepEqual(svc[0]!.fromParams, ['jwt']);
  assert.deepEqual(set.providersFor({ kind: 'Service', namespace: 'shop', name: 'web' }), []);
  assert.deepEqual(set.providersFor({ kind: 'Gateway', namespace: 'other', name: 'waypoint' }), []);
  assert.deepEqual(
    set.providersForRequest({ waypoint: { namespace: 'shop', name: 'waypoint' }, service: { namespace: 'shop', name: 'cart' } }).map((p) => p.source),
    ['shop/jwt-waypoint rule 0', 'shop/jwt-svc rule 0'],
  );
  assert.equal(set.warnings.length, 1);
  assert.match(set.warnings[0]!, /shop\/by-selector: .*selector.*not at a waypoint/);
  assert.equal(set.errors.length, 1);
  assert.match(set.errors[0]!, /istio-system\/all-waypoints rule 0: .*cannot read \/etc\/ambit\/missing.json/);
});

test('compileRequestAuthn: an http(s) jwksUri is an error with a hint; GatewayClass binding covers every waypoint', async () => {
  const res: RequestAuthenticationResource[] = [
    {
      apiVersion: 'security.istio.io/v1', kind: 'RequestAuthentication', metadata: { name: 'remote', namespace: 'istio-system' },
      spec: {
        targetRefs: [{ kind: 'GatewayClass', group: 'gateway.networking.k8s.io', name: 'istio-waypoint' }],
        jwtRules: [
          { issuer: ISS, jwksUri: 'https://issuer.example.com/.well-known/jwks.json' },
          { issuer: 'https://b.example.com', jwks: JWKS_TEXT },
          { issuer: 'https://c.example.com', jwks: '{"keys": "nope"}' },
        ],
      },
    },
  ];
  const set = compileRequestAuthn(res, readFile);
  assert.equal(set.errors.length, 2);
  assert.match(set.errors[0]!, /remote rule 0: jwksUri "https:\/\/issuer.example.com\/.well-known\/jwks.json" cannot be fetched.*hint: inline the JWKS/);
  assert.match(set.errors[1]!, /remote rule 2: jwks is not a JSON Web Key Set/);
  assert.deepEqual(set.providersFor({ kind: 'Gateway', namespace: 'any', name: 'wp' }).map((p) => p.source), ['istio-system/remote rule 1']);
  assert.deepEqual(set.providersFor({ kind: 'Service', namespace: 'any', name: 'svc' }), []);
});

// ---- authenticateRequest ----

const [waypointProvider] = compileRequestAuthn(requestAuthns(RA_YAML), readFile).providersFor({ kind: 'Gateway', namespace: 'shop', name: 'waypoint' });
const [partnerProvider] = compileRequestAuthn(requestAuthns(RA_YAML), readFile).providersFor({ kind: 'Service', namespace: 'shop', name: 'cart' });
const wp = waypointProvider as JwtProvider;
const partner = partnerProvider as JwtProvider;
const good = signJws(rsa, claims({ azp: 'web-app', groups: ['dev', 'ops'], org: { team: 'payments' } }));

test('no token -> anonymous; no providers -> anonymous even with a token', async () => {
  assert.deepEqual(await authenticateRequest([wp], { headers: {}, path: '/' }, NOW), { kind: 'anonymous', tokenPresent: false });
  assert.deepEqual(await authenticateRequest([], { headers: { authorization: 'Bearer garbage' }, path: '/' }, NOW), { kind: 'anonymous', tokenPresent: false });
  // Another scheme in Authorization is not a bearer token.
  assert.equal((await authenticateRequest([wp], { headers: { authorization: 'Basic dXNlcjpwdw==' }, path: '/' }, NOW)).kind, 'anonymous');
});

test('default location: Authorization Bearer (scheme case-insensitive) and access_token; attributes from the claims', async () => {
  for (const req of [
    { headers: { Authorization: `Bearer ${good}` }, path: '/cart' },
    { headers: { authorization: `bearer ${good}` }, path: '/cart' },
    { headers: {}, path: `/cart?x=1&access_token=${good}` },
  ]) {
    const r = await authenticateRequest([wp], req, NOW);
    assert.equal(r.kind, 'authenticated', JSON.stringify(r));
    if (r.kind !== 'authenticated') continue;
    assert.equal(r.auth.principal, `${ISS}/alice`);
    assert.deepEqual(r.auth.audiences, ['shop']);
    assert.equal(r.auth.presenter, 'web-app');
    assert.deepEqual(r.auth.claims?.groups, ['dev', 'ops']);
    assert.equal(r.provider, 'shop/jwt-waypoint rule 0');
    assert.deepEqual(r.stripHeaders, 'Authorization' in req.headers || 'authorization' in req.headers ? ['authorization'] : []);
  }
});

test('a token without sub authenticates but has no principal', async () => {
  const r = await authenticateRequest([wp], { headers: { authorization: `Bearer ${signJws(rsa, claims({ sub: undefined }))}` }, path: '/' }, NOW);
  assert.equal(r.kind, 'authenticated');
  assert.equal(r.kind === 'authenticated' ? r.auth.principal : 'x', undefined);
});

test('invalid token -> 401 with the reason; the provider of the token issuer gives the reason', async () => {
  const cases: [string, RegExp][] = [
    [signJws(rsa, claims({ exp: NOW - 3600 })), /^Jwt is expired \(token in header authorization\)$/],
    [signJws(rsa, claims({ aud: 'billing' })), /Audiences in Jwt are not allowed/],
    [signJws(rsa, claims({ iss: 'https://unknown.example.com' })), /issuer "https:\/\/unknown.example.com" is not configured/],
    ['not.a.jwt', /not base64url|invalid JSON/],
  ];
  for (const [token, reason] of cases) {
    const r = await authenticateRequest([partner, wp], { headers: { authorization: `Bearer ${token}`, host: 'shop.example.com' }, path: '/cart?x=1' }, NOW);
    assert.equal(r.kind, 'rejected');
    if (r.kind !== 'rejected') continue;
    assert.equal(r.status, 401);
    assert.match(r.reason, reason);
    assert.equal(r.wwwAuthenticate, 'Bearer realm="http://shop.example.com/cart", error="invalid_token"');
  }
});

test('custom header with prefix and custom query parameter; the default location is then not read', async () => {
  const partnerToken = signJws(ec, claims({ iss: 'https://partner.example.com', sub: 'acme' }));
  const viaHeader = await authenticateRequest([partner], { headers: { 'X-Partner-Token': `Token ${partnerToken}` }, path: '/' }, NOW);
  assert.equal(viaHeader.kind === 'authenticated' && viaHeader.auth.principal, 'https://partner.example.com/acme');
  const forwarding = { ...partner, forwardOriginalToken: true };
  const kept = await authenticateRequest([forwarding], { headers: { 'X-Partner-Token': `Token ${partnerToken}` }, path: '/' }, NOW);
  assert.deepEqual([viaHeader.kind === 'authenticated' && viaHeader.stripHeaders, kept.kind === 'authenticated' && kept.stripHeaders], [['x-partner-token'], []]);
  const viaParam = await authenticateRequest([partner], { headers: {}, path: `/items?jwt=${partnerToken}` }, NOW);
  assert.equal(viaParam.kind === 'authenticated' && viaParam.auth.principal, 'https://partner.example.com/acme');
  // Wrong prefix: not a token for this location.
  assert.equal((await authenticateRequest([partner], { headers: { 'x-partner-token': `Bearer ${partnerToken}` }, path: '/' }, NOW)).kind, 'anonymous');
  // Authorization is not a location of this provider.
  assert.equal((await authenticateRequest([partner], { headers: { authorization: `Bearer ${partnerToken}` }, path: '/' }, NOW)).kind, 'anonymous');
  // Each provider verifies the tokens at its own locations.
  const both = await authenticateRequest([wp, partner], { headers: { 'x-partner-token': `Token ${partnerToken}` }, path: '/' }, NOW);
  assert.equal(both.kind === 'authenticated' && both.provider, 'shop/jwt-svc rule 0');
});

test('two tokens, one invalid -> 401 (fail closed)', async () => {
  const r = await authenticateRequest([wp], { headers: { authorization: `Bearer ${good}` }, path: `/?access_token=${signJws(rsa, claims({ exp: NOW - 3600 }))}` }, NOW);
  assert.equal(r.kind, 'rejected');
  assert.match(r.kind === 'rejected' ? r.reason : '', /expired \(token in query parameter access_token\)/);
});

test('selector, namespace-wide and mesh-wide RequestAuthentications apply to sidecars by workload, never at a waypoint', async () => {
  const key = makeKey('ES256', 'k9');
  const jwks = JSON.stringify({ keys: [key.jwk] });
  const ra = (ns: string, name: string, spec: Record<string, unknown>) => ({
    apiVersion: 'security.istio.io/v1', kind: 'RequestAuthentication' as const, metadata: { name, namespace: ns },
    spec: { ...spec, jwtRules: [{ issuer: `https://${ns}-${name}`, jwks }] },
  });
  const set = compileRequestAuthn([
    ra('shop', 'by-selector', { selector: { matchLabels: { app: 'cart' } } }),
    ra('shop', 'namespace-wide', {}),
    ra('istio-system', 'mesh-wide', {}),
    ra('other', 'elsewhere', {}),
  ], () => '', { rootNamespace: 'istio-system' });
  const issuers = (w: { namespace: string; labels: Record<string, string> }) => set.providersForWorkload(w).map((p) => p.issuer).sort();
  assert.deepEqual(issuers({ namespace: 'shop', labels: { app: 'cart' } }), ['https://istio-system-mesh-wide', 'https://shop-by-selector', 'https://shop-namespace-wide']);
  assert.deepEqual(issuers({ namespace: 'shop', labels: { app: 'web' } }), ['https://istio-system-mesh-wide', 'https://shop-namespace-wide']);
  assert.deepEqual(set.providersForRequest({ waypoint: { namespace: 'shop', name: 'waypoint' }, service: { namespace: 'shop', name: 'cart' } }), []);
  assert.equal(set.warnings.length, 4);
});

// ---- output headers ----

const claimCases: [string, Record<string, unknown>, string, string | undefined][] = [
  ['string', { sub: 'alice' }, 'sub', 'alice'],
  ['empty string sets nothing', { sub: '' }, 'sub', undefined],
  ['absent', {}, 'sub', undefined],
  ['true', { admin: true }, 'admin', 'true'],
  ['false', { admin: false }, 'admin', 'false'],
  ['integer', { level: 3 }, 'level', '3'],
  ['zero', { level: 0 }, 'level', '0'],
  ['large integer', { n: 9007199254740991 }, 'n', '9007199254740991'],
  ['negative integer (as a double)', { n: -3 }, 'n', '-3.000000'],
  ['fraction', { n: 1.5 }, 'n', '1.500000'],
  ['nested by dots', { org: { team: { name: 'payments' } } }, 'org.team.name', 'payments'],
  ['nested, missing level', { org: 'x' }, 'org.team', undefined],
  ['object as base64 JSON', { org: { team: 'payments' } }, 'org', Buffer.from('{"team":"payments"}').toString('base64')],
  ['array as base64 JSON', { groups: ['a', 'b'] }, 'groups', Buffer.from('["a","b"]').toString('base64')],
  ['null', { n: null }, 'n', undefined],
];
for (const [name, c, path, want] of claimCases) {
  test(`claim to header: ${name}`, () => assert.equal(claimHeaderValue(c, path), want));
}

test('outputClaimToHeaders and outputPayloadToHeader: set for a verified token only, from its provider', async () => {
  const [p] = compileRequestAuthn(requestAuthns(yaml`
    apiVersion: security.istio.io/v1
    kind: RequestAuthentication
    metadata: {name: out, namespace: shop}
    spec:
      targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}]
      jwtRules:
      - issuer: ${ISS}
        jwks: '${JWKS_TEXT}'
        outputPayloadToHeader: X-Jwt-Payload
        outputClaimToHeaders:
        - {header: X-Jwt-Sub, claim: sub}
        - {header: x-jwt-level, claim: level}
        - {header: x-jwt-team, claim: org.team}
        - {header: x-jwt-missing, claim: nope}
  `), readFile).providersFor({ kind: 'Gateway', namespace: 'shop', name: 'waypoint' });
  const token = signJws(rsa, claims({ level: 2, org: { team: 'payments' } }));
  const r = await authenticateRequest([p!], { headers: { authorization: `Bearer ${token}` }, path: '/' }, NOW);
  assert.equal(r.kind, 'authenticated');
  assert.deepEqual(r.kind === 'authenticated' && r.outputHeaders, [
    ['x-jwt-payload', token.split('.')[1]], ['x-jwt-sub', 'alice'], ['x-jwt-level', '2'], ['x-jwt-team', 'payments'],
  ]);
  // Nothing is output for a request without a token, and a rejected one never reaches upstream.
  assert.equal((await authenticateRequest([p!], { headers: {}, path: '/' }, NOW)).kind, 'anonymous');
  assert.equal((await authenticateRequest([p!], { headers: { authorization: `Bearer ${signJws(rsa, claims({ exp: NOW - 3600 }))}` }, path: '/' }, NOW)).kind, 'rejected');
});

test('a token is verified only by the providers of its issuer; no provider for it -> issuer not configured', async () => {
  const other = { ...wp, issuer: 'https://other.example.com', source: 'other' };
  const r = await authenticateRequest([other, wp], { headers: { authorization: `Bearer ${good}` }, path: '/' }, NOW);
  assert.equal(r.kind === 'authenticated' && r.provider, 'shop/jwt-waypoint rule 0');
  const none = await authenticateRequest([other], { headers: { authorization: `Bearer ${good}` }, path: '/' }, NOW);
  assert.match(none.kind === 'rejected' ? none.reason : '', /^Jwt issuer "https:\/\/issuer.example.com" is not configured \(token in header authorization\)$/);
});
