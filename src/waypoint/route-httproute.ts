// Gateway API HTTPRoute (GAMMA: parentRefs to a Service) -> compiled route entries.
//
// Precedence (Gateway API HTTPRouteRule, as Istio's sortHTTPRoutes implements it), over
// every match of every rule of every route attached to one service port:
//   1. path type: Exact > PathPrefix > RegularExpression (regex rank is implementation-
//      specific; Istio puts it last); a rule without matches comes after everything;
//   2. longer path value first;  3. a method match first;  4. more header matches first;
//   5. more query-parameter matches first;  6. the oldest route (creationTimestamp), then
//      "namespace/name" alphabetically;  7. rule order, then match order within the route.
// Other facts followed (Istio's Gateway API conversion):
//   - a match without path is PathPrefix "/"; PathPrefix ignores a trailing "/";
//   - weight defaults to 1; weight 0 is never chosen; no backend with weight > 0 and no
//     redirect -> 500;
//   - retry stanza: attempts default 2, retry on connect failures plus the listed codes,
//     attempts 0 disables; no stanza -> Istio's default retry policy;
//   - timeouts.backendRequest is the per-try timeout; "0s" disables a timeout;
//   - RequestMirror percent (or fraction numerator/denominator) defaults to 100;
//   - RequestRedirect status defaults to 302; without port: the scheme's port when a scheme
//     is given, else the request's port;
//   - header filter entries with a name seen before are ignored; names are lower-cased.
import type { HTTPBackendRef, HTTPHeader, HTTPHeaderFilter, HTTPRouteFilter, HTTPRouteMatch, HTTPRouteResource, HTTPRouteRule } from '../config/resources.js';
import { parseGatewayDuration } from './duration.js';
import { fullRegex, normalizePrefix, type CompiledMatch } from './route-match.js';
import {
  defaultRetry, mergeEdits, noEdits, type BackendTarget, type CompiledRule, type HeaderEdits, type PathRewrite,
  type RedirectSpec, type RouteEntry, type RouteService, type WeightedBackend,
} from './route-types.js';
import { byCodeUnits } from '../core/compare.js';

export interface ServiceIndex {
  byKey: ReadonlyMap<string, RouteService>; // "ns/name"
  /** ServiceEntry hosts by the entry's "ns/name" (one per host). */
  entries?: ReadonlyMap<string, RouteService[]>;
}

export const SERVICE_ENTRY_GROUP = 'networking.istio.io';

/** One compiled HTTPRoute bound to one service port, before sorting. */
export interface BoundRoute {
  hostname: string;
  port: number;
  order: RouteOrder;
  entries: (RouteEntry & { ruleIndex: number; matchIndex: number; key: MatchKey })[];
}

interface RouteOrder { created: string; namespace: string; name: string }
interface MatchKey { rank: number; length: number; method: boolean; headers: number; query: number }

export function compileHTTPRoute(r: HTTPRouteResource, services: ServiceIndex, warnings: string[]): BoundRoute[] {
  const ns = r.metadata.namespace ?? 'default';
  const ref = `HTTPRoute ${ns}/${r.metadata.name}`;
  const parents: { svc: RouteService; port: number }[] = [];
  (r.spec.parentRefs ?? []).forEach((p, i) => {
    const kind = p.kind ?? 'Gateway';
    if (kind === 'ServiceEntry') {
      // An egress route: bound to every host of the ServiceEntry (Istio's waypoint egress).
      if (p.group !== SERVICE_ENTRY_GROUP) {
        warnings.push(`${ref}: parentRefs[${i}] kind ServiceEntry needs group ${SERVICE_ENTRY_GROUP}; ignored`);
        return;
      }
      const hosts = services.entries?.get(`${p.namespace ?? ns}/${p.name}`) ?? [];
      if (hosts.length === 0) warnings.push(`${ref}: parentRefs[${i}] ServiceEntry ${p.namespace ?? ns}/${p.name} does not exist here; the route is attached to nothing`);
      for (const svc of hosts) for (const sp of svc.ports) if (p.port === undefined || sp.port === p.port) parents.push({ svc, port: sp.port });
      return;
    }
    if (kind === 'Gateway') {
      // Routes bound to a Gateway are an ingress gateway's (gateway/); `ambit validate` warns for a waypoint parent.
      return;
    }
    if (kind !== 'Service') {
      warnings.push(`${ref}: parentRefs[${i}] kind ${kind} is not supported; ignored`);
      return;
    }
    if (p.group !== '' && p.group !== 'core') {
      warnings.push(`${ref}: parentRefs[${i}] has kind Service but no group ""; its group defaults to gateway.networking.k8s.io, so (as in Istio) it attaches to nothing`);
      return;
    }
    const svc = services.byKey.get(`${p.namespace ?? ns}/${p.name}`);
    if (!svc) {
      warnings.push(`${ref}: parentRefs[${i}] Service ${p.namespace ?? ns}/${p.name} does not exist; the route is attached to nothing`);
      return;
    }
    if (p.port !== undefined && !svc.ports.some((sp) => sp.port === p.port)) {
      warnings.push(`${ref}: parentRefs[${i}] Service ${svc.namespace}/${svc.name} has no port ${p.port}`);
      return;
    }
    for (const sp of svc.ports) if (p.port === undefined || sp.port === p.port) parents.push({ svc, port: sp.port });
  });
  if (parents.length === 0) return [];
  if (r.spec.hostnames?.length) warnings.push(`${ref}: hostnames are ignored for routes bound to a Service`);

  const order: RouteOrder = { created: String(r.metadata.creationTimestamp ?? ''), namespace: ns, name: r.metadata.name };
  const out: BoundRoute[] = [];
  for (const { svc, port } of parents) {
    const entries: BoundRoute['entries'] = [];
    (r.spec.rules ?? []).forEach((rule, ri) => {
      const compiled = compileRule(rule, `httproute ${ns}/${r.metadata.name} rule ${ri}`, ns, services, `${ref} rules[${ri}]`, warnings, svc.kind === 'ServiceEntry' ? { svc, port } : undefined);
      if (!compiled) return;
      const matches = rule.matches ?? [];
      if (matches.length === 0) {
        entries.push({ rule: compiled, ruleIndex: ri, matchIndex: 0, key: { rank: 0, length: 0, method: false, headers: 0, query: 0 } });
      }
      matches.forEach((m, mi) => {
        const cm = compileMatch(m);
        entries.push({ rule: compiled, match: cm, ruleIndex: ri, matchIndex: mi, key: matchKey(m) });
      });
    });
    out.push({ hostname: svc.hostname, port, order, entries });
  }
  return out;
}

/** Orders the entries of several routes bound to one service port by Gateway API precedence. */
export function sortBoundRoutes(routes: BoundRoute[]): RouteEntry[] {
  const all = routes.flatMap((r) => r.entries.map((e) => ({ e, order: r.order })));
  all.sort((a, b) => {
    const x = a.e.key;
    const y = b.e.key;
    if (x.rank !== y.rank) return y.rank - x.rank;
    if (x.length !== y.length) return y.length - x.length;
    if (x.method !== y.method) return x.method ? -1 : 1;
    if (x.headers !== y.headers) return y.headers - x.headers;
    if (x.query !== y.query) return y.query - x.query;
    const c = compareOrder(a.order, b.order);
    if (c !== 0) return c;
    return a.e.ruleIndex - b.e.ruleIndex || a.e.matchIndex - b.e.matchIndex;
  });
  return all.map(({ e }) => ({ rule: e.rule, match: e.match }));
}

/** Oldest first; a route without creationTimestamp counts as newest; then namespace/name. */
function compareOrder(a: RouteOrder, b: RouteOrder): number {
  if (a.created !== b.created) {
    if (!a.created) return 1;
    if (!b.created) return -1;
    const ta = Date.parse(a.created);
    const tb = Date.parse(b.created);
    if (!Number.isNaN(ta) && !Number.isNaN(tb) && ta !== tb) return ta - tb;
  }
  return byCodeUnits(a.namespace, b.namespace) || byCodeUnits(a.name, b.name);
}

function matchKey(m: HTTPRouteMatch): MatchKey {
  const type = m.path?.type ?? 'PathPrefix';
  const value = m.path?.value ?? '/';
  const rank = type === 'Exact' ? 3 : type === 'PathPrefix' ? 2 : 1;
  const length = type === 'PathPrefix' && value !== '/' ? normalizePrefix(value).length : value.length;
  return { rank, length, method: m.method !== undefined, headers: m.headers?.length ?? 0, query: m.queryParams?.length ?? 0 };
}

export function compileMatch(m: HTTPRouteMatch): CompiledMatch {
  const type = m.path?.type ?? 'PathPrefix';
  const value = m.path?.value ?? '/';
  const path = type === 'Exact' ? { kind: 'exact' as const, value }
    : type === 'RegularExpression' ? { kind: 'regex' as const, source: value, re: fullRegex(value) }
      : { kind: 'prefix' as const, value: normalizePrefix(value), segments: true };
  const sm = (h: { type?: string; value: string }) => h.type === 'RegularExpression'
    ? { kind: 'regex' as const, source: h.value, re: fullRegex(h.value) }
    : { kind: 'exact' as const, value: h.value };
  return {
    path,
    headers: (m.headers ?? []).map((h) => ({ name: h.name.toLowerCase(), matcher: sm(h) })),
    absentHeaders: [],
    query: (m.queryParams ?? []).map((q) => ({ name: q.name, matcher: sm(q) })),
    method: m.method ? { kind: 'exact', value: m.method } : undefined,
  };
}

function compileRule(rule: HTTPRouteRule, name: string, ns: string, services: ServiceIndex, where: string, warnings: string[], entryParent?: { svc: RouteService; port: number }): CompiledRule | undefined {
  let requestHeaders = noEdits();
  let responseHeaders = noEdits();
  let redirect: RedirectSpec | undefined;
  let rewrite: CompiledRule['rewrite'];
  const mirrors: CompiledRule['mirrors'] = [];
  for (const f of rule.filters ?? []) {
    const r = applyFilter(f, ns, services, `${where} filter ${f.type}`, warnings);
    requestHeaders = mergeEdits(requestHeaders, r.requestHeaders);
    responseHeaders = mergeEdits(responseHeaders, r.responseHeaders);
    redirect = r.redirect ?? redirect;
    rewrite = r.rewrite ?? rewrite;
    mirrors.push(...r.mirrors);
  }
  const backends: WeightedBackend[] = [];
  for (const b of rule.backendRefs ?? []) {
    const weight = b.weight ?? 1;
    if (weight <= 0) continue;
    const wb = backendOf(b, ns, services, where, warnings);
    if (!wb) continue;
    for (const f of b.filters ?? []) {
      const r = applyFilter(f, ns, services, `${where} backend ${b.name} filter ${f.type}`, warnings);
      wb.requestHeaders = mergeEdits(wb.requestHeaders, r.requestHeaders);
      wb.responseHeaders = mergeEdits(wb.responseHeaders, r.responseHeaders);
      if (r.redirect || r.rewrite || r.mirrors.length) warnings.push(`${where}: backend ${b.name}: only header filters are applied per backend; ${f.type} ignored`);
    }
    backends.push({ ...wb, weight });
  }
  // An egress rule without backendRefs sends to its parent ServiceEntry host.
  if (entryParent && !(rule.backendRefs?.length)) {
    const { svc, port } = entryParent;
    backends.push({ backend: { namespace: svc.namespace, name: svc.name, port, hostname: svc.hostname }, missing: false, requestHeaders: noEdits(), responseHeaders: noEdits(), weight: 1 });
  }
  const timeouts: CompiledRule['timeouts'] = {};
  const req = rule.timeouts?.request !== undefined ? parseGatewayDuration(rule.timeouts.request) : undefined;
  const backendReq = rule.timeouts?.backendRequest !== undefined ? parseGatewayDuration(rule.timeouts.backendRequest) : undefined;
  if (req) timeouts.requestMs = req; // "0s" (or unparsable) = no timeout
  if (backendReq) timeouts.backendRequestMs = backendReq;
  let retry = defaultRetry();
  if (rule.retry) {
    const attempts = rule.retry.attempts ?? 2;
    const backoff = rule.retry.backoff !== undefined ? parseGatewayDuration(rule.retry.backoff) : undefined;
    retry = { attempts, codes: [...(rule.retry.codes ?? [])], backoffMs: backoff ?? 25, retryOnConnectFailure: true };
  }
  if (backendReq) retry.perTryTimeoutMs = backendReq;
  return {
    name,
    backends: redirect ? [] : backends,
    redirect,
    rewrite,
    requestHeaders,
    responseHeaders,
    mirrors,
    timeouts,
    retry: retry.attempts > 0 ? retry : undefined,
  };
}

interface FilterEffect {
  requestHeaders: HeaderEdits;
  responseHeaders: HeaderEdits;
  redirect?: RedirectSpec;
  rewrite?: CompiledRule['rewrite'];
  mirrors: CompiledRule['mirrors'];
}

function applyFilter(f: HTTPRouteFilter, ns: string, services: ServiceIndex, where: string, warnings: string[]): FilterEffect {
  const out: FilterEffect = { requestHeaders: noEdits(), responseHeaders: noEdits(), mirrors: [] };
  switch (f.type) {
    case 'RequestHeaderModifier': out.requestHeaders = headerEdits(f.requestHeaderModifier); break;
    case 'ResponseHeaderModifier': out.responseHeaders = headerEdits(f.responseHeaderModifier); break;
    case 'RequestRedirect': {
      const rr = f.requestRedirect ?? {};
      out.redirect = {
        scheme: rr.scheme,
        hostname: rr.hostname,
        port: rr.port,
        derivePort: rr.scheme !== undefined ? 'protocol-default' : 'request-port',
        path: pathRewrite(rr.path),
        status: rr.statusCode ?? 302,
      };
      break;
    }
    case 'URLRewrite': {
      const path = pathRewrite(f.urlRewrite?.path);
      out.rewrite = { ...(path ? { path } : {}), ...(f.urlRewrite?.hostname ? { host: f.urlRewrite.hostname } : {}) };
      break;
    }
    case 'RequestMirror': {
      const m = f.requestMirror;
      if (!m) break;
      const wb = backendOf(m.backendRef, ns, services, where, warnings);
      if (!wb || wb.missing) {
        warnings.push(`${where}: mirror backend ${m.backendRef.name} does not exist; the mirror is dropped`);
        break;
      }
      const percent = m.fraction ? (100 * m.fraction.numerator) / (m.fraction.denominator ?? 100) : m.percent ?? 100;
      out.mirrors.push({ backend: wb.backend, percent: Math.min(100, Math.max(0, percent)) });
      break;
    }
    case 'ExtensionRef':
      warnings.push(`${where}: ExtensionRef filters are not supported; ignored`);
      break;
  }
  return out;
}

function pathRewrite(p: { type: string; replaceFullPath?: string; replacePrefixMatch?: string } | undefined): PathRewrite | undefined {
  if (!p) return undefined;
  if (p.type === 'ReplaceFullPath') return { kind: 'full', value: p.replaceFullPath ?? '/' };
  return { kind: 'prefix-segments', value: p.replacePrefixMatch ?? '/' };
}

export function headerEdits(f: HTTPHeaderFilter | undefined): HeaderEdits {
  const dedupe = (list: HTTPHeader[] | undefined): [string, string][] => {
    const seen = new Set<string>();
    const out: [string, string][] = [];
    for (const h of list ?? []) {
      const n = h.name.toLowerCase();
      if (seen.has(n)) continue; // "Subsequent entries with an equivalent header name MUST be ignored"
      seen.add(n);
      out.push([n, h.value]);
    }
    return out;
  };
  return { set: dedupe(f?.set), add: dedupe(f?.add), remove: (f?.remove ?? []).map((n) => n.toLowerCase()) };
}

function backendOf(b: Pick<HTTPBackendRef, 'group' | 'kind' | 'name' | 'namespace' | 'port'>, ns: string, services: ServiceIndex, where: string, warnings: string[]):
  Omit<WeightedBackend, 'weight'> | undefined {
  if (b.kind === 'Hostname' && b.group === SERVICE_ENTRY_GROUP) {
    // Istio's Hostname backend: a ServiceEntry host, by name.
    const svc = [...(services.entries?.values() ?? [])].flat().find((s) => s.hostname === b.name && s.namespace === (b.namespace ?? ns))
      ?? [...(services.entries?.values() ?? [])].flat().find((s) => s.hostname === b.name);
    const port = b.port ?? svc?.ports[0]?.port ?? 0;
    if (!svc) warnings.push(`${where}: backend Hostname ${b.name} is no ServiceEntry host; requests routed to it get 500`);
    return { backend: { namespace: svc?.namespace ?? ns, name: svc?.name ?? b.name, port, hostname: b.name }, missing: !svc || !svc.ports.some((p) => p.port === port), requestHeaders: noEdits(), responseHeaders: noEdits() };
  }
  if ((b.kind ?? 'Service') !== 'Service' || (b.group !== undefined && b.group !== '' && b.group !== 'core')) {
    warnings.push(`${where}: backend ${b.group ?? ''}/${b.kind} ${b.name} is not a Service; ignored`);
    return undefined;
  }
  const namespace = b.namespace ?? ns;
  const svc = services.byKey.get(`${namespace}/${b.name}`);
  const port = b.port ?? svc?.ports[0]?.port ?? 0;
  const backend: BackendTarget = { namespace, name: b.name, port };
  const missing = !svc || !svc.ports.some((p) => p.port === port);
  if (missing) warnings.push(`${where}: backend Service ${namespace}/${b.name}${svc ? ` has no port ${port}` : ' does not exist'}; requests routed to it get 500`);
  return { backend, missing, requestHeaders: noEdits(), responseHeaders: noEdits() };
}
