// Decisions: actions and their order, dry-run, scopes, L7 attributes at each enforcer, STRICT.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AuthorizationPolicySpec } from '../../src/config/resources.js';
import {
  evaluate,
  fromAuthorization,
  staticStrictAuthorization,
  type CompiledPolicy,
  type Decision,
  type Enforcer,
  type RequestAttributes,
} from '../../src/rbac/index.js';
import { compiled, conn, OTHER, plaintext, req, ROOT } from './rbac-fixtures.js';

const allowAll: AuthorizationPolicySpec = { action: 'ALLOW', rules: [{}] };
const denyAll: AuthorizationPolicySpec = { action: 'DENY', rules: [{}] };
const fromOther: AuthorizationPolicySpec = { rules: [{ from: [{ source: { principals: [OTHER] } }] }] };

interface Row {
  name: string;
  policies: CompiledPolicy[];
  attrs: RequestAttributes;
  enforcer?: Enforcer;
  expect: Partial<Decision>;
  /** A substring the reason must contain. */
  reason?: string;
}

const rows: Row[] = [
  {
    name: 'no policy: allow',
    policies: [],
    attrs: conn(),
    expect: { decision: 'ALLOW', policy: null, ruleIndex: null, code: 'ALLOWED_NO_ALLOW_POLICY' },
  },
  {
    name: 'ALLOW with no rules matches nothing: deny all',
    policies: [compiled('server-ns/allow-nothing', { action: 'ALLOW' })],
    attrs: conn(),
    expect: { decision: 'DENY', policy: null, code: 'DENIED_NO_ALLOW_MATCH' },
    reason: 'no ALLOW policy matched (considered: server-ns/allow-nothing)',
  },
  {
    name: 'ALLOW with rules: [] is the same as no rules',
    policies: [compiled('server-ns/empty', { action: 'ALLOW', rules: [] })],
    attrs: conn(),
    expect: { decision: 'DENY', code: 'DENIED_NO_ALLOW_MATCH' },
  },
  {
    name: 'ALLOW with rules: [{}] matches everything, even plaintext',
    policies: [compiled('server-ns/allow-all', allowAll)],
    attrs: plaintext(),
    expect: { decision: 'ALLOW', policy: 'server-ns/allow-all', ruleIndex: 0, code: 'ALLOWED_BY_POLICY' },
  },
  {
    name: 'action defaults to ALLOW',
    policies: [compiled('server-ns/p', fromOther)],
    attrs: conn(),
    expect: { decision: 'DENY', code: 'DENIED_NO_ALLOW_MATCH' },
  },
  {
    name: 'DENY with no rules denies nothing',
    policies: [compiled('server-ns/deny-nothing', { action: 'DENY' })],
    attrs: conn(),
    expect: { decision: 'ALLOW', code: 'ALLOWED_NO_ALLOW_POLICY' },
  },
  {
    name: 'DENY with rules: [{}] denies everything',
    policies: [compiled('server-ns/deny-all', denyAll)],
    attrs: conn(),
    expect: { decision: 'DENY', policy: 'server-ns/deny-all', ruleIndex: 0, code: 'DENIED_BY_POLICY' },
  },
  {
    name: 'a matching DENY wins over a matching ALLOW',
    policies: [compiled('server-ns/allow-all', allowAll), compiled('server-ns/deny', { action: 'DENY', rules: [{ to: [{ operation: { ports: ['8080'] } }] }] })],
    attrs: conn(),
    expect: { decision: 'DENY', policy: 'server-ns/deny' },
  },
  {
    name: 'a DENY that does not match leaves the ALLOW to decide',
    policies: [compiled('server-ns/allow-all', allowAll), compiled('server-ns/deny', { action: 'DENY', rules: [{ to: [{ operation: { ports: ['9090'] } }] }] })],
    attrs: conn(),
    expect: { decision: 'ALLOW', policy: 'server-ns/allow-all' },
  },
  {
    name: 'one matching ALLOW among several is enough',
    policies: [compiled('server-ns/a', fromOther), compiled('server-ns/b', allowAll)],
    attrs: conn(),
    expect: { decision: 'ALLOW', policy: 'server-ns/b' },
  },
  {
    name: 'no ALLOW matched: the reason names every ALLOW policy considered',
    policies: [compiled('server-ns/b', fromOther), compiled('istio-system/a', fromOther), compiled('server-ns/d', { action: 'DENY' })],
    attrs: conn(),
    expect: { decision: 'DENY', policy: null, ruleIndex: null },
    reason: 'no ALLOW policy matched (considered: istio-system/a, server-ns/b)',
  },
  {
    name: 'the deciding policy is the first by ns/name, whatever the input order',
    policies: [compiled('server-ns/z-deny', denyAll), compiled('server-ns/a-deny', denyAll)],
    attrs: conn(),
    expect: { policy: 'server-ns/a-deny' },
  },
  {
    name: 'AUDIT never decides: allow and report the audit',
    policies: [compiled('server-ns/audit', { action: 'AUDIT', rules: [{}] })],
    attrs: conn(),
    expect: { decision: 'ALLOW', policy: null, audit: [{ policy: 'server-ns/audit', ruleIndex: 0 }] },
  },
  {
    name: 'AUDIT does not count as an ALLOW policy',
    policies: [compiled('server-ns/audit', { action: 'AUDIT', rules: [{}] }), compiled('server-ns/a', allowAll)],
    attrs: conn(),
    expect: { decision: 'ALLOW', policy: 'server-ns/a' },
  },
  {
    name: 'CUSTOM at the waypoint: a match denies, no ext-authz provider',
    policies: [compiled('server-ns/ext', { action: 'CUSTOM', provider: { name: 'opa' }, rules: [{ to: [{ operation: { paths: ['/admin/*'] } }] }] })],
    attrs: req({ path: '/admin/users' }),
    enforcer: 'waypoint',
    expect: { decision: 'DENY', policy: 'server-ns/ext', ruleIndex: 0, code: 'DENIED_NO_EXT_AUTHZ_PROVIDER' },
    reason: 'no ext-authz provider',
  },
  {
    name: 'CUSTOM at the waypoint: no match, no effect',
    policies: [compiled('server-ns/ext', { action: 'CUSTOM', provider: { name: 'opa' }, rules: [{ to: [{ operation: { paths: ['/admin/*'] } }] }] })],
    attrs: req({ path: '/shop' }),
    enforcer: 'waypoint',
    expect: { decision: 'ALLOW', code: 'ALLOWED_NO_ALLOW_POLICY' },
  },
  {
    name: 'CUSTOM is decided before DENY',
    policies: [compiled('server-ns/a-deny', denyAll), compiled('server-ns/z-ext', { action: 'CUSTOM', provider: { name: 'opa' }, rules: [{}] })],
    attrs: req(),
    enforcer: 'waypoint',
    expect: { decision: 'DENY', policy: 'server-ns/z-ext', code: 'DENIED_NO_EXT_AUTHZ_PROVIDER' },
  },
  {
    name: 'CUSTOM is not enforced by the ztunnel',
    policies: [compiled('server-ns/ext', { action: 'CUSTOM', provider: { name: 'opa' }, rules: [{}] })],
    attrs: conn(),
    enforcer: 'ztunnel',
    expect: { decision: 'ALLOW', dryRun: [] },
  },
  {
    name: 'a dry-run DENY never denies but reports that it would',
    policies: [compiled('server-ns/deny-dry', denyAll, { 'istio.io/dry-run': 'true' })],
    attrs: conn(),
    expect: { decision: 'ALLOW', dryRun: [{ policy: 'server-ns/deny-dry', action: 'DENY', matched: true, ruleIndex: 0, wouldDecide: 'DENY' }] },
  },
  {
    name: 'a dry-run ALLOW that does not match would deny (it would be the only ALLOW)',
    policies: [compiled('server-ns/allow-dry', fromOther, { 'istio.io/dry-run': 'true' })],
    attrs: conn(),
    expect: { decision: 'ALLOW', code: 'ALLOWED_NO_ALLOW_POLICY', dryRun: [{ policy: 'server-ns/allow-dry', action: 'ALLOW', matched: false, ruleIndex: null, wouldDecide: 'DENY' }] },
  },
  {
    name: 'a dry-run ALLOW that does not match changes nothing when a live ALLOW matches',
    policies: [compiled('server-ns/allow-dry', fromOther, { 'istio.io/dry-run': 'true' }), compiled('server-ns/live', allowAll)],
    attrs: conn(),
    expect: { decision: 'ALLOW', policy: 'server-ns/live', dryRun: [{ policy: 'server-ns/allow-dry', action: 'ALLOW', matched: false, ruleIndex: null, wouldDecide: 'ALLOW' }] },
  },
  {
    name: 'a dry-run ALLOW does not count as an ALLOW policy for the live decision',
    policies: [compiled('server-ns/allow-dry', allowAll, { 'istio.io/dry-run': 'true' }), compiled('server-ns/live', fromOther)],
    attrs: conn(),
    expect: { decision: 'DENY', reason: 'no ALLOW policy matched (considered: server-ns/live)' },
  },
  {
    name: 'dry-run annotation other than true is live',
    policies: [compiled('server-ns/deny', denyAll, { 'istio.io/dry-run': 'false' })],
    attrs: conn(),
    expect: { decision: 'DENY', dryRun: [] },
  },
  // ---- L7 attributes where there is no HTTP ----
  {
    name: 'ztunnel: an ALLOW rule with methods matches nothing (fail closed)',
    policies: [compiled('server-ns/p', { rules: [{ to: [{ operation: { methods: ['GET'] } }] }] })],
    attrs: req(),
    enforcer: 'ztunnel',
    expect: { decision: 'DENY', code: 'DENIED_NO_ALLOW_MATCH' },
  },
  {
    name: 'ztunnel: the other, L4-only ALLOW rule still matches',
    policies: [compiled('server-ns/p', { rules: [{ to: [{ operation: { methods: ['GET'] } }] }, { from: [{ source: { namespaces: ['client-ns'] } }] }] })],
    attrs: conn(),
    enforcer: 'ztunnel',
    expect: { decision: 'ALLOW', ruleIndex: 1 },
  },
  {
    name: 'ztunnel: a DENY of only DELETE denies every connection (L7 treated as may-match)',
    policies: [compiled('server-ns/no-delete', { action: 'DENY', rules: [{ to: [{ operation: { methods: ['DELETE'] } }] }] })],
    attrs: conn(),
    enforcer: 'ztunnel',
    expect: { decision: 'DENY', policy: 'server-ns/no-delete' },
  },
  {
    name: 'ztunnel: a DENY keeps its L4 conditions (other port allowed)',
    policies: [compiled('server-ns/no-delete', { action: 'DENY', rules: [{ to: [{ operation: { methods: ['DELETE'], ports: ['9090'] } }] }] })],
    attrs: conn(),
    enforcer: 'ztunnel',
    expect: { decision: 'ALLOW' },
  },
  {
    name: 'waypoint: the same DENY of DELETE lets GET through',
    policies: [compiled('server-ns/no-delete', { action: 'DENY', rules: [{ to: [{ operation: { methods: ['DELETE'] } }] }] })],
    attrs: req({ method: 'GET' }),
    enforcer: 'waypoint',
    expect: { decision: 'ALLOW' },
  },
  {
    name: 'waypoint: the same DENY of DELETE denies DELETE',
    policies: [compiled('server-ns/no-delete', { action: 'DENY', rules: [{ to: [{ operation: { methods: ['DELETE'] } }] }] })],
    attrs: req({ method: 'DELETE' }),
    enforcer: 'waypoint',
    expect: { decision: 'DENY' },
  },
  {
    name: 'waypoint, plain TCP (no HTTP attributes): DENY with methods fails closed',
    policies: [compiled('server-ns/no-delete', { action: 'DENY', rules: [{ to: [{ operation: { methods: ['DELETE'] } }] }] })],
    attrs: conn(),
    enforcer: 'waypoint',
    expect: { decision: 'DENY' },
  },
  {
    name: 'waypoint, plain TCP: ALLOW with paths matches nothing',
    policies: [compiled('server-ns/p', { rules: [{ to: [{ operation: { paths: ['/*'] } }] }] })],
    attrs: conn(),
    enforcer: 'waypoint',
    expect: { decision: 'DENY' },
  },
  {
    name: 'ztunnel ignores HTTP attributes even if given: ALLOW with notMethods matches nothing',
    policies: [compiled('server-ns/p', { rules: [{ to: [{ operation: { notMethods: ['DELETE'] } }] }] })],
    attrs: req({ method: 'GET' }),
    enforcer: 'ztunnel',
    expect: { decision: 'DENY' },
  },
  // ---- STRICT / PERMISSIVE ----
  {
    name: 'STRICT (static strict policy) denies plaintext',
    policies: [fromAuthorization(staticStrictAuthorization(ROOT))],
    attrs: plaintext(),
    enforcer: 'ztunnel',
    expect: { decision: 'DENY', policy: 'istio-system/istio_converted_static_strict', ruleIndex: 0 },
  },
  {
    name: 'STRICT (static strict policy) allows an mTLS source',
    policies: [fromAuthorization(staticStrictAuthorization(ROOT))],
    attrs: conn(),
    enforcer: 'ztunnel',
    expect: { decision: 'ALLOW', code: 'ALLOWED_NO_ALLOW_POLICY' },
  },
  {
    name: 'STRICT plus an ALLOW of 10.0.0.0/8: plaintext from inside the block is still denied',
    policies: [fromAuthorization(staticStrictAuthorization(ROOT)), compiled('server-ns/ips', { rules: [{ from: [{ source: { ipBlocks: ['10.0.0.0/8'] } }] }] })],
    attrs: plaintext(),
    enforcer: 'ztunnel',
    expect: { decision: 'DENY', policy: 'istio-system/istio_converted_static_strict' },
  },
  {
    name: 'PERMISSIVE (no static policy): plaintext is allowed',
    policies: [],
    attrs: plaintext(),
    enforcer: 'ztunnel',
    expect: { decision: 'ALLOW' },
  },
  {
    name: 'PERMISSIVE with an ALLOW of principals: plaintext has no principal, denied',
    policies: [compiled('server-ns/p', { rules: [{ from: [{ source: { principals: ['*'] } }] }] })],
    attrs: plaintext(),
    enforcer: 'ztunnel',
    expect: { decision: 'DENY' },
  },
];

for (const row of rows) {
  test(`evaluate: ${row.name}`, () => {
    const d = evaluate(row.policies, row.attrs, { enforcer: row.enforcer ?? 'waypoint' });
    for (const [k, v] of Object.entries(row.expect)) {
      if (k === 'reason') assert.ok(d.reason.includes(v as string), `reason ${JSON.stringify(d.reason)}`);
      else assert.deepEqual(d[k as keyof Decision], v, `${k} of ${JSON.stringify(d)}`);
    }
    if (row.reason) assert.ok(d.reason.includes(row.reason), `reason ${JSON.stringify(d.reason)} lacks ${JSON.stringify(row.reason)}`);
  });
}

test('evaluate: the decision does not depend on the input order of policies', () => {
  const ps = [compiled('b-ns/deny', denyAll), compiled('a-ns/allow', allowAll), compiled('a-ns/deny', denyAll)];
  const d1 = evaluate(ps, conn(), { enforcer: 'ztunnel' });
  const d2 = evaluate([...ps].reverse(), conn(), { enforcer: 'ztunnel' });
  assert.deepEqual(d1, d2);
  assert.equal(d1.policy, 'a-ns/deny');
});
