// The ztunnel's view (workload API Authorization) of AuthorizationPolicy resources: structure,
// L7 fail-closed conversion with warnings, and evaluation of what the ztunnel receives.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AuthorizationPolicySpec } from '../../src/config/resources.js';
import { emptyMatch, type Authorization, type Match } from '../../src/xds/workload-api.js';
import {
  compilePolicy,
  evaluate,
  fromAuthorization,
  staticStrictAuthorization,
  toZtunnelAuthorization,
  type PolicyWarning,
  type RequestAttributes,
} from '../../src/rbac/index.js';
import { ap, CLIENT, conn, OTHER, plaintext, ROOT } from './rbac-fixtures.js';

const view = (nsName: string, spec: AuthorizationPolicySpec, annotations?: Record<string, string>) =>
  toZtunnelAuthorization(ap(nsName, spec, annotations), { rootNamespace: ROOT });
const m = (over: Partial<Match>): Match => ({ ...emptyMatch(), ...over });

interface StructRow {
  name: string;
  nsName?: string;
  spec: AuthorizationPolicySpec;
  annotations?: Record<string, string>;
  /** Expected Authorization fields (deepEqual each). */
  expect: Partial<Authorization> | null;
}

const structRows: StructRow[] = [
  { name: 'root namespace, no selector: GLOBAL', nsName: 'istio-system/g', spec: { rules: [{}] }, expect: { scope: 'GLOBAL', action: 'ALLOW', name: 'g', namespace: 'istio-system' } },
  { name: 'no selector: NAMESPACE', spec: { rules: [{}] }, expect: { scope: 'NAMESPACE' } },
  { name: 'selector: WORKLOAD_SELECTOR', spec: { selector: { matchLabels: { app: 'web' } }, rules: [{}] }, expect: { scope: 'WORKLOAD_SELECTOR' } },
  { name: 'root namespace with selector: WORKLOAD_SELECTOR', nsName: 'istio-system/s', spec: { selector: { matchLabels: { app: 'web' } } }, expect: { scope: 'WORKLOAD_SELECTOR' } },
  { name: 'targetRefs: not the ztunnel\'s', spec: { targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'waypoint' }], rules: [{}] }, expect: null },
  { name: 'deprecated targetRef: not the ztunnel\'s either', spec: { targetRef: { kind: 'Service', name: 'web' }, rules: [{}] }, expect: null },
  { name: 'AUDIT: nothing for the ztunnel', spec: { action: 'AUDIT', rules: [{}] }, expect: null },
  { name: 'DENY action', spec: { action: 'DENY', rules: [{}] }, expect: { action: 'DENY' } },
  { name: 'no rules: no rules (matches nothing)', spec: {}, expect: { rules: [] } },
  { name: 'rules: [{}]: one rule with no clause (matches everything)', spec: { rules: [{}] }, expect: { rules: [{ clauses: [] }] } },
  { name: 'dry-run annotation', spec: { rules: [{}] }, annotations: { 'istio.io/dry-run': 'true' }, expect: { dryRun: true } },
  { name: 'no dry-run annotation', spec: { rules: [{}] }, expect: { dryRun: false } },
  {
    name: 'a from list is one clause whose matches are its entries',
    spec: { rules: [{ from: [{ source: { principals: [CLIENT], notNamespaces: ['bad'] } }, { source: { ipBlocks: ['10.0.0.0/8'] } }] }] },
    expect: { rules: [{ clauses: [{ matches: [m({ principals: [{ exact: CLIENT }], notNamespaces: [{ exact: 'bad' }] }), m({ sourceIps: [{ address: '10.0.0.0', length: 8 }] })] }] }] },
  },
  {
    name: 'from, to and each when condition are separate clauses',
    spec: { rules: [{ from: [{ source: { namespaces: ['a'] } }], to: [{ operation: { ports: ['80', '443'], notPorts: ['8443'] } }], when: [{ key: 'source.ip', values: ['10.1.0.0/16'] }, { key: 'destination.port', notValues: ['22'] }] }] },
    expect: {
      rules: [{ clauses: [
        { matches: [m({ namespaces: [{ exact: 'a' }] })] },
        { matches: [m({ destinationPorts: [80, 443], notDestinationPorts: [8443] })] },
        { matches: [m({ sourceIps: [{ address: '10.1.0.0', length: 16 }] })] },
        { matches: [m({ notDestinationPorts: [22] })] },
      ] }],
    },
  },
  {
    name: 'string matches: exact, prefix, suffix, presence; spiffe:// stripped',
    spec: { rules: [{ from: [{ source: { principals: [`spiffe://${CLIENT}`, 'cluster.local/ns/a/*', '*/sa/b', '*'] } }] }] },
    expect: { rules: [{ clauses: [{ matches: [m({ principals: [{ exact: CLIENT }, { prefix: 'cluster.local/ns/a/' }, { suffix: '/sa/b' }, { presence: {} }] })] }] }] },
  },
  {
    name: 'single IPs are /32 and /128; IPv6 CIDRs keep their length',
    spec: { rules: [{ from: [{ source: { ipBlocks: ['10.0.0.1', 'fd00::1', 'fd00:10::/48'], notIpBlocks: ['10.0.0.0/24'] } }] }] },
    expect: { rules: [{ clauses: [{ matches: [m({ sourceIps: [{ address: '10.0.0.1', length: 32 }, { address: 'fd00::1', length: 128 }, { address: 'fd00:10::', length: 48 }], notSourceIps: [{ address: '10.0.0.0', length: 24 }] })] }] }] },
  },
  {
    name: 'serviceAccounts: ns/sa, and sa in the policy namespace',
    nsName: 'server-ns/p',
    spec: { rules: [{ from: [{ source: { serviceAccounts: ['client-ns/client', 'local'], notServiceAccounts: ['x/y'] } }] }] },
    expect: { rules: [{ clauses: [{ matches: [m({ serviceAccounts: [{ namespace: 'client-ns', serviceAccount: 'client' }, { namespace: 'server-ns', serviceAccount: 'local' }], notServiceAccounts: [{ namespace: 'x', serviceAccount: 'y' }] })] }] }] },
  },
  {
    name: 'when source.namespace / source.principal / destination.ip / source.serviceAccount map to L4 fields',
    spec: { rules: [{ when: [
      { key: 'source.namespace', values: ['a*'] },
      { key: 'source.principal', notValues: ['spiffe://cluster.local/ns/a/sa/b'] },
      { key: 'destination.ip', values: ['10.0.2.7'] },
      { key: 'source.serviceAccount', values: ['a/b'] },
    ] }] },
    expect: { rules: [{ clauses: [
      { matches: [m({ namespaces: [{ prefix: 'a' }] })] },
      { matches: [m({ notPrincipals: [{ exact: 'cluster.local/ns/a/sa/b' }] })] },
      { matches: [m({ destinationIps: [{ address: '10.0.2.7', length: 32 }] })] },
      { matches: [m({ serviceAccounts: [{ namespace: 'a', serviceAccount: 'b' }] })] },
    ] }] },
  },
];

for (const row of structRows) {
  test(`ztunnel view: ${row.name}`, () => {
    const v = view(row.nsName ?? 'server-ns/p', row.spec, row.annotations);
    if (row.expect === null) {
      assert.equal(v.authorization, null);
      return;
    }
    assert.ok(v.authorization, 'expected an Authorization');
    for (const [k, val] of Object.entries(row.expect)) assert.deepEqual(v.authorization[k as keyof Authorization], val, k);
    assert.deepEqual(v.warnings, []);
  });
}

test('ztunnel view: CUSTOM gives no Authorization and a warning', () => {
  const v = view('server-ns/ext', { action: 'CUSTOM', provider: { name: 'opa' }, rules: [{}] });
  assert.equal(v.authorization, null);
  assert.equal(v.warnings.length, 1);
  const w = v.warnings[0] as PolicyWarning;
  assert.equal(w.code, 'AMBIT_WARN_AUTHZ_CUSTOM_NOT_ENFORCED');
  assert.equal(w.policy, 'server-ns/ext');
  assert.match(w.message, /not enforced by the ztunnel/);
});

test('ztunnel view: ALLOW drops a rule with L7 attributes, keeps the others, warns', () => {
  const v = view('server-ns/p', { rules: [
    { from: [{ source: { namespaces: ['a'] } }] },
    { from: [{ source: { namespaces: ['b'], requestPrincipals: ['*'] } }], to: [{ operation: { methods: ['GET'], paths: ['/x'] } }], when: [{ key: 'request.headers[x-user]', values: ['u'] }] },
    { to: [{ operation: { ports: ['80'] } }] },
  ] });
  assert.deepEqual(v.authorization?.rules, [
    { clauses: [{ matches: [m({ namespaces: [{ exact: 'a' }] })] }] },
    { clauses: [{ matches: [m({ destinationPorts: [80] })] }] },
  ]);
  assert.deepEqual(v.ruleIndexes, [0, 2]);
  assert.equal(v.warnings.length, 1);
  const w = v.warnings[0] as PolicyWarning;
  assert.equal(w.code, 'AMBIT_WARN_AUTHZ_L7_ALLOW_RULE_DROPPED');
  assert.equal(w.ruleIndex, 1);
  assert.deepEqual([...w.attributes].sort(), ['methods', 'paths', 'request.headers[x-user]', 'requestPrincipals']);
  assert.match(w.message, /rule 1 of ALLOW policy server-ns\/p/);
  assert.match(w.message, /allows nothing/);
});

test('ztunnel view: ALLOW whose only rule is L7 has no rules: the ztunnel denies everything it applies to', () => {
  const v = view('server-ns/p', { rules: [{ to: [{ operation: { methods: ['GET'] } }] }] });
  assert.deepEqual(v.authorization?.rules, []);
  const d = evaluate([fromAuthorization(v.authorization as Authorization)], conn(), { enforcer: 'ztunnel' });
  assert.equal(d.decision, 'DENY');
});

test('ztunnel view: DENY of only DELETE becomes a rule with no clause (denies every connection), with a warning', () => {
  const v = view('server-ns/no-delete', { action: 'DENY', rules: [{ to: [{ operation: { methods: ['DELETE'] } }] }] });
  assert.deepEqual(v.authorization?.rules, [{ clauses: [] }]);
  const w = v.warnings[0] as PolicyWarning;
  assert.equal(w.code, 'AMBIT_WARN_AUTHZ_L7_DENY_WIDENED');
  assert.deepEqual(w.attributes, ['methods']);
  assert.equal(w.ruleIndex, 0);
  assert.match(w.message, /denies every connection to the workloads the policy applies to/);
  const d = evaluate([fromAuthorization(v.authorization as Authorization)], conn(), { enforcer: 'ztunnel' });
  assert.equal(d.decision, 'DENY');
});

test('ztunnel view: DENY keeps the L4 fields of an entry that also has L7 ones', () => {
  const v = view('server-ns/d', { action: 'DENY', rules: [{ from: [{ source: { principals: [OTHER], requestPrincipals: ['*'] } }], to: [{ operation: { ports: ['9090'], methods: ['POST'] } }] }] });
  assert.deepEqual(v.authorization?.rules, [{ clauses: [
    { matches: [m({ principals: [{ exact: OTHER }] })] },
    { matches: [m({ destinationPorts: [9090] })] },
  ] }]);
  assert.match((v.warnings[0] as PolicyWarning).message, /denies every connection its L4 conditions match/);
});

test('ztunnel view: DENY entry left with only L7 attributes makes its whole clause match anything', () => {
  const v = view('server-ns/d', { action: 'DENY', rules: [{
    from: [{ source: { namespaces: ['a'] } }, { source: { remoteIpBlocks: ['1.2.3.4'] } }],
    to: [{ operation: { ports: ['8080'] } }],
    when: [{ key: 'request.auth.claims[iss]', values: ['x'] }],
  }] });
  // The from clause (one entry matches anything) and the when clause are gone; ports remain.
  assert.deepEqual(v.authorization?.rules, [{ clauses: [{ matches: [m({ destinationPorts: [8080] })] }] }]);
  assert.deepEqual([...(v.warnings[0] as PolicyWarning).attributes].sort(), ['remoteIpBlocks', 'request.auth.claims[iss]']);
  // So a plaintext connection from outside namespace `a` to 8080 is denied...
  const a = fromAuthorization(v.authorization as Authorization);
  assert.equal(evaluate([a], plaintext(), { enforcer: 'ztunnel' }).decision, 'DENY');
  // ...and one to another port is not.
  assert.equal(evaluate([a], plaintext({ destinationPort: 9090 }), { enforcer: 'ztunnel' }).decision, 'ALLOW');
});

test('ztunnel view: an Istio-style empty match (what Istio sends for a DENY of DELETE) matches nothing', () => {
  const istio: Authorization = {
    name: 'no-delete', namespace: 'server-ns', scope: 'NAMESPACE', action: 'DENY', dryRun: false,
    rules: [{ clauses: [{ matches: [emptyMatch()] }] }],
  };
  assert.equal(evaluate([fromAuthorization(istio)], conn(), { enforcer: 'ztunnel' }).decision, 'ALLOW');
  // while a clause with no match at all matches
  const noClauseMatch: Authorization = { ...istio, rules: [{ clauses: [{ matches: [] }] }] };
  assert.equal(evaluate([fromAuthorization(noClauseMatch)], conn(), { enforcer: 'ztunnel' }).decision, 'DENY');
});

test('ztunnel view: fromAuthorization keeps name, scope, action and dry-run', () => {
  const p = fromAuthorization({ name: 'n', namespace: 'ns', scope: 'GLOBAL', action: 'DENY', rules: [], dryRun: true });
  assert.equal(p.key, 'ns/n');
  assert.deepEqual(p.scope, { kind: 'GLOBAL' });
  assert.equal(p.action, 'DENY');
  assert.equal(p.dryRun, true);
});

test('ztunnel view: the static STRICT policy is Istio\'s istio_converted_static_strict', () => {
  assert.deepEqual(staticStrictAuthorization('istio-system'), {
    name: 'istio_converted_static_strict',
    namespace: 'istio-system',
    scope: 'WORKLOAD_SELECTOR',
    action: 'DENY',
    rules: [{ clauses: [{ matches: [m({ notPrincipals: [{ presence: {} }] })] }] }],
    dryRun: false,
  });
});

test('ztunnel view: an invalid value in a positive list that leaves nothing drops the rule, with a warning', () => {
  const v = view('server-ns/p', { rules: [{ from: [{ source: { ipBlocks: ['not-an-ip'] } }] }, { to: [{ operation: { ports: ['80', 'http'] } }] }] });
  assert.deepEqual(v.authorization?.rules, [{ clauses: [{ matches: [m({ destinationPorts: [80] })] }] }]);
  assert.deepEqual(v.ruleIndexes, [1]);
  assert.deepEqual(v.warnings.map((w) => [w.code, w.ruleIndex, w.attributes]), [
    ['AMBIT_WARN_AUTHZ_INVALID_VALUE', 0, ['ipBlocks']],
    ['AMBIT_WARN_AUTHZ_INVALID_VALUE', 1, ['ports']],
  ]);
});

test('ztunnel view: an entry with only invalid negated values matches anything', () => {
  const v = view('server-ns/p', { action: 'DENY', rules: [{ to: [{ operation: { notPorts: ['x'] } }] }] });
  assert.deepEqual(v.authorization?.rules, [{ clauses: [] }]);
});

// ---- the ztunnel evaluates what it received exactly as the engine evaluates the resource ----

const specs: [string, AuthorizationPolicySpec][] = [
  ['allow-ns', { rules: [{ from: [{ source: { namespaces: ['client-ns'] } }] }] }],
  ['allow-l7', { rules: [{ to: [{ operation: { methods: ['GET'] } }] }, { from: [{ source: { ipBlocks: ['10.0.1.0/24'] } }], to: [{ operation: { ports: ['8080'] } }] }] }],
  ['deny-l7-only', { action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin'] } }] }] }],
  ['deny-mixed', { action: 'DENY', rules: [{ from: [{ source: { notPrincipals: ['*'] } }, { source: { requestPrincipals: ['*'] } }], to: [{ operation: { ports: ['9090'], hosts: ['x'] } }] }] }],
  ['deny-when', { action: 'DENY', rules: [{ when: [{ key: 'destination.port', values: ['8080'] }, { key: 'request.headers[x]', values: ['y'] }] }] }],
  ['allow-sa', { rules: [{ from: [{ source: { serviceAccounts: ['client-ns/client'] } }] }, { when: [{ key: 'source.ip', notValues: ['10.0.0.0/8'] }] }] }],
  ['allow-nothing', {}],
  ['deny-not-ns', { action: 'DENY', rules: [{ from: [{ source: { notNamespaces: ['client-ns'] } }] }] }],
];
const attrsList: [string, RequestAttributes][] = [
  ['mtls client 8080', conn()],
  ['mtls other 9090', conn({ sourcePrincipal: OTHER, destinationPort: 9090 })],
  ['plaintext 8080', plaintext()],
  ['plaintext outside 10/8 on 9090', plaintext({ sourceIp: '192.168.1.1', destinationPort: 9090 })],
];

for (const [name, spec] of specs) {
  for (const [aname, attrs] of attrsList) {
    test(`ztunnel view: ${name} / ${aname}: the received Authorization decides as the compiled resource`, () => {
      const resource = ap(`server-ns/${name}`, spec);
      const direct = evaluate([compilePolicy(resource, { rootNamespace: ROOT })], attrs, { enforcer: 'ztunnel' });
      const v = toZtunnelAuthorization(resource, { rootNamespace: ROOT });
      const received = evaluate(v.authorization ? [fromAuthorization(v.authorization)] : [], attrs, { enforcer: 'ztunnel' });
      assert.equal(received.decision, direct.decision);
      assert.equal(received.policy, direct.policy);
      if (direct.ruleIndex !== null) assert.equal(v.ruleIndexes[received.ruleIndex as number], direct.ruleIndex);
    });
  }
}
