// MeshModel -> the workload API (istio.workload.Workload / Service, istio.security.Authorization),
// built as Istio's control plane builds them for ztunnels:
// - every pod is a Workload (uid `Kubernetes//Pod/<ns>/<name>`); ambient and sidecar pods
//   speak HBONE, the rest (and waypoint replicas, which terminate HBONE themselves) NONE;
// - a sidecar pod also carries native_tunnel: it terminates HBONE on its own 15008, so the
//   node's ztunnel leaves it alone while every peer still tunnels to it;
// - a workload or service carries a waypoint address only when its waypoint serves that kind
//   of traffic (waypoint-for);
// - AuthorizationPolicies become the ztunnel's L4 view (L7 parts fail closed, with warnings);
//   policies with targetRefs are the waypoint's and are not sent to ztunnels;
// - PeerAuthentication becomes the static STRICT policy or a converted per-port one.
import type { Diagnostic } from '../config/diagnostics.js';
import type { SourceLocation } from '../config/resources.js';
import type { MeshModel } from '../model/mesh-model.js';
import type { WaypointRef, WorkloadInfo } from '../model/types.js';
import { STATIC_STRICT_POLICY_NAME, staticStrictAuthorization, toZtunnelAuthorization, type PolicyWarning } from '../rbac/index.js';
import { byCodeUnits } from '../core/compare.js';
import type { AuthorizationPolicyResource } from '../config/resources.js';
import type { Authorization, GatewayAddress, Service, Workload } from '../xds/workload-api.js';
import { effectivePeerAuthentication } from './peer-authentication.js';
import { WAYPOINT_PORT } from '../model/build-model.js';
import { serviceEntryApi } from './translate-service-entries.js';

export interface WorkloadApi {
  workloads: Workload[];
  services: Service[];
  authorizations: Authorization[];
  /** L7-at-ztunnel and similar warnings, located at the policy. */
  warnings: Diagnostic[];
  /** "ns/name" -> for each pushed rule, the index of the policy's own rule it came from. */
  ruleSources: Record<string, number[]>;
}

export function translate(model: MeshModel): WorkloadApi {
  const { settings } = model;
  const warnings: Diagnostic[] = [];
  const authorizations: Authorization[] = [];
  /** workload uid -> selector policies ("ns/name") that pick it. */
  const selectedBy = new Map<string, string[]>();
  const ruleSources: Record<string, number[]> = {};

  for (const l of model.policies.authorization) {
    const r = l.resource;
    const { authorization, warnings: ws, ruleIndexes } = toZtunnelAuthorization(r, { rootNamespace: settings.rootNamespace, trustDomain: settings.trustDomain });
    for (const w of ws) warnings.push(policyWarning(w, l.source));
    if (!authorization) continue;
    authorizations.push(authorization);
    ruleSources[`${authorization.namespace}/${authorization.name}`] = ruleIndexes;
    if (authorization.scope === 'WORKLOAD_SELECTOR') {
      for (const w of pickedBy(model, r)) {
        const list = selectedBy.get(w.uid);
        if (list) list.push(`${authorization.namespace}/${authorization.name}`);
        else selectedBy.set(w.uid, [`${authorization.namespace}/${authorization.name}`]);
      }
    }
  }

  let needStatic = false;
  const workloads: Workload[] = [];
  for (const w of model.workloads.values()) {
    const names = [...(selectedBy.get(w.uid) ?? [])];
    if (w.mode !== 'none' || w.waypointOf) {
      const pa = effectivePeerAuthentication(w, model.policies.peerAuthentication, settings.rootNamespace);
      names.push(...pa.policyNames);
      if (pa.converted && !authorizations.some((a) => a.namespace === pa.converted!.namespace && a.name === pa.converted!.name)) authorizations.push(pa.converted);
      if (pa.mode === 'STRICT' && !pa.converted) needStatic = true;
    }
    workloads.push({
      uid: w.uid,
      name: w.name,
      namespace: w.namespace,
      addresses: [w.ip],
      network: settings.network,
      tunnelProtocol: (w.mode === 'ambient' || w.mode === 'sidecar') && !w.waypointOf ? 'HBONE' : 'NONE',
      trustDomain: settings.trustDomain,
      serviceAccount: w.serviceAccount,
      waypoint: w.waypoint ? gatewayAddress(model, w.waypoint) : undefined,
      node: w.node,
      canonicalName: w.canonicalName,
      canonicalRevision: w.canonicalRevision,
      workloadType: w.workloadType,
      workloadName: w.workloadName,
      authorizationPolicies: [...new Set(names)].sort(),
      // Istio pushes a pod that is not Ready as UNHEALTHY: no new connection through a Service.
      status: w.notReady ? 'UNHEALTHY' : 'HEALTHY',
      clusterId: settings.clusterId,
      services: Object.fromEntries(Object.entries(w.servicePorts).map(([k, ports]) => [k, { ports: ports.map((p) => ({ servicePort: p.servicePort, targetPort: p.targetPort })) }])),
      ...(w.mode === 'sidecar' && !w.waypointOf ? { nativeTunnel: true } : {}),
    });
  }
  if (needStatic) authorizations.push(staticStrictAuthorization(settings.rootNamespace));

  const services: Service[] = [];
  for (const s of model.services.values()) {
    services.push({
      name: s.name,
      namespace: s.namespace,
      hostname: s.hostname,
      addresses: s.vip ? [{ network: settings.network, address: s.vip }] : [],
      ports: s.ports.map((p) => ({ servicePort: p.port, targetPort: typeof p.targetPort === 'number' ? p.targetPort : 0, appProtocol: p.appProtocol })),
      subjectAltNames: [],
      waypoint: s.waypoint ? gatewayAddress(model, s.waypoint) : undefined,
    });
  }

  const entries = serviceEntryApi(model, (ref) => gatewayAddress(model, ref));
  services.push(...entries.services);
  workloads.push(...entries.workloads);

  workloads.sort((a, b) => byCodeUnits(a.uid, b.uid));
  services.sort((a, b) => byCodeUnits(`${a.namespace}/${a.hostname}`, `${b.namespace}/${b.hostname}`));
  authorizations.sort(byAuthorizationKey);
  return { workloads, services, authorizations, warnings, ruleSources };
}

/**
 * The workload API after a change of AuthorizationPolicies only (the model is the same, with
 * the new policy lists): the changed policies are translated again, and only the workloads
 * they picked before or pick now get their `authorization_policies` again. What did not
 * change keeps its object, so the push encodes nothing for it. Equal to translate(model)
 * (a test checks it); `changed` are `ns/name` of policies added, changed or removed.
 */
export function translateAuthorizationChange(model: MeshModel, prev: WorkloadApi, changed: ReadonlySet<string>): WorkloadApi {
  const { settings } = model;
  const byKey = new Map(model.policies.authorization.map((l) => [`${l.resource.metadata.namespace ?? 'default'}/${l.resource.metadata.name}`, l]));
  const authorizations = prev.authorizations.filter((a) => !changed.has(`${a.namespace}/${a.name}`) || isConverted(a));
  const warnings = prev.warnings.filter((d) => !changed.has((d.resource ?? '').replace(/^AuthorizationPolicy /, '')));
  const ruleSources = { ...prev.ruleSources };
  /** workload uid -> changed selector policies that pick it now. */
  const picksNow = new Map<string, string[]>();
  for (const key of changed) {
    delete ruleSources[key];
    const l = byKey.get(key);
    if (!l) continue;
    const { authorization, warnings: ws, ruleIndexes } = toZtunnelAuthorization(l.resource, { rootNamespace: settings.rootNamespace, trustDomain: settings.trustDomain });
    for (const w of ws) warnings.push(policyWarning(w, l.source));
    if (!authorization) continue;
    authorizations.push(authorization);
    ruleSources[key] = ruleIndexes;
    if (authorization.scope === 'WORKLOAD_SELECTOR') {
      for (const w of pickedBy(model, l.resource)) {
        const list = picksNow.get(w.uid);
        if (list) list.push(key);
        else picksNow.set(w.uid, [key]);
      }
    }
  }
  authorizations.sort(byAuthorizationKey);
  const workloads = prev.workloads.map((w) => {
    const had = w.authorizationPolicies.some((n) => changed.has(n));
    const now = picksNow.get(w.uid);
    if (!had && !now) return w;
    const names = [...new Set([...w.authorizationPolicies.filter((n) => !changed.has(n)), ...(now ?? [])])].sort();
    return names.join('\u0000') === w.authorizationPolicies.join('\u0000') ? w : { ...w, authorizationPolicies: names };
  });
  return { workloads, services: prev.services, authorizations, warnings, ruleSources };
}

/** The workloads a WORKLOAD_SELECTOR policy picks; an empty selector picks every workload it can see (Istio). */
function pickedBy(model: MeshModel, r: AuthorizationPolicyResource): WorkloadInfo[] {
  const ns = r.metadata.namespace ?? 'default';
  const labels = r.spec.selector?.matchLabels ?? {};
  const scopeNs = ns === model.settings.rootNamespace ? undefined : ns;
  return Object.keys(labels).length ? model.selectWorkloads(scopeNs, labels)
    : [...model.workloads.values()].filter((w) => scopeNs === undefined || w.namespace === scopeNs);
}

/** PeerAuthentication's converted policies share the Authorization list but not AuthorizationPolicy names. */
function isConverted(a: Authorization): boolean {
  return a.name === STATIC_STRICT_POLICY_NAME || a.name.startsWith('converted_peer_authentication_');
}

function byAuthorizationKey(a: Authorization, b: Authorization): number {
  return byCodeUnits(`${a.namespace}/${a.name}`, `${b.namespace}/${b.name}`);
}

function gatewayAddress(model: MeshModel, ref: WaypointRef): GatewayAddress | undefined {
  const wp = model.waypoint(ref.namespace, ref.name);
  if (!wp?.vip) return undefined;
  return { address: { network: model.settings.network, address: wp.vip }, hboneMtlsPort: WAYPOINT_PORT };
}

function policyWarning(w: PolicyWarning, source: SourceLocation): Diagnostic {
  return {
    severity: 'warning', code: w.code, file: source.file, line: source.lineOf?.(w.ruleIndex === null ? ['spec'] : ['spec', 'rules', w.ruleIndex]) ?? source.line,
    resource: `AuthorizationPolicy ${w.policy}`, path: w.ruleIndex === null ? 'spec' : `spec.rules[${w.ruleIndex}]`, message: w.message,
  };
}
