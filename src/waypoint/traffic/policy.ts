// DestinationRule traffic policies as a proxy applies them (pure, compiled once per config):
// for a request to (host, port, subset) the effective load balancer, connection pool limits and
// outlier detection, and which endpoints a subset selects.
//
// Invariants (Istio's, as its control plane merges them for Envoy):
// - The DestinationRule of a host is the oldest one whose `host` covers it, looked for in the
//   proxy's namespace, then the host's namespace, then the root namespace (Istio's lookup order
//   for a proxy: its own namespace, the service's, the mesh's).
// - Merging, least specific first, each section replacing the one before as a whole:
//   trafficPolicy, its portLevelSettings for the port, the subset's trafficPolicy, the subset's
//   portLevelSettings for the port.
// - A subset selects the host's endpoints whose labels carry all of its labels (the control
//   plane resolves labels to endpoint uids: the workload API carries no labels). A subset that
//   does not exist selects nothing (Envoy: a cluster without endpoints -> 503 UH... as Istio:
//   "no healthy upstream"), and compiling warns.
// - Without any rule: least request, no limits, no outlier detection (Istio's defaults).
import type { ConnectionPoolSettings, DestinationRuleResource, LoadBalancerSettings, OutlierDetection, TrafficPolicy } from '../../config/egress-resources.js';
import { creationAge } from '../../config/resources.js';
import { hostCovers } from '../../config/validate-egress-set.js';
import { parseIstioDuration } from '../../config/validate-virtual-service.js';
import { byCodeUnits } from '../../core/compare.js';

export type LbPolicy =
  | { kind: 'LEAST_REQUEST' }
  | { kind: 'ROUND_ROBIN' }
  | { kind: 'RANDOM' }
  | { kind: 'HASH'; by: 'header'; name: string }
  | { kind: 'HASH'; by: 'cookie'; name: string; path?: string; ttlS?: number }
  | { kind: 'HASH'; by: 'source-ip' }
  | { kind: 'HASH'; by: 'query'; name: string };

export interface PoolLimits {
  /** tcp.maxConnections: connections (HTTP/1.1: requests with a connection) at once. */
  maxConnections: number;
  /** http.http1MaxPendingRequests: requests waiting for a connection. */
  maxPending: number;
  /** http.http2MaxRequests: requests in flight at once, any protocol (Envoy max_requests). */
  maxRequests: number;
  /** http.maxRetries: retries in flight at once (Envoy max_retries). */
  maxRetries: number;
  /** http.maxRequestsPerConnection (0: unlimited). */
  maxRequestsPerConnection: number;
  connectTimeoutMs?: number;
  idleTimeoutMs?: number;
}

export interface OutlierSettings {
  consecutive5xx: number;
  consecutiveGateway: number;
  intervalMs: number;
  baseEjectionMs: number;
  maxEjectionPercent: number;
  minHealthPercent: number;
}

export interface EffectivePolicy {
  /** `ns/name` of the DestinationRule ('' when none applies). */
  rule: string;
  /** Key of the upstream cluster (host, port, subset): pool and outlier state are kept per key. */
  cluster: string;
  lb: LbPolicy;
  pool: PoolLimits;
  outlier?: OutlierSettings;
  /** Any limit below Envoy's defaults: requests take a lease (circuit breakers). */
  limited: boolean;
  /** Endpoint uids a subset selects; undefined: every endpoint of the host. */
  subsetUids?: ReadonlySet<string>;
  subset?: string;
}

/** What the control plane resolved: DestinationRule `ns/name` -> subset name -> endpoint uids. */
export type SubsetEndpoints = ReadonlyMap<string, ReadonlyMap<string, readonly string[]>>;

export interface TrafficPolicies {
  /** The policy for a request to `host:port` (optionally a subset); one object per (host, port, subset). */
  policyFor(host: string, namespace: string, port: number, subset?: string): EffectivePolicy;
  /** Whether a DestinationRule for the host defines the subset (routing warns otherwise). */
  hasSubset(host: string, namespace: string, subset: string): boolean;
  describe(): Record<string, unknown>[];
}

export const UNLIMITED = 2 ** 32 - 1;

export const DEFAULT_POOL: PoolLimits = Object.freeze({
  maxConnections: UNLIMITED, maxPending: UNLIMITED, maxRequests: UNLIMITED, maxRetries: UNLIMITED, maxRequestsPerConnection: 0,
});

export function compileTrafficPolicies(input: {
  rules: readonly DestinationRuleResource[];
  proxyNamespace: string;
  rootNamespace: string;
  subsets?: SubsetEndpoints;
}): { policies: TrafficPolicies; warnings: string[] } {
  const warnings: string[] = [];
  const rules = [...input.rules].sort((a, b) => creationAge(a) - creationAge(b) || byCodeUnits(`${a.metadata.namespace}/${a.metadata.name}`, `${b.metadata.namespace}/${b.metadata.name}`));
  const ruleFor = (host: string, namespace: string): DestinationRuleResource | undefined => {
    for (const ns of [input.proxyNamespace, namespace, input.rootNamespace]) {
      const r = rules.find((d) => (d.metadata.namespace ?? 'default') === ns && hostCovers(ruleHost(d), host) && visibleFrom(d, namespace, input.proxyNamespace));
      if (r) return r;
    }
    return undefined;
  };
  const cache = new Map<string, EffectivePolicy>();
  const policies: TrafficPolicies = {
    policyFor(host, namespace, port, subset) {
      const key = `${host}|${port}|${subset ?? ''}|${namespace}`;
      let hit = cache.get(key);
      if (hit) return hit;
      const dr = ruleFor(host, namespace);
      const drKey = dr ? `${dr.metadata.namespace ?? 'default'}/${dr.metadata.name}` : '';
      const s = subset !== undefined ? dr?.spec.subsets?.find((x) => x.name === subset) : undefined;
      const merged = mergePolicies([dr?.spec.trafficPolicy, s?.trafficPolicy], port);
      const pool = poolOf(merged.connectionPool);
      hit = Object.freeze({
        rule: drKey,
        cluster: `outbound|${port}|${subset ?? ''}|${host}`,
        lb: lbOf(merged.loadBalancer),
        pool,
        limited: pool.maxConnections < UNLIMITED || pool.maxPending < UNLIMITED || pool.maxRequests < UNLIMITED || pool.maxRetries < UNLIMITED,
        ...(merged.outlierDetection ? { outlier: outlierOf(merged.outlierDetection) } : {}),
        ...(subset !== undefined ? { subset, subsetUids: new Set(s ? input.subsets?.get(drKey)?.get(subset) ?? [] : []) } : {}),
      });
      cache.set(key, hit);
      return hit;
    },
    hasSubset(host, namespace, subset) {
      return ruleFor(host, namespace)?.spec.subsets?.some((x) => x.name === subset) ?? false;
    },
    describe() {
      return rules.map((r) => ({
        rule: `${r.metadata.namespace ?? 'default'}/${r.metadata.name}`, host: r.spec.host,
        subsets: (r.spec.subsets ?? []).map((s) => ({ name: s.name, labels: s.labels ?? {}, endpoints: input.subsets?.get(`${r.metadata.namespace ?? 'default'}/${r.metadata.name}`)?.get(s.name)?.length ?? 0 })),
        loadBalancer: lbOf(r.spec.trafficPolicy?.loadBalancer), pool: poolOf(r.spec.trafficPolicy?.connectionPool),
        outlierDetection: r.spec.trafficPolicy?.outlierDetection ? outlierOf(r.spec.trafficPolicy.outlierDetection) : null,
      }));
    },
  };
  return { policies, warnings };
}

/** A short name (no dot) is a Service of the rule's namespace, as Istio expands it. */
export function ruleHost(dr: DestinationRuleResource, clusterDomain = 'cluster.local'): string {
  const h = dr.spec.host;
  return h.includes('.') || h === '*' ? h : `${h}.${dr.metadata.namespace ?? 'default'}.svc.${clusterDomain}`;
}

/** exportTo: absent or '*' everywhere; '.' its own namespace; else the names listed. */
function visibleFrom(dr: DestinationRuleResource, hostNs: string, proxyNs: string): boolean {
  const to = dr.spec.exportTo;
  if (!to?.length || to.includes('*')) return true;
  const own = dr.metadata.namespace ?? 'default';
  return to.some((t) => (t === '.' ? own === proxyNs : t === proxyNs)) || (own === hostNs && to.includes('.') && own === proxyNs);
}

/** Sections merged least specific first; each one present replaces the previous whole. */
export function mergePolicies(layers: readonly (TrafficPolicy | undefined)[], port: number): Pick<TrafficPolicy, 'loadBalancer' | 'connectionPool' | 'outlierDetection'> {
  const out: Pick<TrafficPolicy, 'loadBalancer' | 'connectionPool' | 'outlierDetection'> = {};
  for (const tp of layers) {
    if (!tp) continue;
    for (const part of [tp, tp.portLevelSettings?.find((p) => p.port?.number === port)]) {
      if (!part) continue;
      if (part.loadBalancer) out.loadBalancer = part.loadBalancer;
      if (part.connectionPool) out.connectionPool = part.connectionPool;
      if (part.outlierDetection) out.outlierDetection = part.outlierDetection;
    }
  }
  return out;
}

export function lbOf(lb: LoadBalancerSettings | undefined): LbPolicy {
  const ch = lb?.consistentHash;
  if (ch) {
    if (ch.httpHeaderName) return { kind: 'HASH', by: 'header', name: ch.httpHeaderName.toLowerCase() };
    if (ch.httpCookie) {
      const ttl = ch.httpCookie.ttl !== undefined ? parseIstioDuration(ch.httpCookie.ttl) : undefined;
      return { kind: 'HASH', by: 'cookie', name: ch.httpCookie.name, ...(ch.httpCookie.path ? { path: ch.httpCookie.path } : {}), ...(ttl !== undefined ? { ttlS: Math.round(ttl / 1000) } : {}) };
    }
    if (ch.useSourceIp) return { kind: 'HASH', by: 'source-ip' };
    if (ch.httpQueryParameterName) return { kind: 'HASH', by: 'query', name: ch.httpQueryParameterName };
  }
  switch (lb?.simple) {
    case 'ROUND_ROBIN': return { kind: 'ROUND_ROBIN' };
    case 'RANDOM': return { kind: 'RANDOM' };
    // LEAST_CONN is LEAST_REQUEST's old name; PASSTHROUGH is not offered (least request).
    default: return { kind: 'LEAST_REQUEST' };
  }
}

export function poolOf(cp: ConnectionPoolSettings | undefined): PoolLimits {
  const n = (v: number | undefined): number => (v !== undefined && v > 0 ? v : UNLIMITED);
  const d = (v: string | undefined): number | undefined => (v !== undefined ? parseIstioDuration(v) : undefined);
  const connectTimeoutMs = d(cp?.tcp?.connectTimeout);
  const idleTimeoutMs = d(cp?.http?.idleTimeout) ?? d(cp?.tcp?.idleTimeout);
  return {
    maxConnections: n(cp?.tcp?.maxConnections),
    maxPending: n(cp?.http?.http1MaxPendingRequests),
    maxRequests: n(cp?.http?.http2MaxRequests),
    maxRetries: n(cp?.http?.maxRetries),
    maxRequestsPerConnection: cp?.http?.maxRequestsPerConnection ?? 0,
    ...(connectTimeoutMs ? { connectTimeoutMs } : {}),
    ...(idleTimeoutMs ? { idleTimeoutMs } : {}),
  };
}

/** Istio's defaults: 5 consecutive 5xx, gateway errors off, 10 s interval, 30 s base ejection, 10 %. */
export function outlierOf(od: OutlierDetection): OutlierSettings {
  const d = (v: string | undefined, def: number): number => (v !== undefined ? parseIstioDuration(v) ?? def : def);
  return {
    consecutive5xx: od.consecutive5xxErrors ?? od.consecutiveErrors ?? 5,
    consecutiveGateway: od.consecutiveGatewayErrors ?? 0,
    intervalMs: d(od.interval, 10_000),
    baseEjectionMs: d(od.baseEjectionTime, 30_000),
    maxEjectionPercent: od.maxEjectionPercent ?? 10,
    minHealthPercent: od.minHealthPercent ?? 0,
  };
}
