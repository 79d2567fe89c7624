// The normalized form of an authorization policy that `evaluate` runs, whichever enforcer runs it.
// Built from an AuthorizationPolicy resource by `compilePolicy` (compile.ts) or from the workload
// API's Authorization by `fromAuthorization` (ztunnel-view.ts).
//
// Shape (as the istio.security.Authorization proto):
//   rules    OR   - a policy with no rules matches nothing; a rule with no clauses matches everything
//   clauses  AND  - one clause per `from` list, per `to` list and per `when` condition
//   matches  OR   - one match per entry of the list (a `when` clause has exactly one)
//   fields   AND  - inside a match every field kind present must hold: any value of a positive
//                   kind may match, no value of a `not*` kind may match
//
// Invariants:
// - compilePolicy emits no empty clause and no empty match: an entry that can match anything
//   (no attribute, or only negated invalid values) removes its whole clause; an entry that can
//   match nothing (only invalid positive values) is removed from its clause; a clause left with
//   no entry removes its whole rule (it could never match). `rule.index` keeps the source index.
// - fromAuthorization copies what the ztunnel received verbatim; evaluate then reads an empty
//   match as the ztunnel does (skipped: a clause whose matches are all empty matches nothing).
// - Principals (and `source.principal` values) carry no `spiffe://`; hosts are lower-cased;
//   ports are integers 0..65535; IP values are parsed CIDRs.
// - The L4 part of a match is exactly the workload API's `Match`; the rest is L7.

import type { AuthorizationAction, PolicyTargetReference } from '../config/resources.js';
import type { AddressMatch, Match, StringMatch } from '../xds/workload-api.js';
import { emptyMatch } from '../xds/workload-api.js';

export type CompiledAction = AuthorizationAction; // 'ALLOW' | 'DENY' | 'AUDIT' | 'CUSTOM'

export type PolicyScope =
  /** A root-namespace policy without selector or targetRefs: every workload of the mesh. */
  | { kind: 'GLOBAL' }
  /** A policy without selector or targetRefs: every workload of its namespace. */
  | { kind: 'NAMESPACE' }
  /**
   * Workloads whose labels match (in the policy's namespace, or in every namespace for the root
   * namespace). `matchLabels` is absent for policies received from the workload API, where the
   * control plane has already resolved the selector into each workload's `authorizationPolicies`.
   */
  | { kind: 'WORKLOAD_SELECTOR'; matchLabels?: Record<string, string> }
  /** Bound to waypoints/services; enforced by the waypoint only. Each ref's namespace is filled in. */
  | { kind: 'TARGET_REFS'; targetRefs: (PolicyTargetReference & { namespace: string })[] };

/** A `request.headers[name]` condition. `name` is lower-cased. */
export interface HeaderMatch {
  name: string;
  values: StringMatch[];
  notValues: StringMatch[];
}

/** A `request.auth.claims[a][b]` condition; `path` = ['a', 'b']. */
export interface ClaimMatch {
  path: string[];
  values: StringMatch[];
  notValues: StringMatch[];
}

/** A `when` key Ambit does not know: it can never be proven, so it fails closed. */
export interface UnknownCondition {
  key: string;
  values: string[];
  notValues: string[];
}

/** L7 fields: only a waypoint with HTTP attributes can evaluate them. */
export interface L7Match {
  hosts: StringMatch[];
  notHosts: StringMatch[];
  methods: string[];
  notMethods: string[];
  paths: StringMatch[];
  notPaths: StringMatch[];
  requestPrincipals: StringMatch[];
  notRequestPrincipals: StringMatch[];
  remoteIps: AddressMatch[];
  notRemoteIps: AddressMatch[];
  audiences: StringMatch[];
  notAudiences: StringMatch[];
  presenters: StringMatch[];
  notPresenters: StringMatch[];
  sni: StringMatch[];
  notSni: StringMatch[];
  headers: HeaderMatch[];
  claims: ClaimMatch[];
  unknown: UnknownCondition[];
}

export interface CompiledMatch extends Match, L7Match {}

export interface CompiledClause {
  /** Where the clause came from (absent when received from the workload API). */
  origin?: 'from' | 'to' | 'when';
  /** For `when` clauses: the condition's key. */
  key?: string;
  matches: CompiledMatch[];
}

export interface CompiledRule {
  /** Index of the rule in the source (the resource's `rules`, or the Authorization's `rules`). */
  index: number;
  clauses: CompiledClause[];
}

/** A problem found while compiling or converting a policy, for `ambit validate` and logs. */
export interface PolicyWarning {
  /** `ns/name` */
  policy: string;
  /** The source rule; null when the warning is about the whole policy. */
  ruleIndex: number | null;
  /** The attributes concerned, as the policy spells them (`methods`, `request.headers[x-user]`). */
  attributes: string[];
  message: string;
  /** Stable code, `AMBIT_WARN_AUTHZ_...`. */
  code: PolicyWarningCode;
}

export type PolicyWarningCode =
  | 'AMBIT_WARN_AUTHZ_L7_ALLOW_RULE_DROPPED'
  | 'AMBIT_WARN_AUTHZ_L7_DENY_WIDENED'
  | 'AMBIT_WARN_AUTHZ_CUSTOM_NOT_ENFORCED'
  | 'AMBIT_WARN_AUTHZ_INVALID_VALUE'
  | 'AMBIT_WARN_AUTHZ_UNKNOWN_KEY'
  | 'AMBIT_WARN_AUTHZ_EMPTY_ENTRY';

export interface CompiledPolicy {
  name: string;
  namespace: string;
  /** `ns/name` */
  key: string;
  action: CompiledAction;
  scope: PolicyScope;
  dryRun: boolean;
  /** CUSTOM only: the ext-authz provider named by the policy. */
  provider?: string;
  rules: CompiledRule[];
  /** Problems found while compiling (invalid values, unknown keys, empty entries). */
  warnings: PolicyWarning[];
}

export function emptyCompiledMatch(): CompiledMatch {
  return {
    ...emptyMatch(),
    hosts: [], notHosts: [], methods: [], notMethods: [], paths: [], notPaths: [],
    requestPrincipals: [], notRequestPrincipals: [], remoteIps: [], notRemoteIps: [],
    audiences: [], notAudiences: [], presenters: [], notPresenters: [], sni: [], notSni: [],
    headers: [], claims: [], unknown: [],
  };
}

const L4_FIELDS = [
  'namespaces', 'notNamespaces', 'principals', 'notPrincipals', 'sourceIps', 'notSourceIps',
  'destinationIps', 'notDestinationIps', 'destinationPorts', 'notDestinationPorts',
  'serviceAccounts', 'notServiceAccounts',
] as const satisfies readonly (keyof Match)[];

const L7_FIELDS = [
  'hosts', 'notHosts', 'methods', 'notMethods', 'paths', 'notPaths', 'requestPrincipals',
  'notRequestPrincipals', 'remoteIps', 'notRemoteIps', 'audiences', 'notAudiences', 'presenters',
  'notPresenters', 'sni', 'notSni', 'headers', 'claims', 'unknown',
] as const satisfies readonly (keyof L7Match)[];

export function hasL4(m: Match): boolean {
  return L4_FIELDS.some((f) => m[f].length > 0);
}

export function hasL7(m: CompiledMatch): boolean {
  return L7_FIELDS.some((f) => m[f].length > 0);
}

export function isEmptyCompiledMatch(m: CompiledMatch): boolean {
  return !hasL4(m) && !hasL7(m);
}

/** The L4 part of a match: the workload API's Match. */
export function l4Part(m: CompiledMatch): Match {
  const out = emptyMatch();
  for (const f of L4_FIELDS) (out[f] as unknown[]) = [...m[f]];
  return out;
}

// Names of the policy attributes behind each L7 field, per clause origin.
const FROM_NAMES: Partial<Record<keyof L7Match, string>> = {
  requestPrincipals: 'requestPrincipals', notRequestPrincipals: 'notRequestPrincipals',
  remoteIps: 'remoteIpBlocks', notRemoteIps: 'notRemoteIpBlocks',
};
const WHEN_NAMES: Partial<Record<keyof L7Match, string>> = {
  requestPrincipals: 'request.auth.principal', notRequestPrincipals: 'request.auth.principal',
  remoteIps: 'remote.ip', notRemoteIps: 'remote.ip', audiences: 'request.auth.audiences',
  notAudiences: 'request.auth.audiences', presenters: 'request.auth.presenter',
  notPresenters: 'request.auth.presenter', sni: 'connection.sni', notSni: 'connection.sni',
};

/** The L7 attributes a match uses, named as the policy spells them. */
export function l7Attributes(clause: CompiledClause, m: CompiledMatch): string[] {
  const names = new Set<string>();
  for (const f of L7_FIELDS) {
    if (m[f].length === 0) continue;
    if (f === 'headers') for (const h of m.headers) names.add(`request.headers[${h.name}]`);
    else if (f === 'claims') for (const c of m.claims) names.add(`request.auth.claims${c.path.map((p) => `[${p}]`).join('')}`);
    else if (f === 'unknown') for (const u of m.unknown) names.add(u.key);
    else if (clause.origin === 'when') names.add(clause.key ?? WHEN_NAMES[f] ?? f);
    else if (clause.origin === 'from') names.add(FROM_NAMES[f] ?? f);
    else names.add(f);
  }
  return [...names];
}

/** The L7 attributes of a whole rule. */
export function ruleL7Attributes(rule: CompiledRule): string[] {
  const names = new Set<string>();
  for (const c of rule.clauses) for (const m of c.matches) for (const n of l7Attributes(c, m)) names.add(n);
  return [...names];
}
