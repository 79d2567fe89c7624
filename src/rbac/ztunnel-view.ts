// The ztunnel's view of an AuthorizationPolicy: the workload API's istio.security.Authorization
// (what the control plane pushes), and back (`fromAuthorization`) so the ztunnel evaluates exactly what it
// received with the same engine as the waypoint.
//
// Conversion, as Istio's control plane converts a policy for ztunnels:
// - targetRefs policies are the waypoint's: no Authorization. AUDIT never decides: none either.
//   CUSTOM needs ext-authz, which only a waypoint can call: none, with a warning.
// - scope: GLOBAL (root namespace, no selector), NAMESPACE (no selector), WORKLOAD_SELECTOR.
// - each rule -> Rule; each `from` list -> one Clause whose matches are its entries; each `to`
//   list -> one Clause; each `when` condition -> one Clause with one Match.
// - L7 attributes fail closed:
//   ALLOW: a rule using any L7 attribute is dropped (matches nothing), as Istio does;
//   DENY:  L7 attributes are treated as "may match": an entry keeps its L4 fields, and an entry
//          left with only L7 attributes matches anything, so its whole clause is left out (an
//          empty Match would be skipped by the ztunnel, which is how Istio ends up denying
//          nothing). A rule left with no clause denies every connection the policy applies to.
//   Each such rule yields a PolicyWarning naming the policy, the rule and the attributes.
// - `source.serviceAccount` conditions map exactly onto service_accounts, so they are L4 here.

import type { AuthorizationPolicyResource } from '../config/resources.js';
import type { Authorization, Clause, Match, Rule } from '../xds/workload-api.js';
import { emptyMatch } from '../xds/workload-api.js';
import { compilePolicy, type CompileOptions } from './compile.js';
import {
  emptyCompiledMatch,
  hasL4,
  l4Part,
  ruleL7Attributes,
  type CompiledPolicy,
  type PolicyWarning,
} from './compiled-policy.js';

export const STATIC_STRICT_POLICY_NAME = 'istio_converted_static_strict';

export interface ZtunnelView {
  authorization: Authorization | null;
  warnings: PolicyWarning[];
  /** For each rule of `authorization`, the index of the resource rule it came from. */
  ruleIndexes: number[];
}

const WAYPOINT_HINT =
  'To enforce HTTP attributes, send the traffic through a waypoint (label istio.io/use-waypoint) and bind the policy to it with targetRefs.';

/** The ztunnel's view of an already compiled policy (so the control plane compiles once). */
export function toZtunnelView(policy: CompiledPolicy): ZtunnelView {
  const none = (warnings: PolicyWarning[] = []): ZtunnelView => ({ authorization: null, warnings, ruleIndexes: [] });
  if (policy.scope.kind === 'TARGET_REFS' || policy.action === 'AUDIT') return none();
  if (policy.action === 'CUSTOM') {
    return none([
      {
        policy: policy.key,
        ruleIndex: null,
        attributes: ['action'],
        code: 'AMBIT_WARN_AUTHZ_CUSTOM_NOT_ENFORCED',
        message:
          `CUSTOM policy ${policy.key} is not enforced by the ztunnel: ext-authz works on HTTP requests, ` +
          'which only a waypoint sees, so the ztunnel ignores this policy. Bind it to a waypoint with targetRefs.',
      },
    ]);
  }

  const action = policy.action;
  const warnings: PolicyWarning[] = [...policy.warnings];
  const rules: Rule[] = [];
  const ruleIndexes: number[] = [];
  for (const rule of policy.rules) {
    const l7 = ruleL7Attributes(rule);
    if (l7.length > 0 && action === 'ALLOW') {
      warnings.push({
        policy: policy.key,
        ruleIndex: rule.index,
        attributes: l7,
        code: 'AMBIT_WARN_AUTHZ_L7_ALLOW_RULE_DROPPED',
        message:
          `rule ${rule.index} of ALLOW policy ${policy.key} uses HTTP attributes the ztunnel cannot see (${l7.join(', ')}): ` +
          'the ztunnel drops the whole rule, so it allows nothing and connections only this rule would allow are denied. ' +
          WAYPOINT_HINT,
      });
      continue;
    }
    const clauses: Clause[] = [];
    for (const c of rule.clauses) {
      const matches: Match[] = [];
      let matchesAnything = false;
      for (const m of c.matches) {
        const l4 = l4Part(m);
        if (!hasL4(l4)) {
          matchesAnything = true; // an entry left with only L7 attributes
          break;
        }
        matches.push(l4);
      }
      if (!matchesAnything) clauses.push({ matches });
    }
    if (l7.length > 0) {
      const scopeText =
        clauses.length === 0
          ? 'no L4 condition is left, so the rule denies every connection to the workloads the policy applies to'
          : "the rule denies every connection its L4 conditions match";
      warnings.push({
        policy: policy.key,
        ruleIndex: rule.index,
        attributes: l7,
        code: 'AMBIT_WARN_AUTHZ_L7_DENY_WIDENED',
        message:
          `rule ${rule.index} of DENY policy ${policy.key} uses HTTP attributes the ztunnel cannot see (${l7.join(', ')}): ` +
          `the ztunnel treats them as matching and ${scopeText}. ${WAYPOINT_HINT}`,
      });
    }
    rules.push({ clauses });
    ruleIndexes.push(rule.index);
  }

  return {
    authorization: {
      name: policy.name,
      namespace: policy.namespace,
      scope: policy.scope.kind,
      action,
      rules,
      dryRun: policy.dryRun,
    },
    warnings,
    ruleIndexes,
  };
}

/** AuthorizationPolicy -> the Authorization the control plane pushes to ztunnels (or null), with warnings. */
export function toZtunnelAuthorization(resource: AuthorizationPolicyResource, opts: CompileOptions): ZtunnelView {
  return toZtunnelView(compilePolicy(resource, opts));
}

/**
 * What a ztunnel evaluates for a received Authorization: the same structure, verbatim (empty
 * matches included: evaluate skips them as the ztunnel does). Rule indexes are the
 * Authorization's own. A WORKLOAD_SELECTOR scope has no labels here: use policiesForZtunnel.
 */
export function fromAuthorization(a: Authorization): CompiledPolicy {
  const key = `${a.namespace}/${a.name}`;
  return {
    name: a.name,
    namespace: a.namespace,
    key,
    action: a.action,
    scope: a.scope === 'WORKLOAD_SELECTOR' ? { kind: 'WORKLOAD_SELECTOR' } : { kind: a.scope },
    dryRun: a.dryRun === true,
    rules: (a.rules ?? []).map((r, index) => ({
      index,
      clauses: (r.clauses ?? []).map((c) => ({
        matches: (c.matches ?? []).map((m) => ({
          ...emptyCompiledMatch(),
          namespaces: [...(m.namespaces ?? [])],
          notNamespaces: [...(m.notNamespaces ?? [])],
          principals: [...(m.principals ?? [])],
          notPrincipals: [...(m.notPrincipals ?? [])],
          sourceIps: [...(m.sourceIps ?? [])],
          notSourceIps: [...(m.notSourceIps ?? [])],
          destinationIps: [...(m.destinationIps ?? [])],
          notDestinationIps: [...(m.notDestinationIps ?? [])],
          destinationPorts: [...(m.destinationPorts ?? [])],
          notDestinationPorts: [...(m.notDestinationPorts ?? [])],
          serviceAccounts: [...(m.serviceAccounts ?? [])],
          notServiceAccounts: [...(m.notServiceAccounts ?? [])],
        })),
      })),
    })),
    warnings: [],
  };
}

/**
 * Istio's `istio_converted_static_strict`: how PeerAuthentication STRICT reaches the ztunnel.
 * DENY any connection without a peer identity; the control plane lists it by name in the
 * `authorizationPolicies` of every workload under an effective STRICT mode.
 */
export function staticStrictAuthorization(rootNamespace: string): Authorization {
  return {
    name: STATIC_STRICT_POLICY_NAME,
    namespace: rootNamespace,
    scope: 'WORKLOAD_SELECTOR',
    action: 'DENY',
    rules: [{ clauses: [{ matches: [{ ...emptyMatch(), notPrincipals: [{ presence: {} }] }] }] }],
    dryRun: false,
  };
}
