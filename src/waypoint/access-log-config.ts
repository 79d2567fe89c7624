// Which requests a proxy writes an access-log line for: Istio's Telemetry `accessLogging`,
// compiled once per config and resolved per request target (a waypoint) or per workload and
// direction (a sidecar). Pure. Metrics are not affected: every request is still counted.
//
// Invariants (Istio's pilot/pkg/model/telemetry.go, as Ambit applies it):
// - Ambit has one access-log provider, Istio's built-in `envoy` (JSON lines on stderr), and it
//   is on by default, as in a mesh whose defaultProviders.accessLogging is [envoy]. Provider
//   names compare case-insensitively; other names only change the provider set (no output).
// - Levels, least specific first: the root namespace's namespace-wide Telemetry, the proxy's
//   namespace's, then each workload-level one that applies, oldest first (creationTimestamp,
//   then namespace/name; one without a timestamp counts as newest). Of several namespace-wide
//   Telemetry in one namespace only the oldest counts (`ambit validate` warns).
// - At each level only the entries whose match.mode applies count: a waypoint is SERVER; a
//   sidecar is CLIENT outbound and SERVER inbound; CLIENT_AND_SERVER (the default) is both.
//   Providers named at a level replace the inherited set; an entry naming none speaks for the
//   inherited set. `disabled` true/false sets its providers' state; unset leaves it, so a child
//   re-enables a provider a parent disabled only with `disabled: false`. A filter belongs to
//   the providers its entry speaks for and replaces what they inherited.
// - A line is written when envoy is in the final set, not disabled, and its filter (if any) is
//   true for the request (log-filter.ts: an evaluation error is false).
// - A waypoint reads namespace-wide Telemetry (root and its own namespace) and targetRefs (a
//   Gateway naming it, the destination Service / ServiceEntry, GatewayClass istio-waypoint
//   from the root namespace), never selectors; a sidecar reads namespace-wide Telemetry and
//   selectors, never targetRefs.
import { creationAge, type AccessLogMode, type TelemetryResource } from '../config/resources.js';
import { Duration, parseLogFilter, type AttributeName, type FilterInput, type LogFilter } from '../config/log-filter.js';
import type { RequestRecord } from '../telemetry/request-record.js';
import { formatAddr } from '../telemetry/connection-record.js';
import { byCodeUnits } from '../core/compare.js';
import { policiesForTarget, policiesForWorkload, policyScopeOf, type PolicyPlacement, type WorkloadLabels } from '../rbac/index.js';
import { policyTargetsOf, type WaypointTarget } from './waypoint-target.js';

const ENVOY_PROVIDER = 'envoy';

/** What a proxy does with the access log of one kind of request. */
export interface AccessLogDecision {
  enabled: boolean;
  filter?: LogFilter;
  /** The Telemetry objects (`ns/name`) that shaped the decision, least specific first. */
  from: readonly string[];
}

const DEFAULT_ACCESS_LOG: AccessLogDecision = Object.freeze({ enabled: true, from: Object.freeze([]) });

interface Entry {
  mode: AccessLogMode;
  providers: string[];
  disabled?: boolean;
  filter?: LogFilter;
}

interface CompiledTelemetry extends PolicyPlacement {
  created: number;
  entries: Entry[];
}

export interface AccessLogConfig {
  forWaypoint(target: WaypointTarget): AccessLogDecision;
  forWorkload(workload: WorkloadLabels, direction: 'CLIENT' | 'SERVER'): AccessLogDecision;
  readonly warnings: string[];
}

export function compileAccessLogConfig(telemetries: readonly TelemetryResource[], opts: { rootNamespace: string }): AccessLogConfig {
  const warnings: string[] = [];
  const compiled = telemetries.map((t) => compileOne(t, opts.rootNamespace, warnings)).sort(byAge);
  if (!compiled.some((t) => t.entries.length > 0)) {
    return { forWaypoint: () => DEFAULT_ACCESS_LOG, forWorkload: () => DEFAULT_ACCESS_LOG, warnings };
  }
  const namespaceWide = (ns: string): CompiledTelemetry[] => {
    const root = compiled.find((t) => t.scope.kind === 'GLOBAL');
    const own = ns === opts.rootNamespace ? undefined : compiled.find((t) => t.scope.kind === 'NAMESPACE' && t.namespace === ns);
    return [root, own].filter((t): t is CompiledTelemetry => t !== undefined);
  };
  return {
    forWaypoint(target) {
      const bound = new Set<CompiledTelemetry>();
      for (const pt of policyTargetsOf(target)) for (const t of policiesForTarget(compiled, pt, opts)) bound.add(t);
      return resolve([...namespaceWide(target.waypoint.namespace), ...[...bound].sort(byAge)], 'SERVER');
    },
    forWorkload(workload, direction) {
      const selected = policiesForWorkload(compiled, workload, opts.rootNamespace).filter((t) => t.scope.kind === 'WORKLOAD_SELECTOR');
      return resolve([...namespaceWide(workload.namespace), ...selected], direction);
    },
    warnings,
  };
}

function compileOne(t: TelemetryResource, rootNamespace: string, warnings: string[]): CompiledTelemetry {
  const namespace = t.metadata.namespace ?? 'default';
  const key = `${namespace}/${t.metadata.name}`;
  const entries = (t.spec?.accessLogging ?? []).map((a, i): Entry => {
    let filter: LogFilter | undefined;
    if (a.filter?.expression) {
      try {
        filter = parseLogFilter(a.filter.expression);
      } catch (e: unknown) {
        // Validation refuses this; a config that slipped through logs nothing for it.
        warnings.push(`Telemetry ${key}: accessLogging[${i}].filter: ${e instanceof Error ? e.message : String(e)}; this filter is treated as false`);
        filter = { expression: a.filter.expression, test: () => false };
      }
    }
    return { mode: a.match?.mode ?? 'CLIENT_AND_SERVER', providers: (a.providers ?? []).map((p) => p.name.toLowerCase()), disabled: a.disabled, filter };
  });
  return { key, namespace, scope: policyScopeOf(t, namespace, rootNamespace), created: creationAge(t), entries };
}

function byAge(a: CompiledTelemetry, b: CompiledTelemetry): number {
  return a.created - b.created || byCodeUnits(a.key, b.key);
}

/** Apply the levels in order (see the invariants). */
function resolve(levels: readonly CompiledTelemetry[], direction: 'CLIENT' | 'SERVER'): AccessLogDecision {
  let providers = new Set([ENVOY_PROVIDER]);
  const disabled = new Map<string, boolean>();
  const filters = new Map<string, LogFilter>();
  const from: string[] = [];
  for (const level of levels) {
    const entries = level.entries.filter((e) => e.mode === 'CLIENT_AND_SERVER' || e.mode === direction);
    if (entries.length === 0) continue;
    from.push(level.key);
    const named = entries.flatMap((e) => e.providers);
    const inherited = providers;
    if (named.length > 0) providers = new Set(named);
    for (const e of entries) {
      const targets = e.providers.length > 0 ? e.providers : [...inherited];
      if (e.disabled !== undefined) for (const p of targets) disabled.set(p, e.disabled);
      if (e.filter) for (const p of targets) filters.set(p, e.filter);
    }
  }
  if (from.length === 0) return DEFAULT_ACCESS_LOG;
  const enabled = providers.has(ENVOY_PROVIDER) && disabled.get(ENVOY_PROVIDER) !== true;
  return Object.freeze({ enabled, filter: enabled ? filters.get(ENVOY_PROVIDER) : undefined, from: Object.freeze(from) });
}

/** Whether a finished request gets its access-log line under `decision`. */
export function shouldLog(decision: AccessLogDecision, record: RequestRecord, headers: Readonly<Record<string, string | string[] | undefined>>): boolean {
  if (!decision.enabled) return false;
  return decision.filter === undefined || decision.filter.test(requestFilterInput(record, headers));
}

/** Envoy's request attributes, read from the request's record and its request headers. */
export function requestFilterInput(r: RequestRecord, headers: Readonly<Record<string, string | string[] | undefined>>): FilterInput {
  return {
    attribute(name: AttributeName) {
      switch (name) {
        case 'request.method': return r.method;
        case 'request.path': return r.path;
        case 'request.url_path': { const q = r.path.indexOf('?'); return q < 0 ? r.path : r.path.slice(0, q); }
        case 'request.host': return r.authority;
        case 'request.protocol': return r.httpVersion;
        case 'request.useragent': return r.userAgent;
        case 'request.id': return r.requestId;
        case 'request.duration': return new Duration(r.durationMs);
        case 'request.total_size': return r.requestBytes;
        case 'response.code': return r.responseCode;
        case 'response.grpc_status': return r.grpcStatus;
        case 'response.total_size': return r.responseBytes;
        case 'connection.mtls': return r.securityPolicy === 'mutual_tls';
        case 'connection.uri_san_peer_certificate': return r.source.identity || undefined;
        case 'source.address': return formatAddr(r.source.ip, r.source.port);
        case 'source.port': return r.source.port;
        case 'upstream.address': return r.upstreamHost ?? (r.destination ? formatAddr(r.destination.ip, r.destination.port) : undefined);
      }
    },
    header(name) {
      const v = headers[name];
      return Array.isArray(v) ? v.join(',') : v;
    },
  };
}

/** The decision as /config_dump shows it. */
export function describeAccessLog(d: AccessLogDecision): { enabled: boolean; filter?: string; from: readonly string[] } {
  return { enabled: d.enabled, ...(d.filter ? { filter: d.filter.expression } : {}), from: d.from };
}
