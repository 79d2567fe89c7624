// L7 authorization at the waypoint: the AuthorizationPolicies bound to a request, and the
// HTTP answer to a denied one. Pure; the decision itself is rbac's `evaluate` (enforcer
// 'waypoint', Istio's CUSTOM -> DENY -> ALLOW order).
//
// Invariants:
// - Authentication comes first (Envoy runs jwt_authn before RBAC): a request whose token was
//   rejected gets 401 with the authentication reason and no policy is consulted.
// - `request.auth.*` / requestPrincipals see only what authentication produced: auth attributes
//   handed in `attrs.http.auth` are replaced by the AuthnResult's (removed when anonymous).
// - Denied -> 403 with body `RBAC: access denied` (Envoy's RBAC filter), except the 401 case.
// - 401 "a token is required" (Ambit's choice; Istio answers 403 here): the request was denied,
//   carried NO token, and a token could have changed the outcome, i.e. either
//   (a) no ALLOW policy matched, and some live ALLOW rule that uses a positive request-auth
//       condition (requestPrincipals, request.auth.principal/audiences/presenter, a
//       request.auth.claims[...] value) would match if its request-auth conditions held; or
//   (b) the deciding DENY rule uses a negated request-auth condition (notRequestPrincipals,
//       notValues of a request.auth.* key): it matched because the request has no identity.
//   The 401 carries `WWW-Authenticate: Bearer realm="http://<host><path>"` (no error code, as
//   RFC 6750 section 3.1 asks for a request without credentials) and body `Jwt is missing`.
//   An authenticated request that is denied always gets 403: another token would not help.

import type { CompiledClause, CompiledMatch, CompiledPolicy, CompiledRule } from '../rbac/compiled-policy.js';
import { isEmptyCompiledMatch } from '../rbac/compiled-policy.js';
import type { Decision, RequestAttributes } from '../rbac/index.js';
import { evaluate, matchPolicy, policiesForTarget } from '../rbac/index.js';
import type { AuthnResult } from './request-authn.js';
import { policyTargetsOf, type WaypointTarget } from './waypoint-target.js';

export const RBAC_DENIED_BODY = 'RBAC: access denied';
export const JWT_MISSING_BODY = 'Jwt is missing';

export type L7Verdict =
  | { allow: true; decision: Decision }
  | { allow: false; status: 401 | 403; body: string; decision: Decision; wwwAuthenticate?: string };

/**
 * The AuthorizationPolicies a waypoint enforces for a request: those whose targetRefs name the
 * waypoint Gateway, the destination Service/ServiceEntry, or (root namespace only) the
 * GatewayClass istio-waypoint. Selector-based and namespace-wide policies are the ztunnel's.
 */
export function selectWaypointPolicies(all: readonly CompiledPolicy[], target: WaypointTarget, rootNamespace: string): CompiledPolicy[] {
  const out = new Set<CompiledPolicy>();
  for (const t of policyTargetsOf(target)) for (const p of policiesForTarget(all, t, { rootNamespace })) out.add(p);
  return [...out];
}

const hasPositiveAuth = (m: CompiledMatch): boolean =>
  m.requestPrincipals.length > 0 || m.audiences.length > 0 || m.presenters.length > 0 || m.claims.some((c) => c.values.length > 0);

const hasNegativeAuth = (m: CompiledMatch): boolean =>
  m.notRequestPrincipals.length > 0 || m.notAudiences.length > 0 || m.notPresenters.length > 0 || m.claims.some((c) => c.notValues.length > 0);

const usesAuth = (m: CompiledMatch): boolean => hasPositiveAuth(m) || hasNegativeAuth(m);

function withoutAuth(m: CompiledMatch): CompiledMatch {
  return {
    ...m,
    requestPrincipals: [], notRequestPrincipals: [], audiences: [], notAudiences: [],
    presenters: [], notPresenters: [], claims: [],
  };
}

/** The rule with its request-auth conditions assumed to hold. */
function assumeAuthHolds(rule: CompiledRule): CompiledRule {
  const clauses = rule.clauses.map((c): CompiledClause => {
    const matches = c.matches.map((m) => (usesAuth(m) ? withoutAuth(m) : m));
    // An entry left with nothing but auth conditions now matches anything: so does its clause
    // (evaluate reads a clause without matches as always true).
    if (matches.some((m, i) => usesAuth(c.matches[i] as CompiledMatch) && isEmptyCompiledMatch(m))) return { ...c, matches: [] };
    return { ...c, matches };
  });
  return { index: rule.index, clauses };
}

/** Would a valid token have let this anonymous request through an ALLOW policy? (case a) */
function tokenWouldAllow(policies: readonly CompiledPolicy[], attrs: RequestAttributes): boolean {
  for (const p of policies) {
    if (p.dryRun || p.action !== 'ALLOW') continue;
    for (const rule of p.rules) {
      if (!rule.clauses.some((c) => c.matches.some(hasPositiveAuth))) continue;
      if (matchPolicy({ ...p, rules: [assumeAuthHolds(rule)] }, attrs, { enforcer: 'waypoint' }) !== null) return true;
    }
  }
  return false;
}

/** Did the deciding DENY rule match only because the request carries no identity? (case b) */
function denyNeedsIdentity(policies: readonly CompiledPolicy[], decision: Decision): boolean {
  if (decision.code !== 'DENIED_BY_POLICY' || decision.policy === null) return false;
  const p = policies.find((x) => x.key === decision.policy && !x.dryRun);
  const rule = p?.rules.find((r) => r.index === decision.ruleIndex);
  return rule !== undefined && rule.clauses.some((c) => c.matches.some(hasNegativeAuth));
}

function withAuthn(attrs: RequestAttributes, authn: AuthnResult): RequestAttributes {
  if (!attrs.http || (authn.kind !== 'authenticated' && attrs.http.auth === undefined)) return attrs;
  const http = { ...attrs.http };
  if (authn.kind === 'authenticated') http.auth = authn.auth;
  else delete http.auth;
  return { ...attrs, http };
}

function realm(attrs: RequestAttributes): string {
  const h = attrs.http;
  if (!h) return 'Bearer';
  const q = h.path.search(/[?#]/);
  return `Bearer realm="http://${h.host}${q >= 0 ? h.path.slice(0, q) : h.path}"`;
}

export function authorizeRequest(policies: readonly CompiledPolicy[], attrs: RequestAttributes, authn: AuthnResult): L7Verdict {
  if (authn.kind === 'rejected') {
    return {
      allow: false,
      status: 401,
      body: authn.reason,
      wwwAuthenticate: authn.wwwAuthenticate,
      decision: {
        decision: 'DENY', policy: null, ruleIndex: null, code: 'DENIED_INVALID_TOKEN', dryRun: [], audit: [],
        reason: `request authentication failed: ${authn.reason}`,
      },
    };
  }
  const effective = withAuthn(attrs, authn);
  const decision = evaluate(policies, effective, { enforcer: 'waypoint' });
  if (decision.decision === 'ALLOW') return { allow: true, decision };

  const anonymousHttp = authn.kind === 'anonymous' && effective.http !== undefined;
  const tokenRequired =
    anonymousHttp &&
    ((decision.code === 'DENIED_NO_ALLOW_MATCH' && tokenWouldAllow(policies, effective)) || denyNeedsIdentity(policies, decision));
  if (tokenRequired) {
    return {
      allow: false, status: 401, body: JWT_MISSING_BODY, wwwAuthenticate: realm(effective),
      decision: { ...decision, reason: `${decision.reason}; a valid JWT is required` },
    };
  }
  return { allow: false, status: 403, body: RBAC_DENIED_BODY, decision };
}
