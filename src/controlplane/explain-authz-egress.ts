// `ambit authz check` for a destination that is a ServiceEntry host (`--to NS/SERVICEENTRY:PORT`,
// or the host as NAME): through its egress waypoint, the policies bound to the waypoint Gateway
// and to the ServiceEntry (targetRefs kind ServiceEntry, group networking.istio.io) decide, with
// the HTTP attributes given; without a waypoint no proxy enforces policy at an external
// destination (the ztunnel only passes it through), and REGISTRY_ONLY does not refuse it: it is
// in the registry.
import type { MeshModel } from '../model/mesh-model.js';
import type { ServiceEntryInfo } from '../model/types.js';
import { compilePolicy, evaluate, policiesForTarget, stripSpiffe, type RequestAttributes } from '../rbac/index.js';
import type { AuthzExplanation, AuthzStep } from './explain-authz.js';

export function findServiceEntry(model: MeshModel, namespace: string, name: string): ServiceEntryInfo | undefined {
  return model.serviceEntries.find((e) => e.namespace === namespace && (e.host === name || e.name === name));
}

export function explainEgress(
  model: MeshModel, e: ServiceEntryInfo, o: {
    port: number; source: AuthzExplanation['source']; request: AuthzExplanation['request'];
    http?: RequestAttributes['http']; warnings: string[];
  },
): AuthzExplanation {
  const { settings } = model;
  const destination: AuthzExplanation['destination'] = { kind: 'service', name: `${e.namespace}/${e.name} (${e.host})`, port: o.port, workload: 'outside the mesh', ip: e.vip ?? '', targetPort: e.ports.find((p) => p.port === o.port)?.targetPort as number ?? o.port };
  const wp = e.waypoint ? model.waypoint(e.waypoint.namespace, e.waypoint.name) : undefined;
  if (!wp) {
    return {
      request: o.request, source: o.source, destination, decision: 'ALLOW', enforcedBy: 'none', policy: null, rule: null, warnings: o.warnings, path: 'not-meshed', steps: [],
      reason: `ServiceEntry ${e.namespace}/${e.name} has no waypoint: the ztunnel passes the connection through and no proxy enforces policy for an external destination (label it istio.io/use-waypoint for L7 policy)`,
    };
  }
  const compiled = model.policies.authorization.map((l) => compilePolicy(l.resource, { rootNamespace: settings.rootNamespace, trustDomain: settings.trustDomain }));
  const bound = [
    ...policiesForTarget(compiled, { kind: 'Gateway', namespace: wp.namespace, name: wp.name, gatewayClassName: 'istio-waypoint' }, { rootNamespace: settings.rootNamespace }),
    ...policiesForTarget(compiled, { kind: 'ServiceEntry', namespace: e.namespace, name: e.name }),
  ];
  const unique = bound.filter((p, i) => bound.findIndex((q) => q.key === p.key) === i);
  const attrs: RequestAttributes = {
    sourceIp: o.source.ip, sourcePrincipal: o.source.identity ? stripSpiffe(o.source.identity) : undefined,
    destinationIp: e.vip ?? '', destinationPort: o.port, http: o.http,
  };
  const d = evaluate(unique, attrs, { enforcer: 'waypoint' });
  if (!o.http) o.warnings.push('no --method/--path given: the waypoint step was evaluated as plain TCP (rules with HTTP attributes fail closed)');
  const step: AuthzStep = {
    enforcedBy: 'waypoint', at: `egress waypoint ${wp.namespace}/${wp.name}`, decision: d.decision, policy: d.policy, rule: d.ruleIndex, reason: d.reason,
    sourceIdentity: o.source.identity, policiesConsidered: [...new Set(unique.map((p) => p.key))].sort(), dryRun: d.dryRun,
  };
  return {
    request: o.request, source: o.source, destination, decision: d.decision, enforcedBy: 'waypoint', policy: d.policy, rule: d.ruleIndex,
    reason: d.reason, warnings: o.warnings, path: 'waypoint', steps: [step],
  };
}
