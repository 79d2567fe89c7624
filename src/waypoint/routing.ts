// The waypoint's HTTP routing decision: compileRoutes() turns HTTPRoutes (GAMMA) and
// VirtualServices into an immutable table once per config; decideRoute() maps one request
// to a decision (forward / redirect / not-found) with no I/O. The proxy does the rest.
//
// Invariants:
// - A (service, port) with neither an HTTPRoute nor a VirtualService forwards to the same
//   service and port (route 'default') with Istio's default retry policy.
// - A (service, port) with routes but no matching rule -> not-found 404 (Envoy "NR").
// - HTTPRoute and VirtualService for the same Service: Istio calls this unsupported
//   ("Mixing VirtualService and HTTPRoute for the same workload is not supported and leads
//   to undefined behavior", istio.io ambient/migrate/migrate-policies). Ambit defines it:
//   the HTTPRoutes win for that whole Service, its VirtualServices are ignored, and
//   compileRoutes warns. (HTTPRoute is the stable waypoint API; VirtualService is alpha.)
// - Several VirtualServices for one Service: only the oldest (creationTimestamp, then
//   namespace/name) applies, as Istio does for mesh traffic; the others get a warning.
// - random() (values in [0, 1)) is called once for a weighted choice among two or more
//   backends, then once per configured fault (delay, then abort), in that order.
// - A backend naming a missing Service (or port) is still chosen by weight; the decision
//   says backendMissing and the proxy answers 500 (Gateway API: invalid backendRef -> 500).
import type { HTTPRouteResource, VirtualServiceResource } from '../config/resources.js';
import { sortBoundRoutes, compileHTTPRoute, type BoundRoute } from './route-httproute.js';
import { matchRequest, parseRequest, replacePrefixPlain, replacePrefixSegments, type ParsedRequest } from './route-match.js';
import {
  defaultRetry, mergeEdits, noEdits, type CompiledRule, type HeaderEdits, type HttpRequestView, type PathRewrite,
  type PortRoutes, type RouteDecision, type RouteEntry, type RouteService,
} from './route-types.js';
import { compileVirtualService, virtualServiceTargets } from './virtual-service.js';
import { byCodeUnits } from '../core/compare.js';
import { serviceHostname } from '../core/mesh-constants.js';

export type { BackendTarget, HeaderEdits, HttpRequestView, RetryDecision, RouteDecision, RouteService } from './route-types.js';
export { noEdits } from './route-types.js';

export interface RoutingInput {
  httpRoutes: HTTPRouteResource[];
  virtualServices: VirtualServiceResource[];
  services: RouteService[];
}

/** Opaque to callers; immutable once compiled. */
export interface RouteTable {
  readonly services: ReadonlyMap<string, RouteService>;
  readonly vips: ReadonlyMap<string, RouteService>;
  /** `${hostname}:${port}` -> the routes of that service port. */
  readonly routes: ReadonlyMap<string, PortRoutes>;
}

export function compileRoutes(input: RoutingInput): { table: RouteTable; warnings: string[] } {
  const warnings: string[] = [];
  const byHostname = new Map(input.services.map((s) => [s.hostname, s]));
  const byVip = new Map(input.services.flatMap((s) => s.vips.map((v) => [v, s] as const)));
  const byKey = new Map(input.services.filter((s) => s.kind !== 'ServiceEntry').map((s) => [`${s.namespace}/${s.name}`, s]));
  const entries = new Map<string, RouteService[]>();
  for (const s of input.services) if (s.kind === 'ServiceEntry') entries.set(`${s.namespace}/${s.name}`, [...(entries.get(`${s.namespace}/${s.name}`) ?? []), s]);
  const routes = new Map<string, PortRoutes>();

  // HTTPRoutes, grouped per service port, then sorted by Gateway API precedence.
  const bound = new Map<string, { routes: BoundRoute[]; names: Set<string> }>();
  for (const r of input.httpRoutes) {
    for (const b of compileHTTPRoute(r, { byKey, entries }, warnings)) {
      const key = `${b.hostname}:${b.port}`;
      const g = bound.get(key) ?? { routes: [], names: new Set<string>() };
      g.routes.push(b);
      g.names.add(`httproute ${r.metadata.namespace ?? 'default'}/${r.metadata.name}`);
      bound.set(key, g);
    }
  }
  const routedByHTTPRoute = new Set<string>();
  for (const [key, g] of bound) {
    routes.set(key, { kind: 'httproute', names: [...g.names].sort(), entries: sortBoundRoutes(g.routes) });
    routedByHTTPRoute.add(key.slice(0, key.lastIndexOf(':')));
  }

  // VirtualServices: the oldest per service; none where an HTTPRoute routes the service.
  const vsSorted = [...input.virtualServices].sort(compareAge);
  const owner = new Map<string, VirtualServiceResource>();
  const services = { byHostname, byVip, all: input.services };
  for (const vs of vsSorted) {
    const ref = `VirtualService ${vs.metadata.namespace ?? 'default'}/${vs.metadata.name}`;
    if (vs.spec.gateways?.length && !vs.spec.gateways.includes('mesh')) {
      warnings.push(`${ref}: bound to gateways ${vs.spec.gateways.join(', ')} only (no "mesh"); waypoints ignore it`);
      continue;
    }
    const targets = virtualServiceTargets(vs, services);
    if (targets.length === 0) warnings.push(`${ref}: hosts ${vs.spec.hosts.join(', ')} name no known Service; it applies to nothing`);
    for (const svc of targets) {
      if (routedByHTTPRoute.has(svc.hostname)) {
        warnings.push(`${ref}: ignored for ${svc.hostname}, which an HTTPRoute also routes (mixing both for one Service is unsupported in Istio; Ambit lets the HTTPRoute win)`);
        continue;
      }
      const first = owner.get(svc.hostname);
      if (first) {
        warnings.push(`${ref}: ignored for ${svc.hostname}; VirtualService ${first.metadata.namespace ?? 'default'}/${first.metadata.name} is older and already routes it (one VirtualService per host for mesh traffic)`);
        continue;
      }
      owner.set(svc.hostname, vs);
      for (const p of svc.ports) {
        routes.set(`${svc.hostname}:${p.port}`, {
          kind: 'virtualservice',
          names: [`virtualservice ${vs.metadata.namespace ?? 'default'}/${vs.metadata.name}`],
          entries: compileVirtualService(vs, svc, p.port, services, warnings),
        });
      }
    }
  }
  const table: RouteTable = Object.freeze({ services: byHostname, vips: byVip, routes });
  return { table, warnings };
}

function compareAge(a: VirtualServiceResource, b: VirtualServiceResource): number {
  const ta = a.metadata.creationTimestamp ? Date.parse(String(a.metadata.creationTimestamp)) : Infinity;
  const tb = b.metadata.creationTimestamp ? Date.parse(String(b.metadata.creationTimestamp)) : Infinity;
  if (ta !== tb && !(Number.isNaN(ta) || Number.isNaN(tb))) return ta < tb ? -1 : 1;
  return byCodeUnits(a.metadata.namespace ?? 'default', b.metadata.namespace ?? 'default') || byCodeUnits(a.metadata.name, b.metadata.name);
}

export function decideRoute(table: RouteTable, target: { hostname: string; port: number }, req: HttpRequestView, random: () => number): RouteDecision {
  const svc = table.services.get(target.hostname) ?? table.vips.get(target.hostname);
  const pr = svc ? table.routes.get(`${svc.hostname}:${target.port}`) : undefined;
  if (!pr) return defaultDecision(svc, target);
  const r = parseRequest(req);
  for (const entry of pr.entries) {
    if (entry.match && !matchRequest(entry.match, r)) continue;
    return applyRule(entry, r, target, random);
  }
  return { kind: 'not-found', route: pr.names.join(','), status: 404, reason: 'no-match' };
}

function defaultDecision(svc: RouteService | undefined, target: { hostname: string; port: number }): RouteDecision {
  const name = svc?.name ?? target.hostname.split('.')[0] ?? target.hostname;
  const namespace = svc?.namespace ?? target.hostname.split('.')[1] ?? '';
  return {
    kind: 'forward',
    route: 'default',
    backend: { namespace, name, port: target.port, ...(svc && svc.hostname !== serviceHostname(name, namespace) ? { hostname: svc.hostname } : {}) },
    ...(svc ? {} : { backendMissing: true }),
    requestHeaders: noEdits(),
    responseHeaders: noEdits(),
    mirrors: [],
    timeouts: {},
    retry: defaultRetry(),
  };
}

function applyRule(entry: RouteEntry, r: ParsedRequest, target: { port: number }, random: () => number): RouteDecision {
  const rule: CompiledRule = entry.rule;
  if (rule.redirect) {
    const rd = rule.redirect;
    const scheme = rd.scheme ?? 'http';
    const hostname = rd.hostname ?? r.hostname;
    const port = rd.port ?? (rd.derivePort === 'protocol-default' ? defaultPort(scheme) : r.hostPort ?? target.port);
    const path = rd.path ? rewritePath(rd.path, entry, r) : r.pathname;
    const portPart = port === defaultPort(scheme) ? '' : `:${port}`;
    return { kind: 'redirect', route: rule.name, status: rd.status, location: `${scheme}://${hostname}${portPart}${path}${r.search}` };
  }
  if (rule.backends.length === 0) return { kind: 'not-found', route: rule.name, status: 500, reason: 'no-backends' };
  let chosen = rule.backends[0]!;
  if (rule.backends.length > 1) {
    const total = rule.backends.reduce((s, b) => s + b.weight, 0);
    let x = random() * total;
    for (const b of rule.backends) {
      chosen = b;
      if (x < b.weight) break;
      x -= b.weight;
    }
  }
  const decision: Extract<RouteDecision, { kind: 'forward' }> = {
    kind: 'forward',
    route: rule.name,
    backend: { ...chosen.backend },
    ...(chosen.missing ? { backendMissing: true } : {}),
    requestHeaders: mergeEdits(rule.requestHeaders, chosen.requestHeaders),
    responseHeaders: mergeEdits(rule.responseHeaders, chosen.responseHeaders),
    mirrors: rule.mirrors.map((m) => ({ backend: { ...m.backend }, percent: m.percent })),
    timeouts: { ...rule.timeouts },
    ...(rule.retry ? { retry: { ...rule.retry, codes: [...rule.retry.codes] } } : {}),
  };
  if (rule.rewrite?.path) {
    const p = rewritePath(rule.rewrite.path, entry, r) + r.search;
    if (p !== r.pathname + r.search) decision.path = p;
  }
  if (rule.rewrite?.host) decision.host = rule.rewrite.host;
  if (rule.fault) {
    const fault: { delayMs?: number; abortStatus?: number } = {};
    if (rule.fault.delay && random() * 100 < rule.fault.delay.percent) fault.delayMs = rule.fault.delay.ms;
    if (rule.fault.abort && random() * 100 < rule.fault.abort.percent) fault.abortStatus = rule.fault.abort.status;
    if (fault.delayMs !== undefined || fault.abortStatus !== undefined) decision.fault = fault;
  }
  return decision;
}

function defaultPort(scheme: string): number {
  return scheme === 'https' ? 443 : 80;
}

/** The new path (without query) for a rewrite or redirect, given the entry that matched. */
function rewritePath(rw: PathRewrite, entry: RouteEntry, r: ParsedRequest): string {
  const pm = entry.match?.path;
  switch (rw.kind) {
    case 'full': return rw.value;
    case 'prefix-segments':
      // Without a prefix match (a rule with no matches) the matched prefix is "/".
      return replacePrefixSegments(r.pathname, pm?.kind === 'prefix' ? pm.value : '', rw.value);
    case 'prefix-plain':
      if (pm === undefined) return replacePrefixPlain(r.pathname, '/', rw.value);
      if (pm.kind === 'prefix') return replacePrefixPlain(r.pathname, r.pathname.slice(0, pm.value.length), rw.value);
      return rw.value;
    case 'regex': return rw.rewrite(r.pathname);
  }
}

/** Applies edits to a header map (lower-case names): remove, then set, then add. */
export function applyHeaderEdits(headers: Record<string, string | string[] | undefined>, edits: HeaderEdits): Record<string, string | string[] | undefined> {
  const out: Record<string, string | string[] | undefined> = { ...headers };
  for (const n of edits.remove) delete out[n];
  for (const [n, v] of edits.set) out[n] = v;
  for (const [n, v] of edits.add) {
    const cur = out[n];
    out[n] = cur === undefined ? v : Array.isArray(cur) ? [...cur, v] : [cur, v];
  }
  return out;
}

