// The authorization decision, shared by the ztunnel (L4) and the waypoint (L7). Pure.
//
// Order (Istio's): CUSTOM -> DENY -> ALLOW; AUDIT never decides.
// - CUSTOM (waypoint only): Ambit has no ext-authz provider, so a matching CUSTOM policy denies
//   ("no ext-authz provider": fail closed). The ztunnel does not enforce CUSTOM at all (the
//   conversion to the workload API warns about it).
// - Any matching DENY denies.
// - No ALLOW policy: allow. Otherwise some ALLOW policy must match, else deny.
// - Dry-run policies never decide; each is reported with what the decision would be if it were
//   enforced together with the live policies.
// - Policies are considered in `ns/name` order, so the policy a decision names does not depend
//   on the order they were received in.
//
// Matching follows the ztunnel exactly (rbac.rs): rules OR, clauses AND (a clause with no match
// matches), matches OR (an empty match is skipped, so a clause whose matches are all empty
// matches nothing), and inside a match every field kind present must hold.
//
// L7 fields can only be decided with HTTP attributes at the waypoint. Without them (at the
// ztunnel, or a plain TCP connection through a waypoint) they fail closed:
// - in an ALLOW policy a rule using any L7 field matches nothing;
// - in any other action L7 fields are treated as "may match": only the L4 fields decide.
// Condition keys Ambit does not know are never provable: they fail closed the same way even
// with HTTP attributes. `connection.sni` is never present, so its values never match.

import type { CompiledAction, CompiledMatch, CompiledPolicy, CompiledRule } from './compiled-policy.js';
import { hasL7 } from './compiled-policy.js';
import { parsePrincipal, stripSpiffe, type RequestAttributes, type SpiffeParts } from './attributes.js';
import { cidrContains } from './ip-match.js';
import { matchString } from './string-match.js';
import { byCodeUnits } from '../core/compare.js';

export type Enforcer = 'ztunnel' | 'waypoint';

export interface EvaluateOptions {
  enforcer: Enforcer;
}

export type DecisionCode =
  | 'ALLOWED_NO_ALLOW_POLICY'
  | 'ALLOWED_BY_POLICY'
  | 'DENIED_BY_POLICY'
  | 'DENIED_NO_ALLOW_MATCH'
  | 'DENIED_NO_EXT_AUTHZ_PROVIDER'
  /** Waypoint only: a presented JWT failed RequestAuthentication (decided before any policy). */
  | 'DENIED_INVALID_TOKEN';

export interface DryRunResult {
  /** `ns/name` */
  policy: string;
  action: CompiledAction;
  matched: boolean;
  ruleIndex: number | null;
  /** The decision if this policy were enforced together with the live ones. */
  wouldDecide: 'ALLOW' | 'DENY';
}

export interface Decision {
  decision: 'ALLOW' | 'DENY';
  /** `ns/name` of the deciding policy; null when no policy decided (no ALLOW policy, or none matched). */
  policy: string | null;
  /** The deciding rule's index in its source. */
  ruleIndex: number | null;
  reason: string;
  code: DecisionCode;
  dryRun: DryRunResult[];
  /** AUDIT policies that matched (for the access log); they do not change the decision. */
  audit: { policy: string; ruleIndex: number }[];
}

/** Everything a match needs about the connection/request, computed once. */
interface Facts {
  attrs: RequestAttributes;
  principal: string | undefined;
  identity: SpiffeParts | null;
  /** null when L7 fields cannot be decided (ztunnel, or no HTTP attributes). */
  http: {
    method: string;
    path: string;
    host: string;
    /** A header by lower-case name, repeated ones joined with commas (the map is built on first use). */
    header(name: string): string | undefined;
    remoteIp: string | undefined;
  } | null;
}

function factsOf(attrs: RequestAttributes, enforcer: Enforcer): Facts {
  const principal = attrs.sourcePrincipal === undefined || attrs.sourcePrincipal === '' ? undefined : stripSpiffe(attrs.sourcePrincipal);
  const h = enforcer === 'waypoint' ? attrs.http : undefined;
  let http: Facts['http'] = null;
  if (h) {
    let headers: Map<string, string> | undefined;
    const header = (name: string): string | undefined => {
      if (!headers) {
        headers = new Map<string, string>();
        for (const [k, v] of Object.entries(h.headers ?? {})) {
          const key = k.toLowerCase();
          const value = Array.isArray(v) ? v.join(',') : v;
          const prev = headers.get(key);
          headers.set(key, prev === undefined ? value : `${prev},${value}`);
        }
      }
      return headers.get(name);
    };
    const q = h.path.search(/[?#]/);
    http = {
      method: h.method,
      path: q >= 0 ? h.path.slice(0, q) : h.path,
      host: h.host.toLowerCase(),
      header,
      remoteIp: h.remoteIp ?? attrs.sourceIp,
    };
  }
  return { attrs, principal, identity: identityOf(principal), http };
}

/** Parsed principals, kept for reuse (a mesh has few identities; the cache starts over past 4,096). */
const identities = new Map<string, SpiffeParts | null>();

function identityOf(principal: string | undefined): SpiffeParts | null {
  if (principal === undefined) return null;
  let id = identities.get(principal);
  if (id === undefined) {
    if (identities.size >= 4096) identities.clear();
    const parsed = parsePrincipal(principal);
    id = parsed && Object.freeze(parsed);
    identities.set(principal, id);
  }
  return id;
}

/** Positive kind: absent or some value matches; negated kind: no value matches. */
function check<T>(pos: readonly T[], neg: readonly T[], pred: (v: T) => boolean): boolean {
  if (pos.length > 0 && !pos.some(pred)) return false;
  return !neg.some(pred);
}

/** The string values of a claim (`claims[a][b]`); an array claim gives each scalar element. */
function claimValues(claims: Record<string, unknown> | undefined, path: readonly string[]): string[] {
  let cur: unknown = claims;
  for (const p of path) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur)) return [];
    cur = (cur as Record<string, unknown>)[p];
  }
  const scalar = (v: unknown): string[] =>
    typeof v === 'string' ? [v] : typeof v === 'number' || typeof v === 'boolean' ? [String(v)] : [];
  return Array.isArray(cur) ? cur.flatMap(scalar) : scalar(cur);
}

function matchL4(m: CompiledMatch, f: Facts): boolean {
  const { attrs, principal, identity } = f;
  return (
    check(m.destinationIps, m.notDestinationIps, (c) => cidrContains(c, attrs.destinationIp)) &&
    check(m.sourceIps, m.notSourceIps, (c) => cidrContains(c, attrs.sourceIp)) &&
    check(m.destinationPorts, m.notDestinationPorts, (p) => p === attrs.destinationPort) &&
    check(m.serviceAccounts, m.notServiceAccounts, (s) => identity !== null && identity.namespace === s.namespace && identity.serviceAccount === s.serviceAccount) &&
    check(m.principals, m.notPrincipals, (s) => matchString(s, principal)) &&
    check(m.namespaces, m.notNamespaces, (s) => matchString(s, identity?.namespace))
  );
}

function matchL7(m: CompiledMatch, f: Facts, action: CompiledAction): boolean {
  const h = f.http;
  if (!h) return true; // only reached for non-ALLOW actions: L7 "may match"
  const auth = f.attrs.http?.auth;
  return (
    check(m.hosts, m.notHosts, (s) => matchString(s, h.host)) &&
    check(m.methods, m.notMethods, (s) => s === h.method) &&
    check(m.paths, m.notPaths, (s) => matchString(s, h.path)) &&
    check(m.requestPrincipals, m.notRequestPrincipals, (s) => matchString(s, auth?.principal)) &&
    check(m.remoteIps, m.notRemoteIps, (c) => cidrContains(c, h.remoteIp)) &&
    check(m.audiences, m.notAudiences, (s) => (auth?.audiences ?? []).some((a) => matchString(s, a))) &&
    check(m.presenters, m.notPresenters, (s) => matchString(s, auth?.presenter)) &&
    check(m.sni, m.notSni, () => false) &&
    m.headers.every((hm) => check(hm.values, hm.notValues, (s) => matchString(s, h.header(hm.name)))) &&
    m.claims.every((cm) => {
      const values = claimValues(auth?.claims, cm.path);
      return check(cm.values, cm.notValues, (s) => values.some((v) => matchString(s, v)));
    }) &&
    (m.unknown.length === 0 || action !== 'ALLOW')
  );
}

function isEmptyMatch(m: CompiledMatch): boolean {
  return (
    m.namespaces.length + m.notNamespaces.length + m.principals.length + m.notPrincipals.length +
      m.sourceIps.length + m.notSourceIps.length + m.destinationIps.length + m.notDestinationIps.length +
      m.destinationPorts.length + m.notDestinationPorts.length + m.serviceAccounts.length +
      m.notServiceAccounts.length === 0 && !hasL7(m)
  );
}

function matchRule(rule: CompiledRule, f: Facts, action: CompiledAction): boolean {
  if (f.http === null && action === 'ALLOW' && rule.clauses.some((c) => c.matches.some(hasL7))) return false;
  return rule.clauses.every(
    (c) => c.matches.length === 0 || c.matches.some((m) => !isEmptyMatch(m) && matchL4(m, f) && matchL7(m, f, action)),
  );
}

function firstMatchingRule(policy: CompiledPolicy, f: Facts): number | null {
  for (const rule of policy.rules) if (matchRule(rule, f, policy.action)) return rule.index;
  return null;
}

/** The index of the first rule of `policy` that matches, or null. */
export function matchPolicy(policy: CompiledPolicy, attrs: RequestAttributes, opts: EvaluateOptions): number | null {
  return firstMatchingRule(policy, factsOf(attrs, opts.enforcer));
}

type Verdict = Pick<Decision, 'decision' | 'policy' | 'ruleIndex' | 'reason' | 'code'>;

function decide(live: readonly CompiledPolicy[], f: Facts, enforcer: Enforcer): Verdict {
  if (enforcer === 'waypoint') {
    for (const p of live) {
      if (p.action !== 'CUSTOM') continue;
      const r = firstMatchingRule(p, f);
      if (r !== null) {
        const provider = p.provider ? ` "${p.provider}"` : '';
        return {
          decision: 'DENY', policy: p.key, ruleIndex: r, code: 'DENIED_NO_EXT_AUTHZ_PROVIDER',
          reason: `no ext-authz provider: CUSTOM policy ${p.key} rule ${r} matched and its provider${provider} is not available, so the request is denied`,
        };
      }
    }
  }
  for (const p of live) {
    if (p.action !== 'DENY') continue;
    const r = firstMatchingRule(p, f);
    if (r !== null) {
      return { decision: 'DENY', policy: p.key, ruleIndex: r, code: 'DENIED_BY_POLICY', reason: `DENY policy ${p.key} rule ${r} matched` };
    }
  }
  const allows = live.filter((p) => p.action === 'ALLOW');
  if (allows.length === 0) {
    return { decision: 'ALLOW', policy: null, ruleIndex: null, code: 'ALLOWED_NO_ALLOW_POLICY', reason: 'no ALLOW policy applies' };
  }
  for (const p of allows) {
    const r = firstMatchingRule(p, f);
    if (r !== null) {
      return { decision: 'ALLOW', policy: p.key, ruleIndex: r, code: 'ALLOWED_BY_POLICY', reason: `ALLOW policy ${p.key} rule ${r} matched` };
    }
  }
  return {
    decision: 'DENY', policy: null, ruleIndex: null, code: 'DENIED_NO_ALLOW_MATCH',
    reason: `no ALLOW policy matched (considered: ${allows.map((p) => p.key).join(', ')})`,
  };
}

/** Policy key order (`ns/name`): the order evaluate() decides in. Memoized lists kept in it spare evaluate() a sorted copy. */
export const byPolicyKey = (a: { key: string }, b: { key: string }): number => byCodeUnits(a.key, b.key);

function isSorted(policies: readonly CompiledPolicy[]): boolean {
  for (let i = 1; i < policies.length; i++) if (byPolicyKey(policies[i - 1]!, policies[i]!) > 0) return false;
  return true;
}

/** What evaluate() returns when no policy applies at all: one shared, frozen Decision. */
const NONE = Object.freeze([]) as never[];
const NO_POLICY: Decision = Object.freeze({
  decision: 'ALLOW', policy: null, ruleIndex: null, code: 'ALLOWED_NO_ALLOW_POLICY', reason: 'no ALLOW policy applies', dryRun: NONE, audit: NONE,
} as const);

/**
 * Decides a connection (ztunnel) or request (waypoint) against the policies that apply to its
 * destination (select them with applicable.ts first).
 */
export function evaluate(policies: readonly CompiledPolicy[], attrs: RequestAttributes, opts: EvaluateOptions): Decision {
  if (policies.length === 0) return NO_POLICY; // the common case at a waypoint: no facts to compute
  const f = factsOf(attrs, opts.enforcer);
  // Callers usually pass a list already in key order without dry-run policies: used as it is.
  const sorted = isSorted(policies) ? policies : [...policies].sort(byPolicyKey);
  const live = sorted.some((p) => p.dryRun) ? sorted.filter((p) => !p.dryRun) : sorted;
  const verdict = decide(live, f, opts.enforcer);

  const audit: Decision['audit'] = [];
  for (const p of live) {
    if (p.action !== 'AUDIT') continue;
    const r = firstMatchingRule(p, f);
    if (r !== null) audit.push({ policy: p.key, ruleIndex: r });
  }

  const dryRun: DryRunResult[] = [];
  for (const p of sorted) {
    if (!p.dryRun || (p.action === 'CUSTOM' && opts.enforcer === 'ztunnel')) continue;
    const r = firstMatchingRule(p, f);
    const would = decide([...live, { ...p, dryRun: false }].sort(byPolicyKey), f, opts.enforcer);
    dryRun.push({ policy: p.key, action: p.action, matched: r !== null, ruleIndex: r, wouldDecide: would.decision });
  }

  return { ...verdict, dryRun, audit };
}
