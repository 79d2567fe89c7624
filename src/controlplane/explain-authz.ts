// `ambit authz check`: explain what the mesh decides for one connection or request, step by
// step, with the same engine and the same policy views the proxies use:
// - the ztunnel's step evaluates the Authorization objects the control plane would push
//   (translate.ts), through rbac.fromAuthorization, exactly as a ztunnel does;
// - the waypoint's step evaluates the targetRefs policies bound to the waypoint Gateway and
//   to the destination Service, with the HTTP attributes given.
// With a waypoint on the path there are two steps: the waypoint (original source identity,
// L7) and then the destination's ztunnel, which sees the waypoint's identity.
// A sidecar-mode destination is enforced by its sidecar (enforcedBy 'sidecar'), which applies
// the policies selecting the pod with HTTP attributes (L7 rules hold, nothing fails closed).
import { LABEL_INGRESS_USE_WAYPOINT } from './proxy-hints.js';
import { AmbitError } from '../core/errors.js';
import { isNormalMethod, normalizeRequestTarget, type PathNormalizationMode } from '../core/http-request-target.js';
import type { MeshModel } from '../model/mesh-model.js';
import type { WaypointRef, WorkloadInfo } from '../model/types.js';
import {
  compilePolicy, evaluate, fromAuthorization, policiesForTarget, policiesForZtunnel, STATIC_STRICT_POLICY_NAME, stripSpiffe,
  type CompiledPolicy, type Decision, type HttpAttributes, type RequestAttributes,
} from '../rbac/index.js';
import type { WorkloadApi } from './translate.js';
import { explainEgress, findServiceEntry } from './explain-authz-egress.js';

export interface AuthzQuery {
  from: { namespace: string; name: string } | { ip: string };
  to: { namespace: string; name: string; port: number };
  http?: { method: string; path: string; headers: Record<string, string>; host?: string };
}

export type Enforcer = 'ztunnel' | 'waypoint' | 'sidecar' | 'none';

export interface AuthzStep {
  enforcedBy: Enforcer;
  /** Which proxy: `ztunnel on node-2 (shop/api-0)`, `waypoint shop/wp`. */
  at: string;
  decision: 'ALLOW' | 'DENY';
  policy: string | null;
  rule: number | null;
  reason: string;
  /** The source identity this proxy sees (null = plaintext). */
  sourceIdentity: string | null;
  policiesConsidered: string[];
  dryRun: Decision['dryRun'];
}

export interface AuthzExplanation {
  decision: 'ALLOW' | 'DENY';
  enforcedBy: Enforcer;
  policy: string | null;
  rule: number | null;
  reason: string;
  warnings: string[];
  source: { workload: string | null; ip: string; identity: string | null };
  destination: { kind: 'service' | 'pod'; name: string; port: number; workload: string; ip: string; targetPort: number };
  path: 'direct' | 'waypoint' | 'not-meshed';
  /**
   * The HTTP request as an L7 proxy (waypoint, sidecar) sees it: the path after the mesh's
   * normalization, which is what its policies match and what the application receives.
   */
  request?: { method: string; path: string; normalizedPath: string | null; normalization: PathNormalizationMode; refused?: string };
  steps: AuthzStep[];
}

export function explainAuthz(model: MeshModel, api: WorkloadApi, query: AuthzQuery): AuthzExplanation {
  const { settings } = model;
  const { q, request } = normalizeQuery(query, model.meshConfig.pathNormalization);
  // Source.
  let srcWorkload: WorkloadInfo | undefined;
  let srcIp: string;
  if ('ip' in q.from) {
    srcIp = q.from.ip;
    srcWorkload = model.workloadByIp(srcIp);
  } else {
    srcWorkload = model.workloadByName(q.from.namespace, q.from.name);
    if (!srcWorkload) throw notFound('pod', `${q.from.namespace}/${q.from.name}`, model);
    srcIp = srcWorkload.ip;
  }
  // An ingress gateway replica is outside the data plane but speaks HBONE with its own identity.
  const meshedSource = !!srcWorkload && ('name' in q.from) && (srcWorkload.mode === 'ambient' || srcWorkload.mode === 'sidecar' || !!srcWorkload.gatewayOf);
  const srcIdentity = meshedSource ? srcWorkload!.identity : null;

  // Destination: a Service of that name, else a pod.
  const svc = model.service(q.to.namespace, q.to.name);
  let dst: WorkloadInfo;
  let targetPort: number;
  let waypointRef: WaypointRef | undefined;
  if (svc) {
    const endpoints = svc.endpoints.map((uid) => model.workloads.get(uid)!).filter(Boolean);
    if (endpoints.length === 0) {
      throw new AmbitError('AMBIT_ERR_NOT_FOUND', `service ${svc.namespace}/${svc.name} has no endpoints`, { hint: 'check its selector matches some pods' });
    }
    dst = endpoints[0]!;
    targetPort = dst.servicePorts[`${svc.namespace}/${svc.hostname}`]?.find((p) => p.servicePort === q.to.port)?.targetPort ?? q.to.port;
    waypointRef = svc.waypoint;
  } else {
    const pod = model.workloadByName(q.to.namespace, q.to.name);
    const entry = pod ? undefined : findServiceEntry(model, q.to.namespace, q.to.name);
    if (entry) {
      return explainEgress(model, entry, {
        port: q.to.port, request, warnings: [], source: { workload: srcWorkload ? `${srcWorkload.namespace}/${srcWorkload.name}` : null, ip: srcIp, identity: srcIdentity },
        http: q.http ? httpAttrs(q.http, `${entry.host}:${q.to.port}`) : undefined,
      });
    }
    if (!pod) throw notFound('service or pod', `${q.to.namespace}/${q.to.name}`, model);
    dst = pod;
    targetPort = q.to.port;
    waypointRef = pod.waypoint;
  }
  // An ingress gateway goes through a Service's waypoint only when the Service asks for it
  // (istio.io/ingress-use-waypoint=true); otherwise straight to the endpoints, as Istio's does.
  if (srcWorkload?.gatewayOf && svc && waypointRef && svc.labels[LABEL_INGRESS_USE_WAYPOINT] !== 'true') waypointRef = undefined;
  const explanation = {
    request,
    source: { workload: srcWorkload ? `${srcWorkload.namespace}/${srcWorkload.name}` : null, ip: srcIp, identity: srcIdentity },
    destination: { kind: svc ? 'service' as const : 'pod' as const, name: `${q.to.namespace}/${q.to.name}`, port: q.to.port, workload: `${dst.namespace}/${dst.name}`, ip: dst.ip, targetPort },
  };
  const warnings = relevantWarnings(api, dst, model);

  if (dst.mode === 'none' && !dst.waypointOf) {
    return {
      ...explanation, decision: 'ALLOW', enforcedBy: 'none', policy: null, rule: null, warnings, path: 'not-meshed', steps: [],
      reason: `${dst.namespace}/${dst.name} is not in the mesh (label its namespace or pod istio.io/dataplane-mode=ambient); no proxy enforces policy for it`,
    };
  }

  const steps: AuthzStep[] = [];
  const l7 = (waypointRef && !isWaypointReplica(srcWorkload, waypointRef)) || dst.mode === 'sidecar';
  if (l7 && request?.refused) {
    // The L7 proxy answers 400 before any policy or route sees the request.
    const at = dst.mode === 'sidecar' && !waypointRef ? `sidecar of ${dst.namespace}/${dst.name} on ${dst.node}` : `waypoint ${waypointRef!.namespace}/${waypointRef!.name}`;
    const reason = `400 Bad Request: ${request.refused}`;
    return {
      ...explanation, decision: 'DENY', enforcedBy: dst.mode === 'sidecar' && !waypointRef ? 'sidecar' : 'waypoint', policy: null, rule: null, reason, warnings,
      path: waypointRef ? 'waypoint' : 'direct',
      steps: [{ enforcedBy: dst.mode === 'sidecar' && !waypointRef ? 'sidecar' : 'waypoint', at, decision: 'DENY', policy: null, rule: null, reason, sourceIdentity: srcIdentity, policiesConsidered: [], dryRun: [] }],
    };
  }
  let ztunnelSource = { identity: srcIdentity, ip: srcIp };
  const wp = waypointRef && !isWaypointReplica(srcWorkload, waypointRef) ? model.waypoint(waypointRef.namespace, waypointRef.name) : undefined;
  if (wp) {
    const compiled = model.policies.authorization.map((l) => compilePolicy(l.resource, { rootNamespace: settings.rootNamespace, trustDomain: settings.trustDomain }));
    const bound = [
      ...policiesForTarget(compiled, { kind: 'Gateway', namespace: wp.namespace, name: wp.name, gatewayClassName: 'istio-waypoint' }, { rootNamespace: settings.rootNamespace }),
      ...(svc ? policiesForTarget(compiled, { kind: 'Service', namespace: svc.namespace, name: svc.name }) : []),
    ];
    const attrs: RequestAttributes = {
      sourceIp: srcIp, sourcePrincipal: srcIdentity ? stripSpiffe(srcIdentity) : undefined,
      destinationIp: dst.ip, destinationPort: targetPort,
      http: q.http ? httpAttrs(q.http, svc ? `${svc.hostname}:${q.to.port}` : `${dst.ip}:${targetPort}`) : undefined,
    };
    steps.push(step('waypoint', `waypoint ${wp.namespace}/${wp.name}`, bound, evaluate(dedupe(bound), attrs, { enforcer: 'waypoint' }), srcIdentity));
    const replica = model.workloads.get(wp.pods[0] ?? '');
    ztunnelSource = { identity: wp.identity, ip: replica?.ip ?? srcIp };
    if (!q.http) warnings.push('no --method/--path given: the waypoint step was evaluated as plain TCP (rules with HTTP attributes fail closed)');
  }

  // The destination's ztunnel, with exactly what the control plane pushes; or the destination's
  // sidecar: the same selection of policies (by the workload's authorization_policies), but the
  // full AuthorizationPolicies with HTTP attributes (it speaks L7), plus PeerAuthentication's
  // converted policies, as sidecar-policy.ts does.
  const apiWorkload = api.workloads.find((w) => w.uid === dst.uid)!;
  const pushed = policiesForZtunnel(api.authorizations.map(fromAuthorization), apiWorkload);
  const l4 = {
    sourceIp: ztunnelSource.ip, sourcePrincipal: ztunnelSource.identity ? stripSpiffe(ztunnelSource.identity) : undefined,
    destinationIp: dst.ip, destinationPort: targetPort,
  };
  if (dst.mode === 'sidecar') {
    const compiled = model.policies.authorization.map((l) => compilePolicy(l.resource, { rootNamespace: settings.rootNamespace, trustDomain: settings.trustDomain }));
    const policies = [...policiesForZtunnel(compiled, apiWorkload), ...pushed.filter((p) => isPeerAuthenticationPolicy(p.name))];
    const attrs: RequestAttributes = { ...l4, http: q.http ? httpAttrs(q.http, svc ? `${svc.hostname}:${q.to.port}` : `${dst.ip}:${targetPort}`) : undefined };
    steps.push(step('sidecar', `sidecar of ${dst.namespace}/${dst.name} on ${dst.node}`, policies, evaluate(policies, attrs, { enforcer: 'waypoint' }), ztunnelSource.identity));
    if (!q.http && !wp) warnings.push('no --method/--path given: the sidecar step was evaluated as plain TCP (rules with HTTP attributes fail closed)');
  } else {
    const decision = evaluate(pushed, l4, { enforcer: 'ztunnel' });
    steps.push(step('ztunnel', `ztunnel on ${dst.node} (${dst.namespace}/${dst.name})`, pushed, decision, ztunnelSource.identity, sourceRuleIndex(api, decision)));
  }

  const deciding = steps.find((s) => s.decision === 'DENY') ?? steps[0]!;
  return {
    ...explanation,
    decision: deciding.decision, enforcedBy: deciding.enforcedBy, policy: deciding.policy, rule: deciding.rule, reason: deciding.reason,
    warnings, path: wp ? 'waypoint' : 'direct', steps,
  };
}

function step(enforcedBy: Enforcer, at: string, policies: CompiledPolicy[], d: Decision, sourceIdentity: string | null, rule = d.ruleIndex): AuthzStep {
  return {
    enforcedBy, at, decision: d.decision, policy: d.policy, rule, reason: d.reason, sourceIdentity,
    policiesConsidered: [...new Set(policies.map((p) => p.key))].sort(), dryRun: d.dryRun,
  };
}

/** The ztunnel evaluates converted rules; map the rule back to the policy's own numbering. */
function sourceRuleIndex(api: WorkloadApi, d: Decision): number | null {
  if (d.ruleIndex === null || d.policy === null) return d.ruleIndex;
  return api.ruleSources[d.policy]?.[d.ruleIndex] ?? d.ruleIndex;
}

function isPeerAuthenticationPolicy(name: string): boolean {
  return name === STATIC_STRICT_POLICY_NAME || name.startsWith('converted_peer_authentication_');
}

function dedupe(ps: CompiledPolicy[]): CompiledPolicy[] {
  const seen = new Set<string>();
  return ps.filter((p) => (seen.has(p.key) ? false : (seen.add(p.key), true)));
}

function isWaypointReplica(w: WorkloadInfo | undefined, ref: WaypointRef): boolean {
  return !!w?.waypointOf && w.waypointOf.namespace === ref.namespace && w.waypointOf.name === ref.name;
}

/** The query with its path normalized as the L7 proxies do, and what was done to it. */
function normalizeQuery(q: AuthzQuery, mode: PathNormalizationMode): { q: AuthzQuery; request: AuthzExplanation['request'] } {
  if (!q.http) return { q, request: undefined };
  const t = normalizeRequestTarget(q.http.path, mode);
  const refused = !t.ok ? t.reason : !isNormalMethod(q.http.method) ? `method "${q.http.method}" is not an upper-case token` : undefined;
  const normalizedPath = t.ok ? t.path + t.query : null;
  const request = { method: q.http.method, path: q.http.path, normalizedPath, normalization: mode, ...(refused ? { refused } : {}) };
  if (!t.ok) return { q, request };
  return { q: { ...q, http: { ...q.http, path: t.path + t.query, host: t.authority ?? q.http.host } }, request };
}

function httpAttrs(h: NonNullable<AuthzQuery['http']>, host: string): HttpAttributes {
  return { method: h.method, path: h.path, host: h.host ?? host, headers: h.headers };
}

function relevantWarnings(api: WorkloadApi, dst: WorkloadInfo, model: MeshModel): string[] {
  const w = api.workloads.find((x) => x.uid === dst.uid);
  const applicable = new Set(w?.authorizationPolicies ?? []);
  for (const a of api.authorizations) {
    if (a.scope === 'GLOBAL' || (a.scope === 'NAMESPACE' && a.namespace === dst.namespace)) applicable.add(`${a.namespace}/${a.name}`);
  }
  void model;
  return api.warnings.filter((d) => applicable.has((d.resource ?? '').replace(/^AuthorizationPolicy /, '')))
    .map((d) => `${d.resource} ${d.path ?? ''}: ${d.message}`);
}

function notFound(what: string, name: string, model: MeshModel): AmbitError {
  const ns = name.split('/')[0]!;
  const pods = [...model.workloads.values()].filter((w) => w.namespace === ns).map((w) => w.name);
  const svcs = [...model.services.values()].filter((s) => s.namespace === ns).map((s) => s.name);
  return new AmbitError('AMBIT_ERR_NOT_FOUND', `no ${what} ${name} in this config`, {
    hint: `in namespace ${ns}: pods ${pods.join(', ') || '(none)'}; services ${svcs.join(', ') || '(none)'}`,
  });
}
