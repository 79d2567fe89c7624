// Which policies apply to what: by scope and selector for a workload, by targetRefs for a
// waypoint, as Istio binds them.
//
// For a workload (what its node's ztunnel enforces):
// - root-namespace policies without selector or targetRefs (GLOBAL scope);
// - its own namespace's policies without selector or targetRefs (NAMESPACE scope);
// - policies whose selector matches its labels, from its namespace or from the root namespace
//   (a root-namespace selector policy selects workloads of every namespace, as in Istio).
//   An empty selector selects every workload it can see;
// - never policies with targetRefs: those bind to a waypoint/service and the waypoint enforces them.
//
// For a waypoint (policiesForTarget): the policies whose targetRefs name the Gateway, Service or
// ServiceEntry (a ref's namespace defaults to the policy's), plus root-namespace policies that
// target the GatewayClass of the waypoint.

import type { CompiledPolicy } from './compiled-policy.js';

/** What selection needs of a policy. */
export type PolicyPlacement = Pick<CompiledPolicy, 'key' | 'namespace' | 'scope'>;

export interface WorkloadLabels {
  namespace: string;
  labels: Record<string, string>;
}

function labelsMatch(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => Object.prototype.hasOwnProperty.call(labels, k) && labels[k] === v);
}

export function policiesForWorkload<P extends PolicyPlacement>(policies: readonly P[], workload: WorkloadLabels, rootNamespace: string): P[] {
  return policies.filter((p) => {
    switch (p.scope.kind) {
      case 'GLOBAL':
        return true;
      case 'NAMESPACE':
        return p.namespace === workload.namespace || p.namespace === rootNamespace;
      case 'WORKLOAD_SELECTOR':
        return (
          (p.namespace === workload.namespace || p.namespace === rootNamespace) &&
          p.scope.matchLabels !== undefined &&
          labelsMatch(p.scope.matchLabels, workload.labels)
        );
      case 'TARGET_REFS':
        return false;
    }
  });
}

/**
 * The ztunnel's selection over what it received on the workload API: GLOBAL policies, its
 * namespace's NAMESPACE policies, and the policies the control plane listed by name in the
 * workload's `authorizationPolicies` (selector policies, the static STRICT policy...).
 */
export function policiesForZtunnel<P extends PolicyPlacement>(
  policies: readonly P[],
  workload: { namespace: string; authorizationPolicies: readonly string[] },
): P[] {
  const named = new Set(workload.authorizationPolicies);
  return policies.filter(
    (p) =>
      named.has(p.key) ||
      p.scope.kind === 'GLOBAL' ||
      (p.scope.kind === 'NAMESPACE' && p.namespace === workload.namespace),
  );
}

export interface PolicyTarget {
  kind: 'Gateway' | 'Service' | 'ServiceEntry';
  namespace: string;
  name: string;
  /** For a Gateway: its gatewayClassName, so root-namespace policies targeting the class apply. */
  gatewayClassName?: string;
}

const KIND_GROUPS: Record<string, string[]> = {
  Gateway: ['gateway.networking.k8s.io'],
  Service: ['', 'core'],
  ServiceEntry: ['networking.istio.io'],
  GatewayClass: ['gateway.networking.k8s.io'],
};

function groupOk(kind: string, group: string | undefined): boolean {
  if (group === undefined) return true;
  const allowed = KIND_GROUPS[kind];
  return allowed === undefined || allowed.includes(group);
}

export function policiesForTarget<P extends PolicyPlacement>(
  policies: readonly P[],
  target: PolicyTarget,
  opts: { rootNamespace?: string } = {},
): P[] {
  return policies.filter((p) => {
    if (p.scope.kind !== 'TARGET_REFS') return false;
    return p.scope.targetRefs.some((ref) => {
      if (!groupOk(ref.kind, ref.group)) return false;
      if (ref.kind === target.kind) {
        return ref.name === target.name && (ref.namespace ?? p.namespace) === target.namespace;
      }
      return (
        ref.kind === 'GatewayClass' &&
        target.kind === 'Gateway' &&
        target.gatewayClassName !== undefined &&
        ref.name === target.gatewayClassName &&
        opts.rootNamespace !== undefined &&
        p.namespace === opts.rootNamespace
      );
    });
  });
}
