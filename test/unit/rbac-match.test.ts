// Field-by-field matching at the waypoint (L7 attributes available): each row is one policy
// rule, one connection/request and whether the rule matches.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AuthorizationRule } from '../../src/config/resources.js';
import { compilePolicy, matchPolicy, type RequestAttributes } from '../../src/rbac/index.js';
import { allowRule, ap, CLIENT, conn, OTHER, plaintext, req, ROOT } from './rbac-fixtures.js';

interface Row {
  name: string;
  rule: AuthorizationRule;
  attrs: RequestAttributes;
  match: boolean;
  /** Policy namespace/name, default server-ns/p. */
  policy?: string;
}

const from = (source: NonNullable<AuthorizationRule['from']>[number]['source']): AuthorizationRule => ({ from: [{ source }] });
const to = (operation: NonNullable<AuthorizationRule['to']>[number]['operation']): AuthorizationRule => ({ to: [{ operation }] });
const when = (key: string, values?: string[], notValues?: string[]): AuthorizationRule => ({
  when: [{ key, ...(values ? { values } : {}), ...(notValues ? { notValues } : {}) }],
});

const rows: Row[] = [
  // ---- principals ----
  { name: 'principals exact matches the mTLS source', rule: from({ principals: [CLIENT] }), attrs: conn(), match: true },
  { name: 'principals exact does not match another identity', rule: from({ principals: [OTHER] }), attrs: conn(), match: false },
  { name: 'principals written with spiffe:// are compared without it', rule: from({ principals: [`spiffe://${CLIENT}`] }), attrs: conn(), match: true },
  { name: 'a source principal given with spiffe:// is compared without it', rule: from({ principals: [CLIENT] }), attrs: conn({ sourcePrincipal: `spiffe://${CLIENT}` }), match: true },
  { name: 'principals prefix form', rule: from({ principals: ['cluster.local/ns/client-ns/*'] }), attrs: conn(), match: true },
  { name: 'principals suffix form', rule: from({ principals: ['*/sa/client'] }), attrs: conn(), match: true },
  { name: 'principals suffix form, other account', rule: from({ principals: ['*/sa/admin'] }), attrs: conn(), match: false },
  { name: 'principals * (presence) matches any mTLS source', rule: from({ principals: ['*'] }), attrs: conn({ sourcePrincipal: OTHER }), match: true },
  { name: 'principals * never matches a plaintext source', rule: from({ principals: ['*'] }), attrs: plaintext(), match: false },
  { name: 'notPrincipals * matches a plaintext source (how STRICT is expressed)', rule: from({ notPrincipals: ['*'] }), attrs: plaintext(), match: true },
  { name: 'notPrincipals * does not match an mTLS source', rule: from({ notPrincipals: ['*'] }), attrs: conn(), match: false },
  { name: 'notPrincipals exact excludes that identity', rule: from({ notPrincipals: [CLIENT] }), attrs: conn(), match: false },
  { name: 'notPrincipals with several values: any one matching excludes', rule: from({ notPrincipals: [OTHER, CLIENT] }), attrs: conn(), match: false },
  { name: 'notPrincipals exact lets another identity through', rule: from({ notPrincipals: [CLIENT] }), attrs: conn({ sourcePrincipal: OTHER }), match: true },
  // ---- namespaces ----
  { name: 'namespaces exact (from the principal)', rule: from({ namespaces: ['client-ns'] }), attrs: conn(), match: true },
  { name: 'namespaces exact, other namespace', rule: from({ namespaces: ['other-ns'] }), attrs: conn(), match: false },
  { name: 'namespaces prefix form', rule: from({ namespaces: ['client-*'] }), attrs: conn(), match: true },
  { name: 'namespaces never match a plaintext source', rule: from({ namespaces: ['*'] }), attrs: plaintext(), match: false },
  { name: 'notNamespaces matches a plaintext source', rule: from({ notNamespaces: ['client-ns'] }), attrs: plaintext(), match: true },
  { name: 'notNamespaces excludes the namespace', rule: from({ notNamespaces: ['client-ns'] }), attrs: conn(), match: false },
  // ---- serviceAccounts ----
  { name: 'serviceAccounts ns/sa form', rule: from({ serviceAccounts: ['client-ns/client'] }), attrs: conn(), match: true },
  { name: 'serviceAccounts ns/sa form, other namespace', rule: from({ serviceAccounts: ['server-ns/client'] }), attrs: conn(), match: false },
  { name: 'serviceAccounts bare sa means the policy namespace (match)', rule: from({ serviceAccounts: ['client'] }), attrs: conn(), match: true, policy: 'client-ns/p' },
  { name: 'serviceAccounts bare sa means the policy namespace (no match)', rule: from({ serviceAccounts: ['client'] }), attrs: conn(), match: false, policy: 'server-ns/p' },
  { name: 'serviceAccounts never match a plaintext source', rule: from({ serviceAccounts: ['client-ns/client'] }), attrs: plaintext(), match: false },
  { name: 'notServiceAccounts excludes the account', rule: from({ notServiceAccounts: ['client-ns/client'] }), attrs: conn(), match: false },
  { name: 'notServiceAccounts lets plaintext through', rule: from({ notServiceAccounts: ['client-ns/client'] }), attrs: plaintext(), match: true },
  // ---- ipBlocks ----
  { name: 'ipBlocks IPv4 CIDR contains the source', rule: from({ ipBlocks: ['10.0.0.0/16'] }), attrs: conn(), match: true },
  { name: 'ipBlocks IPv4 CIDR does not contain the source', rule: from({ ipBlocks: ['10.1.0.0/16'] }), attrs: conn(), match: false },
  { name: 'ipBlocks CIDR with host bits set still masks', rule: from({ ipBlocks: ['10.0.9.9/16'] }), attrs: conn(), match: true },
  { name: 'ipBlocks single IPv4 address is a /32', rule: from({ ipBlocks: ['10.0.1.5'] }), attrs: conn(), match: true },
  { name: 'ipBlocks single IPv4 address, neighbour', rule: from({ ipBlocks: ['10.0.1.6'] }), attrs: conn(), match: false },
  { name: 'ipBlocks IPv6 CIDR', rule: from({ ipBlocks: ['fd00:10::/32'] }), attrs: conn({ sourceIp: 'fd00:10:0:1::5' }), match: true },
  { name: 'ipBlocks IPv6 CIDR, outside', rule: from({ ipBlocks: ['fd00:10::/32'] }), attrs: conn({ sourceIp: 'fd00:11::5' }), match: false },
  { name: 'ipBlocks single IPv6 address (written differently)', rule: from({ ipBlocks: ['fd00::1:5'] }), attrs: conn({ sourceIp: 'fd00:0:0:0:0:0:1:5' }), match: true },
  { name: 'ipBlocks IPv4 CIDR matches an IPv4-mapped IPv6 source', rule: from({ ipBlocks: ['10.0.0.0/8'] }), attrs: conn({ sourceIp: '::ffff:10.0.1.5' }), match: true },
  { name: 'ipBlocks IPv4 CIDR never matches an IPv6 source', rule: from({ ipBlocks: ['0.0.0.0/0'] }), attrs: conn({ sourceIp: 'fd00::5' }), match: false },
  { name: 'notIpBlocks excludes the block', rule: from({ notIpBlocks: ['10.0.1.0/24'] }), attrs: conn(), match: false },
  { name: 'notIpBlocks lets other sources through', rule: from({ notIpBlocks: ['10.9.0.0/16'] }), attrs: conn(), match: true },
  { name: 'ipBlocks with an unknown source IP never match', rule: from({ ipBlocks: ['0.0.0.0/0'] }), attrs: conn({ sourceIp: undefined }), match: false },
  // ---- remoteIpBlocks ----
  { name: 'remoteIpBlocks use the request remote IP, not the peer', rule: from({ remoteIpBlocks: ['192.0.2.0/24'] }), attrs: req({ remoteIp: '192.0.2.10' }), match: true },
  { name: 'remoteIpBlocks do not match the peer when a remote IP is known', rule: from({ remoteIpBlocks: ['10.0.1.5'] }), attrs: req({ remoteIp: '192.0.2.10' }), match: false },
  { name: 'remoteIpBlocks fall back to the source IP', rule: from({ remoteIpBlocks: ['10.0.1.0/24'] }), attrs: req(), match: true },
  { name: 'notRemoteIpBlocks excludes', rule: from({ notRemoteIpBlocks: ['192.0.2.0/24'] }), attrs: req({ remoteIp: '192.0.2.10' }), match: false },
  // ---- ports ----
  { name: 'ports match the destination port', rule: to({ ports: ['9090', '8080'] }), attrs: conn(), match: true },
  { name: 'ports, other port', rule: to({ ports: ['9090'] }), attrs: conn(), match: false },
  { name: 'notPorts excludes the port', rule: to({ notPorts: ['8080'] }), attrs: conn(), match: false },
  { name: 'notPorts lets other ports through', rule: to({ notPorts: ['9090'] }), attrs: conn(), match: true },
  // ---- hosts ----
  { name: 'hosts exact is case-insensitive', rule: to({ hosts: ['Shop.Example.COM'] }), attrs: req(), match: true },
  { name: 'hosts suffix form', rule: to({ hosts: ['*.example.com'] }), attrs: req({ host: 'SHOP.example.com' }), match: true },
  { name: 'hosts exact, other host', rule: to({ hosts: ['admin.example.com'] }), attrs: req(), match: false },
  { name: 'notHosts excludes (case-insensitive)', rule: to({ notHosts: ['SHOP.example.com'] }), attrs: req(), match: false },
  // ---- methods ----
  { name: 'methods exact', rule: to({ methods: ['POST', 'GET'] }), attrs: req(), match: true },
  { name: 'methods are case-sensitive', rule: to({ methods: ['get'] }), attrs: req(), match: false },
  { name: 'notMethods excludes', rule: to({ notMethods: ['GET'] }), attrs: req(), match: false },
  { name: 'notMethods lets other methods through', rule: to({ notMethods: ['DELETE'] }), attrs: req(), match: true },
  // ---- paths ----
  { name: 'paths exact', rule: to({ paths: ['/api/items'] }), attrs: req(), match: true },
  { name: 'paths exact does not match a longer path', rule: to({ paths: ['/api'] }), attrs: req(), match: false },
  { name: 'paths prefix', rule: to({ paths: ['/api/*'] }), attrs: req(), match: true },
  { name: 'paths suffix', rule: to({ paths: ['*/items'] }), attrs: req(), match: true },
  { name: 'paths presence', rule: to({ paths: ['*'] }), attrs: req(), match: true },
  { name: 'paths ignore the query string', rule: to({ paths: ['/api/items'] }), attrs: req({ path: '/api/items?page=2' }), match: true },
  { name: 'notPaths excludes a prefix', rule: to({ notPaths: ['/api/*'] }), attrs: req(), match: false },
  // ---- requestPrincipals ----
  { name: 'requestPrincipals exact iss/sub', rule: from({ requestPrincipals: ['https://issuer.example/alice'] }), attrs: req({ auth: { principal: 'https://issuer.example/alice' } }), match: true },
  { name: 'requestPrincipals prefix by issuer', rule: from({ requestPrincipals: ['https://issuer.example/*'] }), attrs: req({ auth: { principal: 'https://issuer.example/bob' } }), match: true },
  { name: 'requestPrincipals * requires a JWT', rule: from({ requestPrincipals: ['*'] }), attrs: req(), match: false },
  { name: 'notRequestPrincipals * matches a request without JWT', rule: from({ notRequestPrincipals: ['*'] }), attrs: req(), match: true },
  // ---- when: request.headers ----
  { name: 'request.headers name is case-insensitive', rule: when('request.headers[X-User]', ['alice']), attrs: req({ headers: { 'x-user': 'alice' } }), match: true },
  { name: 'request.headers value prefix form', rule: when('request.headers[user-agent]', ['curl/*']), attrs: req({ headers: { 'User-Agent': 'curl/8.5.0' } }), match: true },
  { name: 'request.headers values: absent header never matches', rule: when('request.headers[x-user]', ['*']), attrs: req(), match: false },
  { name: 'request.headers notValues: absent header passes', rule: when('request.headers[x-user]', undefined, ['bob']), attrs: req(), match: true },
  { name: 'request.headers several values are joined by a comma', rule: when('request.headers[x-tag]', ['a,b']), attrs: req({ headers: { 'x-tag': ['a', 'b'] } }), match: true },
  // ---- when: request.auth.* ----
  { name: 'request.auth.claims array claim: any element matches', rule: when('request.auth.claims[groups]', ['admins']), attrs: req({ auth: { claims: { groups: ['dev', 'admins'] } } }), match: true },
  { name: 'request.auth.claims array claim: no element matches', rule: when('request.auth.claims[groups]', ['admins']), attrs: req({ auth: { claims: { groups: ['dev'] } } }), match: false },
  { name: 'request.auth.claims nested [a][b]', rule: when('request.auth.claims[realm][role]', ['ops']), attrs: req({ auth: { claims: { realm: { role: 'ops' } } } }), match: true },
  { name: 'request.auth.claims nested, wrong level', rule: when('request.auth.claims[role]', ['ops']), attrs: req({ auth: { claims: { realm: { role: 'ops' } } } }), match: false },
  { name: 'request.auth.claims notValues excludes', rule: when('request.auth.claims[groups]', undefined, ['banned']), attrs: req({ auth: { claims: { groups: ['x', 'banned'] } } }), match: false },
  { name: 'request.auth.claims absent claim never matches', rule: when('request.auth.claims[groups]', ['*']), attrs: req({ auth: { claims: {} } }), match: false },
  { name: 'request.auth.audiences: any audience', rule: when('request.auth.audiences', ['shop']), attrs: req({ auth: { audiences: ['web', 'shop'] } }), match: true },
  { name: 'request.auth.presenter', rule: when('request.auth.presenter', ['frontend*']), attrs: req({ auth: { presenter: 'frontend-app' } }), match: true },
  { name: 'request.auth.principal', rule: when('request.auth.principal', ['iss/alice']), attrs: req({ auth: { principal: 'iss/alice' } }), match: true },
  // ---- when: L4 keys ----
  { name: 'source.ip', rule: when('source.ip', ['10.0.1.0/24']), attrs: conn(), match: true },
  { name: 'source.ip notValues', rule: when('source.ip', undefined, ['10.0.1.5']), attrs: conn(), match: false },
  { name: 'source.namespace', rule: when('source.namespace', ['client-ns']), attrs: conn(), match: true },
  { name: 'source.namespace never matches plaintext', rule: when('source.namespace', ['*']), attrs: plaintext(), match: false },
  { name: 'source.principal (spiffe:// stripped from the value)', rule: when('source.principal', [`spiffe://${CLIENT}`]), attrs: conn(), match: true },
  { name: 'source.serviceAccount', rule: when('source.serviceAccount', ['client-ns/client']), attrs: conn(), match: true },
  { name: 'destination.ip', rule: when('destination.ip', ['10.0.2.0/24']), attrs: conn(), match: true },
  { name: 'destination.port', rule: when('destination.port', ['8080']), attrs: conn(), match: true },
  { name: 'destination.port notValues', rule: when('destination.port', undefined, ['8080']), attrs: conn(), match: false },
  { name: 'remote.ip', rule: when('remote.ip', ['192.0.2.0/24']), attrs: req({ remoteIp: '192.0.2.1' }), match: true },
  { name: 'connection.sni is never present: values never match', rule: when('connection.sni', ['*']), attrs: req(), match: false },
  { name: 'connection.sni is never present: notValues pass', rule: when('connection.sni', undefined, ['shop.example.com']), attrs: req(), match: true },
  { name: 'an unknown condition key never matches in an ALLOW rule', rule: when('experimental.envoy.filters.foo[bar]', ['x']), attrs: req(), match: false },
  // ---- structure ----
  { name: 'from entries are ORed', rule: { from: [{ source: { namespaces: ['nope'] } }, { source: { ipBlocks: ['10.0.1.5'] } }] }, attrs: conn(), match: true },
  { name: 'fields within one entry are ANDed', rule: from({ namespaces: ['client-ns'], ipBlocks: ['10.9.9.9'] }), attrs: conn(), match: false },
  { name: 'from AND to', rule: { from: [{ source: { namespaces: ['client-ns'] } }], to: [{ operation: { ports: ['9090'] } }] }, attrs: conn(), match: false },
  { name: 'when conditions are ANDed', rule: { when: [{ key: 'source.namespace', values: ['client-ns'] }, { key: 'destination.port', values: ['1'] }] }, attrs: conn(), match: false },
  { name: 'values and notValues of one condition both apply', rule: when('request.headers[x-user]', ['*'], ['bob']), attrs: req({ headers: { 'x-user': 'bob' } }), match: false },
  { name: 'empty from/to/when lists are absent', rule: { from: [], to: [], when: [] }, attrs: plaintext(), match: true },
];

for (const row of rows) {
  test(`match: ${row.name}`, () => {
    const p = allowRule(row.rule, row.policy);
    const got = matchPolicy(p, row.attrs, { enforcer: 'waypoint' });
    assert.equal(got !== null, row.match, `rule ${JSON.stringify(row.rule)} against ${JSON.stringify(row.attrs)}`);
  });
}

test('match: rules are ORed and the decision names the matching rule', () => {
  const p = compilePolicy(
    ap('server-ns/p', { rules: [{ from: [{ source: { namespaces: ['nope'] } }] }, { to: [{ operation: { ports: ['8080'] } }] }] }),
    { rootNamespace: ROOT },
  );
  assert.equal(matchPolicy(p, conn(), { enforcer: 'waypoint' }), 1);
});

test('match: a principal in cluster.local also matches the configured trust domain', () => {
  const spec = { rules: [{ from: [{ source: { principals: ['cluster.local/ns/client-ns/sa/client'] } }] }] };
  const attrs = conn({ sourcePrincipal: 'example.org/ns/client-ns/sa/client' });
  const withTd = compilePolicy(ap('server-ns/p', spec), { rootNamespace: ROOT, trustDomain: 'example.org' });
  const without = compilePolicy(ap('server-ns/p', spec), { rootNamespace: ROOT });
  assert.equal(matchPolicy(withTd, attrs, { enforcer: 'waypoint' }), 0);
  assert.equal(matchPolicy(without, attrs, { enforcer: 'waypoint' }), null);
});

test('match: an unknown condition key is treated as matching in a DENY rule (fail closed)', () => {
  const p = compilePolicy(ap('server-ns/p', { action: 'DENY', rules: [when('experimental.envoy.filters.foo[bar]', ['x'])] }), { rootNamespace: ROOT });
  assert.equal(matchPolicy(p, req(), { enforcer: 'waypoint' }), 0);
  assert.deepEqual(p.warnings.map((w) => w.code), ['AMBIT_WARN_AUTHZ_UNKNOWN_KEY']);
});
