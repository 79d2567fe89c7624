// One record per HTTP request, the L7 counterpart of ConnectionRecord: the waypoint (or a
// sidecar) fills in a RequestRecord and RequestTelemetry turns it into Istio's request metrics
// and exactly one access-log line.
//
// Invariants:
// - Metrics (checked against istio/proxy istio_stats.cc): istio_requests_total (counter),
//   istio_request_duration_milliseconds, istio_request_bytes and istio_response_bytes
//   (histograms), all with HTTP_LABEL_NAMES. reporter is `waypoint` for a waypoint,
//   `source` / `destination` for the client / server side of a sidecar.
// - Buckets: Istio sets no buckets of its own for these histograms (its Envoy bootstrap adds
//   histogram_bucket_settings only when the pod annotation sidecar.istio.io/statsHistogramBuckets
//   asks for them), so all three use Envoy's default bucket list, ISTIO_DEFAULT_BUCKETS. The
//   1, 10, ..., 10^7 byte buckets some pages quote come from the Mixer era (Istio < 1.5).
// - request_protocol is `grpc` for gRPC requests, `http` otherwise; response_code is `0` when no
//   response was sent; grpc_response_status is empty for plain HTTP.
// - requestBytes / responseBytes: Istio records the downstream wire bytes (headers and body) of
//   the request and of the response. Callers that only know body sizes say so in their own docs.
// - The access-log line uses the keys of Istio's JSON access log for Envoy (method, path,
//   protocol, response_code, response_flags, bytes_received = request bytes, bytes_sent =
//   response bytes from the proxy's view, duration in ms as a number, upstream_host, authority,
//   request_id, ...) plus Ambit's src./dst. fields shared with the TCP log.
// - Labels are resolved once per request (one key for all four families).
import type { LogFields, Logger } from '../core/logger.js';
import { endpointPeer, endpointPrincipal, formatAddr, type ConnectionEndpoint } from './connection-record.js';
import {
  buildHttpLabels,
  formatResponseFlags,
  HTTP_LABEL_NAMES,
  type HttpLabelName,
  type Reporter,
  type ResponseFlag,
  type SecurityPolicy,
  type ServiceInfo,
} from './istio-labels.js';
import type { Counter, Histogram, MetricsRegistry, PreparedLabels } from './metrics.js';
import { LabelCache } from './label-cache.js';

/** Envoy's default histogram buckets, which Istio's request histograms use (ms, or bytes). */
export const ISTIO_DEFAULT_BUCKETS: readonly number[] = Object.freeze([
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000,
]);
export const ISTIO_DURATION_BUCKETS_MS = ISTIO_DEFAULT_BUCKETS;
export const ISTIO_BYTE_BUCKETS = ISTIO_DEFAULT_BUCKETS;

export type RequestReason =
  /** Denied by L7 authorization. */
  | { kind: 'denied'; policy: string | null; rule: number | null; message: string }
  /** The upstream failed (connect error, reset, timeout). */
  | { kind: 'upstream'; code: string; message: string }
  /** Anything else that ended the request early (no route, fault injected, ...). */
  | { kind: 'local'; code: string; message: string };

export interface RequestRecord {
  id?: string;
  reporter: Reporter;
  startMs: number;
  durationMs: number;
  /** The downstream peer (the client, or the previous hop's ztunnel identity). */
  source: ConnectionEndpoint;
  /** The upstream endpoint the request went to, if one was chosen. */
  destination?: ConnectionEndpoint;
  service?: ServiceInfo;
  protocol: 'http' | 'grpc';
  /** `HTTP/1.1`, `HTTP/2` */
  httpVersion?: string;
  method: string;
  path: string;
  authority: string;
  /** 0 when no response was sent. */
  responseCode: number;
  grpcStatus?: number;
  requestBytes: number;
  responseBytes: number;
  /** `ip:port` of the upstream; derived from destination when absent. */
  upstreamHost?: string;
  responseFlags: ResponseFlag | readonly ResponseFlag[];
  securityPolicy: SecurityPolicy;
  /** W3C `traceparent` header as received or generated. */
  traceparent?: string;
  requestId?: string;
  userAgent?: string;
  /** Name of the matched route (HTTPRoute `ns/name` and rule). */
  route?: string;
  /** Milliseconds from sending the request upstream to the upstream's response headers (Envoy's upstream service time). */
  upstreamServiceTimeMs?: number;
  reason?: RequestReason;
}

/** The trace id of a W3C traceparent (`00-<32 hex>-<16 hex>-<2 hex>`), if it is well formed. */
export function traceIdOf(traceparent: string | undefined): string | undefined {
  if (!traceparent) return undefined;
  const m = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(traceparent.trim());
  if (!m || m[1] === 'ff' || /^0+$/.test(m[2]!) || /^0+$/.test(m[3]!)) return undefined;
  return m[2];
}

/** Istio's HTTP labels for a request record. Pure. */
export function requestLabels(record: RequestRecord) {
  return buildHttpLabels({
    reporter: record.reporter,
    source: endpointPeer(record.source),
    destination: endpointPeer(record.destination),
    service: record.service,
    protocol: record.protocol,
    responseFlags: record.responseFlags,
    securityPolicy: record.securityPolicy,
    responseCode: record.responseCode,
    grpcStatus: record.grpcStatus,
  });
}

function upstreamHostOf(r: RequestRecord): string | undefined {
  if (r.upstreamHost) return r.upstreamHost;
  return r.destination ? formatAddr(r.destination.ip, r.destination.port) : undefined;
}

/** The access-log line for one request. Pure; fields without a value are undefined (the logger leaves them out). */
export function requestAccessLogFields(r: RequestRecord): LogFields {
  const flags = formatResponseFlags(r.responseFlags);
  const failed = flags !== '-' || r.reason !== undefined || r.responseCode === 0 || r.responseCode >= 500;
  const fields: LogFields = {
    level: failed ? 'error' : 'info',
    msg: 'request complete',
    reporter: r.reporter,
    start_time: new Date(r.startMs).toISOString(),
    method: r.method,
    path: r.path,
    protocol: r.httpVersion,
    authority: r.authority,
    response_code: r.responseCode,
    grpc_status: r.protocol === 'grpc' ? r.grpcStatus : undefined,
    response_flags: flags,
    bytes_received: r.requestBytes,
    bytes_sent: r.responseBytes,
    duration: Math.round(r.durationMs),
    upstream_service_time: r.upstreamServiceTimeMs === undefined ? undefined : Math.round(r.upstreamServiceTimeMs),
    upstream_host: upstreamHostOf(r),
    route_name: r.route,
    request_id: r.requestId,
    user_agent: r.userAgent,
    traceparent: r.traceparent,
    trace_id: traceIdOf(r.traceparent),
    'src.addr': formatAddr(r.source.ip, r.source.port),
    'src.workload': r.source.workload?.name || r.source.workload?.workload || undefined,
    'src.namespace': r.source.workload?.namespace || undefined,
    'src.identity': endpointPrincipal(r.source),
    'dst.service': r.service?.hostname,
    'dst.workload': r.destination?.workload?.name || r.destination?.workload?.workload || undefined,
    'dst.namespace': r.destination?.workload?.namespace || undefined,
    'dst.identity': endpointPrincipal(r.destination),
  };
  const reason = r.reason;
  if (reason) {
    fields.error = reason.message;
    fields.reason = reason.kind;
    if (reason.kind === 'denied') {
      fields.policy = reason.policy ?? undefined;
      fields.rule = reason.rule ?? undefined;
    } else {
      fields.error_code = reason.code;
    }
  }
  return fields;
}

export const REQUEST_METRIC_HELP = {
  requests: 'The total number of requests',
  duration: 'The duration of requests in milliseconds',
  requestBytes: 'The size of requests in bytes',
  responseBytes: 'The size of responses in bytes',
} as const;

export interface RequestMetrics {
  requests: Counter<HttpLabelName>;
  duration: Histogram<HttpLabelName>;
  requestBytes: Histogram<HttpLabelName>;
  responseBytes: Histogram<HttpLabelName>;
}

export function registerRequestMetrics(registry: MetricsRegistry): RequestMetrics {
  const labelNames = HTTP_LABEL_NAMES;
  return {
    requests: registry.counter({ name: 'istio_requests_total', help: REQUEST_METRIC_HELP.requests, labelNames }),
    duration: registry.histogram({ name: 'istio_request_duration_milliseconds', help: REQUEST_METRIC_HELP.duration, labelNames, buckets: ISTIO_DURATION_BUCKETS_MS }),
    requestBytes: registry.histogram({ name: 'istio_request_bytes', help: REQUEST_METRIC_HELP.requestBytes, labelNames, buckets: ISTIO_BYTE_BUCKETS }),
    responseBytes: registry.histogram({ name: 'istio_response_bytes', help: REQUEST_METRIC_HELP.responseBytes, labelNames, buckets: ISTIO_BYTE_BUCKETS }),
  };
}

export interface RequestTelemetryOptions {
  registry: MetricsRegistry;
  logger: Logger;
}

export class RequestTelemetry {
  readonly metrics: RequestMetrics;
  private readonly logger: Logger;
  private readonly labels = new LabelCache(HTTP_LABEL_NAMES);

  constructor(options: RequestTelemetryOptions) {
    this.metrics = registerRequestMetrics(options.registry);
    this.logger = options.logger;
  }

  /** Count a finished request and write its one access-log line (unless Telemetry turned it off: `log` false). */
  completed(record: RequestRecord, log = true): void {
    const labels = this.labelsOf(record);
    const m = this.metrics;
    m.requests.labels(labels).inc();
    m.duration.labels(labels).observe(record.durationMs);
    m.requestBytes.labels(labels).observe(record.requestBytes);
    m.responseBytes.labels(labels).observe(record.responseBytes);
    if (log) this.logger.record(requestAccessLogFields(record));
  }

  private labelsOf(r: RequestRecord): PreparedLabels<HttpLabelName> {
    const c = this.labels;
    const svc = r.service;
    const key = `${r.reporter}|${c.endpoint(r.source)}|${c.endpoint(r.destination)}|${svc ? `${svc.hostname}|${svc.namespace}|${svc.name}` : '-'}|`
      + `${r.protocol}|${formatResponseFlags(r.responseFlags)}|${r.securityPolicy}|${r.responseCode}|${r.grpcStatus ?? ''}`;
    return c.get(key, () => requestLabels(r));
  }
}
