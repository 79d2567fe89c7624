// Istio VirtualService (networking.istio.io) -> compiled route entries.
//
// Semantics (Istio's VirtualService reference and its route translation):
// - `hosts`: a short name is a Service in the VirtualService's namespace; a name with a dot
//   is a hostname as written; "*" / "*.suffix" wildcards; a Service VIP also names it.
//   A VirtualService whose `gateways` lacks "mesh" does not apply to mesh traffic.
// - `http[]` rules are tried in order, the first match wins; within a rule the `match`
//   entries are OR'd, the conditions of one entry AND'd; no `match` matches everything.
//   A match with `port` applies only to that service port.
// - uri.prefix is a plain string prefix (not segment-wise); ignoreUriCase applies to
//   exact/prefix; a header match with no exact/prefix/regex means "present".
// - `route[]`: one destination takes all traffic; several are split by weight (unset = 0;
//   if none is set the split is even); none with weight > 0 -> 500.
// - destination port: port.number, else the port the request came to when the destination
//   is the requested service, else the destination's only port.
// - rewrite.uri replaces the matched prefix after a prefix match, the whole path otherwise
//   (a rule without a uri match matched prefix "/", as Envoy's prefix_rewrite does).
// - redirect: code 301 by default; the path is replaced whole; the query is kept.
// - timeout: the route timeout. retries: absent -> Istio's default policy; attempts 0 (or
//   unset) disables; retryOn tokens: numbers and 5xx / gateway-error / retriable-4xx add
//   status codes, connect-failure / refused-stream / reset / 5xx retry connect failures;
//   retryOn unset -> Istio's default conditions (connect failures and 503).
// - fault: percentage.value (0..100, a double) of requests; no percentage -> never.
// - mirror + mirrorPercentage (default 100) or mirrors[].percentage.
// - destination.subset names a DestinationRule subset; the proxy sends to that subset's endpoints
//   (none when no DestinationRule defines it: 503 no healthy upstream, and the config warns).
import { istioHostMatches, resolveIstioHost, serviceOfHostname } from '../config/virtual-service-hosts.js';
import type { IstioDestination, IstioHeaderOperations, IstioStringMatch, VirtualServiceHTTPRoute, VirtualServiceMatch, VirtualServiceResource } from '../config/resources.js';
import { parseIstioDuration } from './duration.js';
import { fullRegex, type CompiledMatch, type PathMatcher, type StringMatcher } from './route-match.js';
import {
  defaultRetry, noEdits, type BackendTarget, type CompiledRule, type FaultSpec, type HeaderEdits, type RetryDecision,
  type RouteEntry, type RouteService, type WeightedBackend,
} from './route-types.js';
import { compileRegexRewrite } from '../config/re2.js';

export interface VsServices {
  byHostname: ReadonlyMap<string, RouteService>;
  byVip: ReadonlyMap<string, RouteService>;
  all: readonly RouteService[];
}

/** The services a VirtualService applies to (empty when it is not for mesh traffic). */
export function virtualServiceTargets(vs: VirtualServiceResource, services: VsServices): RouteService[] {
  if (vs.spec.gateways?.length && !vs.spec.gateways.includes('mesh')) return [];
  const ns = vs.metadata.namespace ?? 'default';
  const hosts = vs.spec.hosts.map((h) => resolveIstioHost(h, ns));
  return services.all.filter((s) => hosts.some((h) => istioHostMatches(h, s.hostname) || s.vips.includes(h)));
}

/** The entries of a VirtualService for one port of one of its services, in order. */
export function compileVirtualService(vs: VirtualServiceResource, svc: RouteService, port: number, services: VsServices, warnings: string[]): RouteEntry[] {
  const ns = vs.metadata.namespace ?? 'default';
  const entries: RouteEntry[] = [];
  (vs.spec.http ?? []).forEach((rule, ri) => {
    const matches = (rule.match ?? []).filter((m) => m.port === undefined || m.port === port);
    if ((rule.match ?? []).length > 0 && matches.length === 0) return; // every match is for another port
    const where = `VirtualService ${ns}/${vs.metadata.name} http[${ri}]`;
    const compiled = compileRule(rule, `virtualservice ${ns}/${vs.metadata.name} route ${ri}`, ns, svc, port, services, where, port === svc.ports[0]?.port ? warnings : []);
    if (matches.length === 0) entries.push({ rule: compiled });
    for (const m of matches) entries.push({ rule: compiled, match: compileMatch(m) });
  });
  return entries;
}

function stringMatcher(sm: IstioStringMatch, ignoreCase = false): StringMatcher {
  if (sm.exact !== undefined) return { kind: 'exact', value: ignoreCase ? sm.exact.toLowerCase() : sm.exact };
  if (sm.prefix !== undefined) return { kind: 'prefix', value: sm.prefix };
  if (sm.regex !== undefined) return { kind: 'regex', source: sm.regex, re: fullRegex(sm.regex) };
  return { kind: 'present' };
}

export function compileMatch(m: VirtualServiceMatch): CompiledMatch {
  let path: PathMatcher | undefined;
  const u = m.uri;
  if (u?.exact !== undefined) path = { kind: 'exact', value: u.exact, ignoreCase: m.ignoreUriCase };
  else if (u?.prefix !== undefined) path = { kind: 'prefix', value: u.prefix, segments: false, ignoreCase: m.ignoreUriCase };
  else if (u?.regex !== undefined) path = { kind: 'regex', source: u.regex, re: fullRegex(u.regex, m.ignoreUriCase === true) };
  const list = (rec: Record<string, IstioStringMatch> | undefined, lower: boolean) =>
    Object.entries(rec ?? {}).map(([name, sm]) => ({ name: lower ? name.toLowerCase() : name, matcher: stringMatcher(sm) }));
  return {
    path,
    headers: list(m.headers, true),
    absentHeaders: list(m.withoutHeaders, true),
    query: list(m.queryParams, false),
    method: m.method ? stringMatcher(m.method) : undefined,
    authority: m.authority ? stringMatcher(m.authority) : undefined,
  };
}

function compileRule(rule: VirtualServiceHTTPRoute, name: string, ns: string, svc: RouteService, port: number, services: VsServices, where: string, warnings: string[]): CompiledRule {
  const dests = rule.route ?? [];
  const anyWeight = dests.some((d) => d.weight !== undefined);
  const backends: WeightedBackend[] = [];
  for (const d of dests) {
    const weight = dests.length === 1 ? 1 : anyWeight ? d.weight ?? 0 : 1;
    if (weight <= 0) continue;
    const r = resolveDestination(d.destination, ns, svc, port, services, where, warnings);
    backends.push({ ...r, weight, requestHeaders: ops(d.headers?.request), responseHeaders: ops(d.headers?.response) });
  }
  const out: CompiledRule = {
    name,
    backends,
    requestHeaders: ops(rule.headers?.request),
    responseHeaders: ops(rule.headers?.response),
    mirrors: [],
    timeouts: {},
    retry: retryOf(rule.retries),
  };
  if (rule.redirect) {
    const r = rule.redirect;
    out.backends = [];
    out.redirect = {
      scheme: r.scheme,
      hostname: r.authority,
      port: r.port,
      derivePort: r.derivePort === 'FROM_PROTOCOL_DEFAULT' ? 'protocol-default' : 'request-port',
      path: r.uri !== undefined ? { kind: 'full', value: r.uri } : undefined,
      status: r.redirectCode ?? 301,
    };
  }
  if (rule.rewrite) {
    const rw = rule.rewrite;
    out.rewrite = {
      ...(rw.uri !== undefined ? { path: { kind: 'prefix-plain' as const, value: rw.uri } } : {}),
      ...(rw.uriRegexRewrite ? { path: { kind: 'regex' as const, rewrite: compileRegexRewrite(rw.uriRegexRewrite.match, rw.uriRegexRewrite.rewrite) } } : {}),
      ...(rw.authority ? { host: rw.authority } : {}),
    };
  }
  const timeout = rule.timeout !== undefined ? parseIstioDuration(rule.timeout) : undefined;
  if (timeout) out.timeouts.requestMs = timeout;
  const mirrorList: { destination: IstioDestination; percent: number }[] = [];
  if (rule.mirror) mirrorList.push({ destination: rule.mirror, percent: rule.mirrorPercentage?.value ?? rule.mirrorPercent ?? 100 });
  for (const m of rule.mirrors ?? []) mirrorList.push({ destination: m.destination, percent: m.percentage?.value ?? 100 });
  for (const m of mirrorList) {
    const r = resolveDestination(m.destination, ns, svc, port, services, `${where} mirror`, warnings);
    if (r.missing) {
      warnings.push(`${where}: mirror host "${m.destination.host}" is not a known Service; the mirror is dropped`);
      continue;
    }
    out.mirrors.push({ backend: r.backend, percent: Math.min(100, Math.max(0, m.percent)) });
  }
  const fault: FaultSpec = {};
  const delay = rule.fault?.delay;
  const delayMs = delay?.fixedDelay !== undefined ? parseIstioDuration(delay.fixedDelay) : undefined;
  if (delay && delayMs !== undefined) fault.delay = { ms: delayMs, percent: delay.percentage?.value ?? delay.percent ?? 0 };
  const abort = rule.fault?.abort;
  if (abort?.httpStatus !== undefined) fault.abort = { status: abort.httpStatus, percent: abort.percentage?.value ?? 0 };
  if (fault.delay || fault.abort) out.fault = fault;
  return out;
}

function ops(o: IstioHeaderOperations | undefined): HeaderEdits {
  if (!o) return noEdits();
  return {
    set: Object.entries(o.set ?? {}).map(([k, v]) => [k.toLowerCase(), v]),
    add: Object.entries(o.add ?? {}).map(([k, v]) => [k.toLowerCase(), v]),
    remove: (o.remove ?? []).map((k) => k.toLowerCase()),
  };
}

function resolveDestination(d: IstioDestination, ns: string, target: RouteService, port: number, services: VsServices, where: string, warnings: string[]):
  { backend: BackendTarget; missing: boolean } {
  const host = resolveIstioHost(d.host, ns);
  const svc = services.byHostname.get(host) ?? services.byVip.get(host);
  if (!svc) {
    const parsed = serviceOfHostname(host);
    warnings.push(`${where}: destination host "${d.host}" (${host}) is not a known Service; requests routed to it fail`);
    return { backend: { namespace: parsed?.namespace ?? ns, name: parsed?.name ?? host, port: d.port?.number ?? port }, missing: true };
  }
  const p = d.port?.number ?? (svc === target ? port : svc.ports.length === 1 ? svc.ports[0]!.port : port);
  const missing = !svc.ports.some((sp) => sp.port === p);
  if (missing) warnings.push(`${where}: destination ${svc.namespace}/${svc.name} has no port ${p}`);
  return { backend: { namespace: svc.namespace, name: svc.name, port: p, ...(d.subset !== undefined ? { subset: d.subset } : {}) }, missing };
}

const CONNECT_TOKENS = new Set(['connect-failure', 'refused-stream', 'reset', '5xx', 'gateway-error']);

/** Istio HTTPRetry -> decision; see the file header for the token rules. */
export function retryOf(r: VirtualServiceHTTPRoute['retries']): RetryDecision | undefined {
  if (!r) return defaultRetry();
  const attempts = r.attempts ?? 0;
  if (attempts <= 0) return undefined;
  const backoffMs = (r.backoff !== undefined ? parseIstioDuration(r.backoff) : undefined) ?? 25;
  const perTry = r.perTryTimeout !== undefined ? parseIstioDuration(r.perTryTimeout) : undefined;
  const base = { attempts, backoffMs, ...(perTry ? { perTryTimeoutMs: perTry } : {}) };
  if (!r.retryOn?.trim()) return { ...base, codes: [503], retryOnConnectFailure: true };
  const codes = new Set<number>();
  let connect = false;
  for (const raw of r.retryOn.split(',')) {
    const t = raw.trim();
    if (/^\d{3}$/.test(t)) codes.add(Number(t));
    if (t === '5xx') for (let c = 500; c <= 599; c++) codes.add(c);
    if (t === 'gateway-error') [502, 503, 504].forEach((c) => codes.add(c));
    if (t === 'retriable-4xx') codes.add(409);
    if (CONNECT_TOKENS.has(t)) connect = true;
  }
  return { ...base, codes: [...codes].sort((a, b) => a - b), retryOnConnectFailure: connect };
}
