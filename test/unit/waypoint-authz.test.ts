// L7 authorization at the waypoint (l7-authz.ts): policy selection by targetRefs, allow / 403 /
// 401, over AuthorizationPolicy YAML compiled by rbac and tokens verified by request-authn.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compilePolicy, type CompiledPolicy, type RequestAttributes } from '../../src/rbac/index.js';
import { authorizeRequest, selectWaypointPolicies, type L7Verdict } from '../../src/waypoint/l7-authz.js';
import { authenticateRequest, compileRequestAuthn, type AuthnResult } from '../../src/waypoint/request-authn.js';
import { makeKey, signJws } from '../helpers/jwt-signer.js';
import { validateYaml, yaml } from '../helpers/config.js';

const ROOT = 'istio-system';
const ISS = 'https://idp.example.com';
const NOW = 1_750_000_000;
const key = makeKey('ES256', 'k1');
const JWKS = JSON.stringify({ keys: [key.jwk] });
const CLIENT = 'cluster.local/ns/web/sa/frontend';

function policies(text: string): CompiledPolicy[] {
  const { set, diagnostics } = validateYaml(text);
  assert.deepEqual(diagnostics.filter((d) => d.severity === 'error'), []);
  return set.ofKind('AuthorizationPolicy').map((p) => compilePolicy(p, { rootNamespace: ROOT }));
}

const WAYPOINT = { namespace: 'shop', name: 'waypoint' };
const CART = { namespace: 'shop', name: 'cart' };

const authn = compileRequestAuthn(
  [{
    apiVersion: 'security.istio.io/v1', kind: 'RequestAuthentication', metadata: { name: 'jwt', namespace: 'shop' },
    spec: { targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'waypoint' }], jwtRules: [{ issuer: ISS, jwks: JWKS }] },
  }],
  () => { throw new Error('no files'); },
);
const providers = authn.providersForRequest({ waypoint: WAYPOINT, service: CART });

const token = (claims: Record<string, unknown> = {}): string =>
  signJws(key, { iss: ISS, sub: 'alice', aud: ['shop', 'api'], azp: 'web-app', exp: NOW + 600, ...claims });

interface Req {
  method?: string;
  path?: string;
  host?: string;
  headers?: Record<string, string>;
  token?: string;
  principal?: string | null;
}

/** Authenticates and authorizes one request through shop/waypoint to shop/cart. */
async function run(ps: CompiledPolicy[], r: Req = {}): Promise<{ verdict: L7Verdict; authn: AuthnResult }> {
  const headers: Record<string, string> = { host: r.host ?? 'cart.shop.svc.cluster.local', ...(r.headers ?? {}) };
  if (r.token) headers.authorization = `Bearer ${r.token}`;
  const path = r.path ?? '/items';
  const a = await authenticateRequest(providers, { headers, path }, NOW);
  const attrs: RequestAttributes = {
    sourceIp: '10.0.1.5', destinationIp: '10.96.0.20', destinationPort: 8080,
    ...(r.principal === null ? {} : { sourcePrincipal: r.principal ?? CLIENT }),
    http: { method: r.method ?? 'GET', path, host: headers.host as string, headers },
  };
  const selected = selectWaypointPolicies(ps, { waypoint: WAYPOINT, service: CART }, ROOT);
  return { verdict: authorizeRequest(selected, attrs, a), authn: a };
}

const status = (v: L7Verdict): number => (v.allow ? 200 : v.status);

// ---- selection ----

const SELECTION = policies(yaml`
  apiVersion: security.istio.io/v1
  kind: AuthorizationPolicy
  metadata: {name: on-waypoint, namespace: shop}
  spec:
    targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}]
    rules: [{}]
  ---
  apiVersion: security.istio.io/v1
  kind: AuthorizationPolicy
  metadata: {name: on-cart, namespace: shop}
  spec:
    targetRefs: [{kind: Service, group: "", name: cart}]
    rules: [{}]
  ---
  apiVersion: security.istio.io/v1
  kind: AuthorizationPolicy
  metadata: {name: on-billing, namespace: shop}
  spec:
    targetRefs: [{kind: Service, group: "", name: billing}]
    rules: [{}]
  ---
  apiVersion: security.istio.io/v1
  kind: AuthorizationPolicy
  metadata: {name: every-waypoint, namespace: istio-system}
  spec:
    targetRefs: [{kind: GatewayClass, group: gateway.networking.k8s.io, name: istio-waypoint}]
    rules: [{}]
  ---
  apiVersion: security.istio.io/v1
  kind: AuthorizationPolicy
  metadata: {name: class-outside-root, namespace: shop}
  spec:
    targetRefs: [{kind: GatewayClass, group: gateway.networking.k8s.io, name: istio-waypoint}]
    rules: [{}]
  ---
  apiVersion: security.istio.io/v1
  kind: AuthorizationPolicy
  metadata: {name: selector, namespace: shop}
  spec:
    selector: {matchLabels: {app: cart}}
    rules: [{}]
  ---
  apiVersion: security.istio.io/v1
  kind: AuthorizationPolicy
  metadata: {name: ns-wide, namespace: shop}
  spec:
    rules: [{}]
  ---
  apiVersion: security.istio.io/v1
  kind: AuthorizationPolicy
  metadata: {name: other-waypoint, namespace: other}
  spec:
    targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}]
    rules: [{}]
`);

test('selectWaypointPolicies: waypoint Gateway, the destination Service, root GatewayClass; never selector/namespace ones', async () => {
  const keys = (t: Parameters<typeof selectWaypointPolicies>[1]) => selectWaypointPolicies(SELECTION, t, ROOT).map((p) => p.key).sort();
  assert.deepEqual(keys({ waypoint: WAYPOINT, service: CART }), ['istio-system/every-waypoint', 'shop/on-cart', 'shop/on-waypoint']);
  assert.deepEqual(keys({ waypoint: WAYPOINT }), ['istio-system/every-waypoint', 'shop/on-waypoint']);
  assert.deepEqual(keys({ waypoint: { namespace: 'other', name: 'waypoint' }, service: { namespace: 'shop', name: 'billing' } }), [
    'istio-system/every-waypoint', 'other/other-waypoint', 'shop/on-billing',
  ]);
});

// ---- allow / 403 / 401 ----

const REQUIRE_JWT = policies(yaml`
  apiVersion: security.istio.io/v1
  kind: AuthorizationPolicy
  metadata: {name: require-jwt, namespace: shop}
  spec:
    targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}]
    action: ALLOW
    rules:
    - from:
      - source: {requestPrincipals: ["${ISS}/*"]}
      to:
      - operation: {methods: [GET, POST], paths: ["/items*"]}
    - to:
      - operation: {paths: [/healthz]}
`);

test('ALLOW requestPrincipals: valid token -> allow; no token -> 401 with WWW-Authenticate; bad token -> 401; token but wrong path -> 403', async () => {
  const ok = await run(REQUIRE_JWT, { token: token() });
  assert.equal(status(ok.verdict), 200);
  assert.equal(ok.verdict.decision.policy, 'shop/require-jwt');

  const missing = (await run(REQUIRE_JWT, {})).verdict;
  assert.equal(status(missing), 401);
  assert.ok(!missing.allow);
  assert.equal(!missing.allow && missing.body, 'Jwt is missing');
  assert.equal(!missing.allow && missing.wwwAuthenticate, 'Bearer realm="http://cart.shop.svc.cluster.local/items"');
  assert.equal(missing.decision.code, 'DENIED_NO_ALLOW_MATCH');

  const expired = (await run(REQUIRE_JWT, { token: token({ exp: NOW - 3600 }) })).verdict;
  assert.equal(status(expired), 401);
  assert.equal(expired.decision.code, 'DENIED_INVALID_TOKEN');
  assert.match(!expired.allow ? expired.body : '', /Jwt is expired/);
  assert.match(!expired.allow ? expired.wwwAuthenticate ?? '' : '', /error="invalid_token"/);

  const wrongPath = (await run(REQUIRE_JWT, { token: token(), path: '/admin' })).verdict;
  assert.deepEqual([status(wrongPath), !wrongPath.allow && wrongPath.body, !wrongPath.allow && wrongPath.wwwAuthenticate], [403, 'RBAC: access denied', undefined]);

  // Anonymous on a path no token would open: 403, not 401.
  assert.equal(status((await run(REQUIRE_JWT, { path: '/admin' })).verdict), 403);
  // Anonymous DELETE on /items: the JWT rule allows only GET/POST, so a token would not help.
  assert.equal(status((await run(REQUIRE_JWT, { method: 'DELETE' })).verdict), 403);
  // The open rule needs no token.
  assert.equal(status((await run(REQUIRE_JWT, { path: '/healthz' })).verdict), 200);
});

test('auth attributes come only from authentication, never from the caller', async () => {
  const a = await authenticateRequest(providers, { headers: {}, path: '/items' }, NOW);
  const attrs: RequestAttributes = {
    sourcePrincipal: CLIENT, destinationIp: '10.96.0.20', destinationPort: 8080,
    http: { method: 'GET', path: '/items', host: 'cart', headers: {}, auth: { principal: `${ISS}/alice` } },
  };
  assert.equal(status(authorizeRequest(selectWaypointPolicies(REQUIRE_JWT, { waypoint: WAYPOINT }, ROOT), attrs, a)), 401);
});

const DENY_NO_JWT = policies(yaml`
  apiVersion: security.istio.io/v1
  kind: AuthorizationPolicy
  metadata: {name: deny-anonymous, namespace: shop}
  spec:
    targetRefs: [{kind: Service, group: "", name: cart}]
    action: DENY
    rules:
    - from:
      - source: {notRequestPrincipals: ["*"]}
      to:
      - operation: {notPaths: [/public/*]}
`);

test('DENY notRequestPrincipals ["*"] (Istio\'s require-a-token pattern): anonymous -> 401, token -> allow, public path open', async () => {
  const anon = (await run(DENY_NO_JWT)).verdict;
  assert.equal(status(anon), 401);
  assert.equal(anon.decision.code, 'DENIED_BY_POLICY');
  assert.equal(anon.decision.policy, 'shop/deny-anonymous');
  assert.equal(status((await run(DENY_NO_JWT, { token: token() })).verdict), 200);
  assert.equal(status((await run(DENY_NO_JWT, { path: '/public/logo.png' })).verdict), 200);
  // A token without sub has no principal: still denied, but with 403 (another try with the same token won't help).
  assert.equal(status((await run(DENY_NO_JWT, { token: token({ sub: undefined }) })).verdict), 403);
});

const DENY_DELETE = policies(yaml`
  apiVersion: security.istio.io/v1
  kind: AuthorizationPolicy
  metadata: {name: no-delete, namespace: shop}
  spec:
    targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}]
    action: DENY
    rules:
    - to:
      - operation: {methods: [DELETE]}
`);

test('a DENY on DELETE works at the waypoint (403), other methods pass', async () => {
  const del = (await run(DENY_DELETE, { method: 'DELETE', token: token() })).verdict;
  assert.deepEqual([status(del), del.decision.policy, del.decision.ruleIndex], [403, 'shop/no-delete', 0]);
  assert.equal(status((await run(DENY_DELETE, { method: 'DELETE' })).verdict), 403);
  assert.equal(status((await run(DENY_DELETE, { method: 'GET' })).verdict), 200);
  assert.equal(status((await run(DENY_DELETE, { method: 'POST' })).verdict), 200);
});

const RICH = policies(yaml`
  apiVersion: security.istio.io/v1
  kind: AuthorizationPolicy
  metadata: {name: rich, namespace: shop}
  spec:
    targetRefs: [{kind: Service, group: "", name: cart}]
    action: ALLOW
    rules:
    - from:
      - source: {principals: ["cluster.local/ns/web/sa/*"]}
      to:
      - operation:
          hosts: ["cart.shop.svc.cluster.local", "*.example.com"]
          methods: [GET]
          paths: ["/items/*", "/cart"]
      when:
      - key: request.headers[x-tenant]
        values: [acme, "beta-*"]
    - to:
      - operation: {methods: [POST], paths: [/checkout]}
      when:
      - key: request.auth.claims[groups]
        values: [buyers]
      - key: request.auth.claims[org][team]
        values: [payments]
      - key: request.auth.audiences
        values: [api]
      - key: request.auth.presenter
        values: [web-app]
      - key: request.auth.principal
        values: ["${ISS}/alice"]
    - to:
      - operation: {paths: [/levels]}
      when:
      - key: request.auth.claims[level]
        values: ["3"]
      - key: request.auth.claims[verified]
        values: ["true"]
`);

const richCases: { name: string; req: Req; want: number }[] = [
  { name: 'all L7 conditions hold', req: { path: '/items/42', headers: { 'x-tenant': 'acme' } }, want: 200 },
  { name: 'header by prefix, host by suffix (case-insensitive)', req: { path: '/cart', host: 'Shop.Example.com', headers: { 'X-Tenant': 'beta-2' } }, want: 200 },
  { name: 'missing header', req: { path: '/items/42' }, want: 403 },
  { name: 'wrong header value', req: { path: '/items/42', headers: { 'x-tenant': 'evil' } }, want: 403 },
  { name: 'wrong method', req: { method: 'PUT', path: '/items/42', headers: { 'x-tenant': 'acme' } }, want: 403 },
  { name: 'path outside', req: { path: '/items', headers: { 'x-tenant': 'acme' } }, want: 403 },
  { name: 'query string ignored for paths', req: { path: '/cart?debug=1', headers: { 'x-tenant': 'acme' } }, want: 200 },
  { name: 'wrong host', req: { path: '/cart', host: 'cart.other', headers: { 'x-tenant': 'acme' } }, want: 403 },
  { name: 'other source principal', req: { principal: 'cluster.local/ns/evil/sa/x', path: '/cart', headers: { 'x-tenant': 'acme' } }, want: 403 },
  { name: 'plaintext source', req: { principal: null, path: '/cart', headers: { 'x-tenant': 'acme' } }, want: 403 },
  { name: 'checkout: list claim, nested claim, aud, azp, principal', req: { method: 'POST', path: '/checkout', token: token({ groups: ['viewers', 'buyers'], org: { team: 'payments' } }) }, want: 200 },
  { name: 'checkout: list claim without the value', req: { method: 'POST', path: '/checkout', token: token({ groups: ['viewers'], org: { team: 'payments' } }) }, want: 403 },
  { name: 'checkout: nested claim differs', req: { method: 'POST', path: '/checkout', token: token({ groups: 'buyers', org: { team: 'growth' } }) }, want: 403 },
  { name: 'checkout: audience missing', req: { method: 'POST', path: '/checkout', token: token({ groups: 'buyers', org: { team: 'payments' }, aud: 'shop' }) }, want: 403 },
  { name: 'checkout: another presenter', req: { method: 'POST', path: '/checkout', token: token({ groups: 'buyers', org: { team: 'payments' }, azp: 'cli' }) }, want: 403 },
  { name: 'checkout: another subject', req: { method: 'POST', path: '/checkout', token: token({ sub: 'bob', groups: 'buyers', org: { team: 'payments' } }) }, want: 403 },
  { name: 'checkout without a token: a token could satisfy the rule -> 401', req: { method: 'POST', path: '/checkout' }, want: 401 },
  { name: 'numeric and boolean claims match their decimal and true/false forms', req: { path: '/levels', token: token({ level: 3, verified: true }) }, want: 200 },
  { name: 'numeric claim in a list', req: { path: '/levels', token: token({ level: [1, 3], verified: true }) }, want: 200 },
  { name: 'numeric claim sent as a string', req: { path: '/levels', token: token({ level: '3', verified: 'true' }) }, want: 200 },
  { name: 'numeric claim of another value', req: { path: '/levels', token: token({ level: 4, verified: true }) }, want: 403 },
  { name: 'boolean claim false', req: { path: '/levels', token: token({ level: 3, verified: false }) }, want: 403 },
];
for (const tc of richCases) {
  test(`ALLOW with methods/paths/hosts/headers/claims: ${tc.name} -> ${tc.want}`, async () => {
    const v = (await run(RICH, tc.req)).verdict;
    assert.equal(status(v), tc.want, v.decision.reason);
  });
}

test('no ALLOW policy bound -> allowed; a policy for another service does not apply', async () => {
  const v = (await run(policies(yaml`
    apiVersion: security.istio.io/v1
    kind: AuthorizationPolicy
    metadata: {name: billing-only, namespace: shop}
    spec:
      targetRefs: [{kind: Service, group: "", name: billing}]
      rules: [{to: [{operation: {methods: [HEAD]}}]}]
  `))).verdict;
  assert.equal(status(v), 200);
  assert.equal(v.decision.code, 'ALLOWED_NO_ALLOW_POLICY');
});

test('an ALLOW with no rules denies everything with 403; a CUSTOM policy without provider denies with 403', async () => {
  const none = (await run(policies(yaml`
    apiVersion: security.istio.io/v1
    kind: AuthorizationPolicy
    metadata: {name: allow-nothing, namespace: istio-system}
    spec:
      targetRefs: [{kind: GatewayClass, group: gateway.networking.k8s.io, name: istio-waypoint}]
  `), { token: token() })).verdict;
  assert.equal(status(none), 403);
  const custom = (await run(policies(yaml`
    apiVersion: security.istio.io/v1
    kind: AuthorizationPolicy
    metadata: {name: ext, namespace: shop}
    spec:
      targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}]
      action: CUSTOM
      provider: {name: opa}
      rules: [{to: [{operation: {paths: ["/admin*"]}}]}]
  `), { path: '/admin/users' })).verdict;
  assert.deepEqual([status(custom), custom.decision.code], [403, 'DENIED_NO_EXT_AUTHZ_PROVIDER']);
});

test('dry-run ALLOW requiring a JWT neither denies nor asks for a token', async () => {
  const v = (await run(policies(yaml`
    apiVersion: security.istio.io/v1
    kind: AuthorizationPolicy
    metadata: {name: trial, namespace: shop, annotations: {istio.io/dry-run: "true"}}
    spec:
      targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}]
      rules: [{from: [{source: {requestPrincipals: ["*"]}}]}]
  `))).verdict;
  assert.equal(status(v), 200);
  assert.deepEqual(v.decision.dryRun.map((d) => [d.policy, d.wouldDecide]), [['shop/trial', 'DENY']]);
});
