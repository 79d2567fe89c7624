// What a waypoint enforces, compiled from what it received (pure): the services it can see
// (workload API) and the L7 config objects (HTTPRoute, VirtualService, AuthorizationPolicy,
// RequestAuthentication, Telemetry) sent on Ambit's ConfigResource type. Compiled with the same code
// `ambit validate` and `ambit authz check` use, so the CLI explains what the proxy does.
//
// Invariants:
// - A config that cannot be compiled is reported (warnings) and the part that failed is left
//   out; the rest applies. The control plane validated it already, so this is a safety net.
// - Policies are compiled once per config; selection per request is by target (the waypoint
//   Gateway, the destination Service).
import type { ConfigObject } from '../xds/config-resource.js';
import { meshConfigOf, type MeshConfig } from '../config/mesh-config.js';
import type { AuthorizationPolicyResource, ConfigMapResource, HTTPRouteResource, RequestAuthenticationResource, TelemetryResource, VirtualServiceResource } from '../config/resources.js';
import { byPolicyKey, compilePolicy, type CompiledPolicy } from '../rbac/index.js';
import type { MeshView } from '../dataplane/mesh-view.js';
import { compileRoutes, type RouteService, type RouteTable } from './routing.js';
import { compileRequestAuthn, type JwtProvider } from './request-authn.js';
import { selectWaypointPolicies } from './l7-authz.js';
import type { WaypointTarget } from './waypoint-target.js';
import { compileAccessLogConfig, type AccessLogDecision } from './access-log-config.js';
import { compileEgress, type EgressTable } from './egress-config.js';
import { compileTrafficPolicies, type SubsetEndpoints, type TrafficPolicies } from './traffic/policy.js';
import type { DestinationRuleResource } from '../config/egress-resources.js';
import type { GRPCRouteResource, TCPRouteResource } from '../config/ingress-resources.js';
import { grpcRouteAsHttpRoute } from './route-grpc.js';
import { compileTcpRoutes, type TcpRouteEntry } from './route-tcp.js';
import { serviceHostname } from '../core/mesh-constants.js';

export interface WaypointIdentity {
  namespace: string;
  name: string;
}

/** What binds a request through the waypoint to one target; selected once per target and config. */
export interface RequestBinding {
  /** The RequestAuthentication providers that validate its JWTs. */
  readonly providers: JwtProvider[];
  /** The AuthorizationPolicies it must pass, in key order. */
  readonly policies: CompiledPolicy[];
  /** Telemetry accessLogging. */
  readonly accessLog: AccessLogDecision;
}

export interface WaypointConfig {
  readonly version: string;
  /** Istio's mesh config (path normalization and the outbound policy). */
  readonly mesh: MeshConfig;
  readonly routes: RouteTable;
  readonly policies: CompiledPolicy[];
  /** ServiceEntry hosts this waypoint sends outside the mesh, with their TLS origination. */
  readonly egress: EgressTable;
  /** DestinationRule traffic policies (subsets, load balancer, connection pool, outlier detection). */
  readonly traffic: TrafficPolicies;
  /** Hostnames of Services an ingress gateway reaches through their waypoint (istio.io/ingress-use-waypoint). */
  readonly ingressUseWaypoint: ReadonlySet<string>;
  /** TCPRoutes attached to a Service port: `${hostname}:${port}` -> weighted backends. */
  readonly tcpRoutes: ReadonlyMap<string, TcpRouteEntry>;
  /** The binding of a request through the waypoint to `target` (one lookup per request). */
  forRequest(target: WaypointTarget): RequestBinding;
  /** Providers a sidecar applies to its own pod (selector / namespace / mesh-wide resources). */
  providersForWorkload(workload: { namespace: string; labels: Record<string, string> }): JwtProvider[];
  /** Telemetry accessLogging of a sidecar's own pod, outbound (CLIENT) or inbound (SERVER). */
  accessLogForWorkload(workload: { namespace: string; labels: Record<string, string> }, direction: 'CLIENT' | 'SERVER'): AccessLogDecision;
  readonly warnings: string[];
}

export interface CompileWaypointInput {
  version: string;
  state: MeshView;
  objects: ConfigObject[];
  rootNamespace: string;
  trustDomain: string;
  readFile: (path: string) => string;
  /** The waypoint's namespace (where DestinationRule credentialName Secrets are looked up). */
  waypointNamespace?: string;
}

export function routeServices(state: MeshView, isEntry: (s: import('../xds/workload-api.js').Service) => boolean = () => false): RouteService[] {
  return [...state.services.values()].map((s) => ({
    ...(isEntry(s) ? { kind: 'ServiceEntry' as const } : {}),
    namespace: s.namespace,
    name: s.name,
    hostname: s.hostname,
    vips: s.addresses.map((a) => a.address),
    ports: s.ports.map((p) => ({ port: p.servicePort, targetPort: p.targetPort, appProtocol: p.appProtocol })),
  }));
}

export function compileWaypointConfig(input: CompileWaypointInput): WaypointConfig {
  const warnings: string[] = [];
  const of = <T>(kind: string): T[] => input.objects.filter((o) => o.kind === kind) as unknown as T[];
  const egress = compileEgress({ objects: input.objects, waypointNamespace: input.waypointNamespace ?? input.rootNamespace, rootNamespace: input.rootNamespace });
  const routes = compileRoutes({
    httpRoutes: [...of<HTTPRouteResource>('HTTPRoute'), ...of<GRPCRouteResource>('GRPCRoute').map(grpcRouteAsHttpRoute)],
    virtualServices: of<VirtualServiceResource>('VirtualService'),
    services: routeServices(input.state, (svc) => egress.table.entryOf(svc) !== undefined),
  });
  warnings.push(...routes.warnings);
  const policies: CompiledPolicy[] = [];
  for (const p of of<AuthorizationPolicyResource>('AuthorizationPolicy')) {
    try {
      policies.push(compilePolicy(p, { rootNamespace: input.rootNamespace, trustDomain: input.trustDomain }));
    } catch (e: unknown) {
      warnings.push(`AuthorizationPolicy ${p.metadata.namespace ?? 'default'}/${p.metadata.name}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  const authn = compileRequestAuthn(of<RequestAuthenticationResource>('RequestAuthentication'), input.readFile, { rootNamespace: input.rootNamespace });
  warnings.push(...authn.errors, ...authn.warnings);
  const accessLog = compileAccessLogConfig(of<TelemetryResource>('Telemetry'), { rootNamespace: input.rootNamespace });
  warnings.push(...accessLog.warnings);
  warnings.push(...egress.warnings);
  const hints = of<{ spec?: { subsets?: Record<string, Record<string, string[]>>; ingressUseWaypoint?: string[] } }>('ProxyHints')[0]?.spec;
  const subsets: SubsetEndpoints = new Map(Object.entries(hints?.subsets ?? {}).map(([k, v]) => [k, new Map(Object.entries(v))]));
  const traffic = compileTrafficPolicies({ rules: of<DestinationRuleResource>('DestinationRule'), proxyNamespace: input.waypointNamespace ?? input.rootNamespace, rootNamespace: input.rootNamespace, subsets });
  warnings.push(...traffic.warnings);
  for (const pr of routes.table.routes.values()) {
    for (const e of pr.entries) {
      for (const b of e.rule.backends) {
        const sub = b.backend.subset;
        if (sub === undefined) continue;
        const host = b.backend.hostname ?? serviceHostname(b.backend.name, b.backend.namespace);
        if (!traffic.policies.hasSubset(host, b.backend.namespace, sub)) warnings.push(`${e.rule.name}: subset "${sub}" of ${host} is defined by no DestinationRule; requests routed to it get 503 (no healthy upstream)`);
      }
    }
  }
  return {
    version: input.version,
    mesh: meshConfigOf(of<ConfigMapResource>('ConfigMap'), input.rootNamespace),
    routes: routes.table,
    policies,
    egress: egress.table,
    traffic: traffic.policies,
    ingressUseWaypoint: new Set(hints?.ingressUseWaypoint ?? []),
    tcpRoutes: compileTcpRoutes(of<TCPRouteResource>('TCPRoute'), (p, ns) => {
      if (p.kind !== 'Service' || (p.group ?? '') !== '') return [];
      const svc = input.state.serviceByKey(`${p.namespace ?? ns}/${serviceHostname(p.name, p.namespace ?? ns)}`);
      return svc ? svc.ports.filter((sp) => p.port === undefined || sp.servicePort === p.port).map((sp) => `${svc.hostname}:${sp.servicePort}`) : [];
    }),
    // Selection scans every resource; the config is immutable, so it is done once per target
    // (waypoint + service), not per request.
    forRequest: memoByTarget((t): RequestBinding => Object.freeze({
      providers: authn.providersForRequest(t),
      policies: selectWaypointPolicies(policies, t, input.rootNamespace).sort(byPolicyKey),
      accessLog: accessLog.forWaypoint(t),
    })),
    providersForWorkload: (w) => authn.providersForWorkload(w),
    accessLogForWorkload: memoByWorkload((w, direction) => accessLog.forWorkload(w, direction)),
    warnings,
  };
}

/** Remembers the warnings of the last config, so each one is reported when it appears, once. */
export class WarningLatch {
  private last = new Set<string>();

  /** The warnings of `list` that the previous call did not have. */
  fresh(list: readonly string[]): string[] {
    const before = this.last;
    this.last = new Set(list);
    return list.filter((w) => !before.has(w));
  }
}

function memoByTarget<T>(select: (t: WaypointTarget) => T): (t: WaypointTarget) => T {
  const cache = new Map<string, T>();
  return (t) => {
    const key = `${t.waypoint.namespace}/${t.waypoint.name}|${t.service ? `${t.service.kind ?? 'Service'}/${t.service.namespace}/${t.service.name}` : ''}`;
    let hit = cache.get(key);
    if (hit === undefined) {
      hit = select(t);
      cache.set(key, hit);
    }
    return hit;
  };
}

/** A sidecar asks with the same labels object on every request: remembered per object and direction. */
function memoByWorkload<T>(select: (w: { namespace: string; labels: Record<string, string> }, d: 'CLIENT' | 'SERVER') => T) {
  const cache = new WeakMap<object, Map<string, T>>();
  return (w: { namespace: string; labels: Record<string, string> }, d: 'CLIENT' | 'SERVER'): T => {
    let byDir = cache.get(w.labels);
    if (!byDir) cache.set(w.labels, (byDir = new Map()));
    const key = `${w.namespace}|${d}`;
    let hit = byDir.get(key);
    if (hit === undefined) byDir.set(key, (hit = select(w, d)));
    return hit;
  };
}
