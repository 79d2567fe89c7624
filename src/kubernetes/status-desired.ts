// The status Ambit writes, as Istio writes it, computed from the served config (pure).
//
// - Gateway of class istio-waypoint: Accepted, Programmed (its Service has an address), the
//   address in status.addresses, and the mesh listener's status.
// - Gateway of class istio (ingress): the same, from its `<name>-istio` Service: a
//   LoadBalancer's ingress IPs or host names once it has them (until then Programmed False,
//   AddressNotAssigned), the cluster IP for other types; per listener the routes attached
//   (HTTPRoute/GRPCRoute on HTTP and HTTPS, TCPRoute on TCP, by sectionName or all).
// - HTTPRoute: one status.parents entry per parentRef Ambit serves (a Service, GAMMA; or a
//   waypoint Gateway) with Accepted and ResolvedRefs, under Istio's mesh controller name.
// - AuthorizationPolicy: ZtunnelAccepted (enforced by the ztunnel; False with reason
//   UnsupportedValue when it uses HTTP attributes the ztunnel cannot see, saying what Ambit
//   does instead) or WaypointAccepted (targetRefs: bound to a waypoint, or not).
// - Any Istio or Gateway API object Ambit skipped as invalid: Accepted False, reason Invalid
//   (UnsupportedValue for an HTTPRoute's parents), with the validator's words.
// Condition shapes follow metav1.Condition: type, status, reason, message, observedGeneration,
// lastTransitionTime (set by the writer, kept while the status does not change).
import { errorsOf, type Diagnostic } from '../config/diagnostics.js';
import { WAYPOINT_CLASS } from '../config/labels.js';
import { INGRESS_CLASS } from '../config/ingress-resources.js';
import { serviceHostname } from '../core/mesh-constants.js';
import { ingressGatewayName } from './ingress-objects.js';
import type { MeshModel } from '../model/mesh-model.js';
import type { ObjectProblem } from './kube-config-source.js';
import type { KubeObject } from './kube-object.js';

export const MESH_CONTROLLER = 'istio.io/mesh-controller';
/** Istio's controller name for Gateways of class istio. */
export const GATEWAY_CONTROLLER = 'istio.io/gateway-controller';

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime?: string;
}

export interface DesiredStatus {
  object: KubeObject;
  /** The status fields Ambit owns; merged with what others wrote by mergeStatus(). */
  status: Record<string, unknown>;
  /** Condition types Ambit owns on this object (others' are kept). */
  ownedConditionTypes: readonly string[];
}

export interface StatusInputs {
  model: MeshModel;
  warnings: readonly Diagnostic[];
  problems: ReadonlyMap<string, ObjectProblem>;
  gateways: readonly KubeObject[];
  httpRoutes: readonly KubeObject[];
  /** GRPCRoutes and TCPRoutes (counted as attached to ingress Gateway listeners). */
  otherRoutes?: readonly KubeObject[];
  /** Istio objects (AuthorizationPolicy and the other kinds Ambit reads). */
  istio: readonly KubeObject[];
  services: readonly KubeObject[];
}

const ISTIO_OWNED = ['Accepted', 'ZtunnelAccepted', 'WaypointAccepted'];

const cond = (o: KubeObject, type: string, ok: boolean, reason: string, message: string): Condition =>
  ({ type, status: ok ? 'True' : 'False', reason, message, observedGeneration: o.metadata.generation });

function keyOf(o: KubeObject): string {
  return o.kind === 'Namespace' ? `Namespace//${o.metadata.name}` : `${o.kind}/${o.metadata.namespace ?? 'default'}/${o.metadata.name}`;
}

function problemText(p: ObjectProblem): string {
  return (p.keptPrevious ? 'this version is invalid; the previous one keeps serving: ' : '') + errorsOf(p.diagnostics).map((d) => `${d.path ? `${d.path}: ` : ''}${d.message}`).join('; ').slice(0, 32_000);
}

export function desiredStatuses(inp: StatusInputs): DesiredStatus[] {
  const out: DesiredStatus[] = [];
  const serviceByKey = new Map(inp.services.map((s) => [`${s.metadata.namespace}/${s.metadata.name}`, s]));
  for (const g of inp.gateways) {
    const cls = (g.spec as { gatewayClassName?: string } | undefined)?.gatewayClassName;
    if (cls === WAYPOINT_CLASS) out.push(gatewayStatus(g, inp, serviceByKey));
    else if (cls === INGRESS_CLASS) out.push(ingressGatewayStatus(g, inp, serviceByKey));
  }
  for (const r of inp.httpRoutes) {
    const d = routeStatus(r, inp, serviceByKey);
    if (d) out.push(d);
  }
  for (const o of inp.istio) out.push(istioStatus(o, inp));
  return out;
}

function gatewayStatus(g: KubeObject, inp: StatusInputs, services: Map<string, KubeObject>): DesiredStatus {
  const ns = g.metadata.namespace ?? 'default';
  const problem = inp.problems.get(keyOf(g));
  const listeners = ((g.spec as { listeners?: { name?: string }[] }).listeners ?? []).map((l) => String(l.name ?? ''));
  if (problem) {
    const msg = problemText(problem);
    return {
      object: g, ownedConditionTypes: ['Accepted', 'Programmed'],
      status: { conditions: [cond(g, 'Accepted', false, 'Invalid', msg), cond(g, 'Programmed', false, 'Invalid', 'the Gateway is invalid')] },
    };
  }
  const wp = inp.model.waypoint(ns, g.metadata.name);
  const svc = services.get(`${ns}/${g.metadata.name}`);
  const ip = (svc?.spec as { clusterIP?: string } | undefined)?.clusterIP;
  const hasIp = !!ip && ip !== 'None';
  const routes = inp.model.policies.httpRoutes.filter((l) => (l.resource.spec.parentRefs ?? []).some((p) => (p.kind ?? 'Gateway') === 'Gateway' && p.name === g.metadata.name && (p.namespace ?? l.resource.metadata.namespace) === ns)).length;
  const programmed = hasIp
    ? cond(g, 'Programmed', true, 'Programmed', `Resource programmed, assigned to service(s) ${wp?.hostname ?? g.metadata.name}:15008`)
    : cond(g, 'Programmed', false, 'AddressNotAssigned', `waiting for Service ${ns}/${g.metadata.name} to get an address`);
  return {
    object: g, ownedConditionTypes: ['Accepted', 'Programmed'],
    status: {
      addresses: hasIp ? [{ type: 'IPAddress', value: ip }] : [],
      conditions: [cond(g, 'Accepted', true, 'Accepted', 'Resource accepted'), programmed],
      listeners: listeners.map((name) => ({
        name, supportedKinds: [], attachedRoutes: routes,
        conditions: [
          cond(g, 'Accepted', true, 'Accepted', 'No errors found'),
          cond(g, 'Programmed', hasIp, hasIp ? 'Programmed' : 'Pending', hasIp ? 'No errors found' : 'waiting for an address'),
          cond(g, 'ResolvedRefs', true, 'ResolvedRefs', 'No errors found'),
        ],
      })),
    },
  };
}

interface IngressListener { name?: string; port?: number; protocol?: string }

/** The addresses of an ingress Gateway's Service: a LoadBalancer's once assigned, else its cluster IP. */
type GatewayAddress = { type: 'IPAddress' | 'Hostname'; value: string };

function ingressAddresses(svc: KubeObject | undefined): GatewayAddress[] {
  if (!svc) return [];
  const spec = (svc.spec ?? {}) as { type?: string; clusterIP?: string };
  if ((spec.type ?? 'ClusterIP') === 'LoadBalancer') {
    const ingress = ((svc.status as { loadBalancer?: { ingress?: { ip?: string; hostname?: string }[] } } | undefined)?.loadBalancer?.ingress ?? []);
    return ingress.flatMap((i): GatewayAddress[] => (i.ip ? [{ type: 'IPAddress', value: i.ip }] : i.hostname ? [{ type: 'Hostname', value: i.hostname }] : []));
  }
  return spec.clusterIP && spec.clusterIP !== 'None' ? [{ type: 'IPAddress', value: spec.clusterIP }] : [];
}

function ingressGatewayStatus(g: KubeObject, inp: StatusInputs, services: Map<string, KubeObject>): DesiredStatus {
  const ns = g.metadata.namespace ?? 'default';
  const problem = inp.problems.get(keyOf(g));
  if (problem) {
    return {
      object: g, ownedConditionTypes: ['Accepted', 'Programmed'],
      status: { conditions: [cond(g, 'Accepted', false, 'Invalid', problemText(problem)), cond(g, 'Programmed', false, 'Invalid', 'the Gateway is invalid')] },
    };
  }
  const listeners = ((g.spec as { listeners?: IngressListener[] }).listeners ?? []);
  const svcName = ingressGatewayName(g.metadata.name);
  const addresses = ingressAddresses(services.get(`${ns}/${svcName}`));
  const assigned = `${serviceHostname(svcName, ns)}:${listeners.map((l) => l.port).filter((p) => p !== undefined).join(',') || '-'}`;
  const programmed = addresses.length
    ? cond(g, 'Programmed', true, 'Programmed', `Resource programmed, assigned to service(s) ${assigned}`)
    : cond(g, 'Programmed', false, 'AddressNotAssigned', `Assigned to service(s) ${assigned}, but no address yet (Service ${ns}/${svcName})`);
  const routes = [...inp.httpRoutes, ...(inp.otherRoutes ?? [])];
  const attached = (l: IngressListener): number => routes.filter((r) => {
    const tcp = (l.protocol ?? '').toUpperCase() === 'TCP';
    if ((r.kind === 'TCPRoute') !== tcp) return false;
    return (((r.spec ?? {}) as { parentRefs?: ParentRef[] }).parentRefs ?? []).some((p) =>
      (p.kind ?? 'Gateway') === 'Gateway' && p.name === g.metadata.name && (p.namespace ?? r.metadata.namespace ?? 'default') === ns
      && (p.sectionName === undefined || p.sectionName === l.name) && (p.port === undefined || p.port === l.port));
  }).length;
  const ok = addresses.length > 0;
  return {
    object: g, ownedConditionTypes: ['Accepted', 'Programmed'],
    status: {
      addresses,
      conditions: [cond(g, 'Accepted', true, 'Accepted', 'Resource accepted'), programmed],
      listeners: listeners.map((l) => ({
        name: String(l.name ?? ''),
        supportedKinds: (l.protocol ?? '').toUpperCase() === 'TCP'
          ? [{ group: 'gateway.networking.k8s.io', kind: 'TCPRoute' }]
          : [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute' }, { group: 'gateway.networking.k8s.io', kind: 'GRPCRoute' }],
        attachedRoutes: attached(l),
        conditions: [
          cond(g, 'Accepted', true, 'Accepted', 'No errors found'),
          cond(g, 'Programmed', ok, ok ? 'Programmed' : 'Pending', ok ? 'No errors found' : 'waiting for an address'),
          cond(g, 'ResolvedRefs', true, 'ResolvedRefs', 'No errors found'),
        ],
      })),
    },
  };
}

interface ParentRef { group?: string; kind?: string; name: string; namespace?: string; port?: number; sectionName?: string }

function routeStatus(r: KubeObject, inp: StatusInputs, services: Map<string, KubeObject>): DesiredStatus | undefined {
  const ns = r.metadata.namespace ?? 'default';
  const spec = (r.spec ?? {}) as { parentRefs?: ParentRef[]; rules?: { backendRefs?: { kind?: string; name: string; namespace?: string }[] }[] };
  const problem = inp.problems.get(keyOf(r));
  const gatewayClass = (name: string, gns: string) => (inp.gateways.find((g) => g.metadata.name === name && (g.metadata.namespace ?? 'default') === gns)?.spec as { gatewayClassName?: string } | undefined)?.gatewayClassName;
  const missing: string[] = [];
  for (const rule of spec.rules ?? []) {
    for (const b of rule.backendRefs ?? []) {
      const key = `${b.namespace ?? ns}/${b.name}`;
      if ((b.kind ?? 'Service') === 'Service' && !services.has(key)) missing.push(key);
    }
  }
  const parents = [];
  for (const p of spec.parentRefs ?? []) {
    const kind = p.kind ?? 'Gateway';
    const pns = p.namespace ?? ns;
    const isService = kind === 'Service' && (p.group ?? '') === '';
    const cls = kind === 'Gateway' ? gatewayClass(p.name, pns) : undefined;
    // Another class's Gateway is another controller's parent; a missing one is reported here.
    if (!isService && !(kind === 'Gateway' && (cls === WAYPOINT_CLASS || cls === INGRESS_CLASS || cls === undefined))) continue;
    let accepted: Condition;
    if (problem) accepted = cond(r, 'Accepted', false, 'UnsupportedValue', problemText(problem));
    else if (isService ? !services.has(`${pns}/${p.name}`) : cls === undefined) accepted = cond(r, 'Accepted', false, 'NoMatchingParent', `${kind} ${pns}/${p.name} not found`);
    else accepted = cond(r, 'Accepted', true, 'Accepted', 'Route was valid');
    const resolved = missing.length
      ? cond(r, 'ResolvedRefs', false, 'BackendNotFound', `backend(s) not found: ${[...new Set(missing)].join(', ')}`)
      : cond(r, 'ResolvedRefs', true, 'ResolvedRefs', 'All references resolved');
    parents.push({ parentRef: { ...p }, controllerName: cls === INGRESS_CLASS ? GATEWAY_CONTROLLER : MESH_CONTROLLER, conditions: [accepted, resolved] });
  }
  if (parents.length === 0) return undefined;
  return { object: r, ownedConditionTypes: [], status: { parents } };
}

function istioStatus(o: KubeObject, inp: StatusInputs): DesiredStatus {
  const problem = inp.problems.get(keyOf(o));
  if (problem) return { object: o, ownedConditionTypes: ISTIO_OWNED, status: { conditions: [cond(o, 'Accepted', false, 'Invalid', problemText(problem))] } };
  if (o.kind !== 'AuthorizationPolicy') return { object: o, ownedConditionTypes: ISTIO_OWNED, status: { conditions: [] } };
  const ns = o.metadata.namespace ?? 'default';
  const spec = (o.spec ?? {}) as { targetRef?: { kind: string; name: string }; targetRefs?: { kind: string; name: string }[]; action?: string };
  const refs = spec.targetRefs ?? (spec.targetRef ? [spec.targetRef] : []);
  if (refs.length) {
    const bound: string[] = [];
    const unbound: string[] = [];
    for (const t of refs) {
      if (t.kind === 'Gateway') (inp.model.waypoint(ns, t.name) ? bound : unbound).push(`${ns}/${t.name}`);
      else if (t.kind === 'Service') {
        const svc = inp.model.service(ns, t.name);
        if (svc?.waypoint) bound.push(`${svc.waypoint.namespace}/${svc.waypoint.name}`);
        else unbound.push(`Service ${ns}/${t.name}${svc ? ' (it has no waypoint)' : ' (not found)'}`);
      } else unbound.push(`${t.kind} ${ns}/${t.name} (not a waypoint target)`);
    }
    const c = unbound.length === 0
      ? cond(o, 'WaypointAccepted', true, 'Accepted', `bound to ${[...new Set(bound)].join(', ')}`)
      : cond(o, 'WaypointAccepted', false, 'TargetNotFound', `not bound: ${unbound.join(', ')}${bound.length ? `; bound to ${[...new Set(bound)].join(', ')}` : ''}`);
    return { object: o, ownedConditionTypes: ISTIO_OWNED, status: { conditions: [c] } };
  }
  const ref = `AuthorizationPolicy ${ns}/${o.metadata.name}`;
  const ws = inp.warnings.filter((w) => w.resource === ref && w.code.startsWith('AMBIT_WARN_AUTHZ_'));
  if (spec.action === 'AUDIT') return { object: o, ownedConditionTypes: ISTIO_OWNED, status: { conditions: [] } };
  const c = ws.length === 0
    ? cond(o, 'ZtunnelAccepted', true, 'Accepted', 'attached to ztunnel')
    : cond(o, 'ZtunnelAccepted', false, 'UnsupportedValue', ws.map((w) => w.message).join(' '));
  return { object: o, ownedConditionTypes: ISTIO_OWNED, status: { conditions: [c] } };
}

/**
 * The status to write: Ambit's parts over what the object has (others' conditions and route
 * parents kept), each condition's lastTransitionTime kept while its status is unchanged.
 */
export function mergeStatus(current: Record<string, unknown> | undefined, d: DesiredStatus, nowIso: string): Record<string, unknown> {
  const cur = current ?? {};
  const stamp = (cs: Condition[], before: unknown): Condition[] => cs.map((c) => {
    const prev = Array.isArray(before) ? (before as Condition[]).find((b) => b.type === c.type) : undefined;
    return { ...c, lastTransitionTime: prev && prev.status === c.status && prev.lastTransitionTime ? prev.lastTransitionTime : nowIso };
  });
  if (d.object.kind === 'HTTPRoute') {
    const mine = (p: { controllerName?: string }): boolean => p.controllerName === MESH_CONTROLLER || p.controllerName === GATEWAY_CONTROLLER;
    const others = (Array.isArray(cur.parents) ? cur.parents as { controllerName?: string }[] : []).filter((p) => !mine(p));
    const prevOurs = (Array.isArray(cur.parents) ? cur.parents as { controllerName?: string; parentRef?: unknown; conditions?: unknown }[] : []).filter(mine);
    const ours = (d.status.parents as { parentRef: unknown; controllerName: string; conditions: Condition[] }[]).map((p) => ({
      ...p, conditions: stamp(p.conditions, prevOurs.find((x) => JSON.stringify(x.parentRef) === JSON.stringify(p.parentRef))?.conditions),
    }));
    return { ...cur, parents: [...others, ...ours] };
  }
  const keep = (Array.isArray(cur.conditions) ? cur.conditions as Condition[] : []).filter((c) => !d.ownedConditionTypes.includes(c.type));
  const next: Record<string, unknown> = { ...cur, ...d.status, conditions: [...keep, ...stamp(d.status.conditions as Condition[], cur.conditions)] };
  if (Array.isArray(d.status.listeners)) {
    const prevListeners = Array.isArray(cur.listeners) ? cur.listeners as { name: string; conditions?: unknown }[] : [];
    next.listeners = (d.status.listeners as { name: string; conditions: Condition[] }[]).map((l) => ({ ...l, conditions: stamp(l.conditions, prevListeners.find((p) => p.name === l.name)?.conditions) }));
  }
  return next;
}
