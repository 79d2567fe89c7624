// One record per TCP connection ("telemetry is a value"): the ztunnel fills in a
// ConnectionRecord as the connection goes, and TcpTelemetry turns it into Istio's TCP metrics
// and exactly one access-log line.
//
// Invariants:
// - reporter 'source' <=> direction 'outbound' (the client's ztunnel); reporter 'destination'
//   <=> direction 'inbound' (the server's ztunnel). newConnectionRecord derives one from the other.
// - bytesSent / bytesReceived are from the reporter's side of the connection: what the
//   reporter's local workload sent and received. For reporter=source bytesSent is
//   client->server; for reporter=destination bytesSent is server->client. This is what
//   ztunnel's access log prints as bytes_sent / bytes_recv.
// - Istio's byte metrics do NOT follow the reporter: whoever reports,
//   istio_tcp_received_bytes_total counts the request direction (source -> destination, "bytes
//   received during request") and istio_tcp_sent_bytes_total the response direction
//   (destination -> source, "bytes sent during response"). So for reporter=source the two are
//   "flipped" against the log (as in Istio; ztunnel's copy loop counts upstream->downstream
//   as sent). TcpTelemetry maps the record's fields onto the metrics accordingly.
// - The data path counts bytes by adding to record.bytesSent / bytesReceived: one property
//   write per chunk, no label lookup. The metric handles (labels resolved once, at open) are
//   kept by TcpTelemetry; the byte deltas are folded into the counters at every scrape and at
//   close, so counters grow during long-lived connections too.
// - opened(record) counts istio_tcp_connections_opened_total and raises istio_tcp_sockets_open,
//   with response_flags '-' (as ztunnel: the open is counted before the outcome is known).
//   Byte counters and the gauge keep those open-time labels.
// - closed(record) counts istio_tcp_connections_closed_total (and
//   istio_tcp_connections_failed_total when the connection failed, i.e. responseFlags != '-')
//   with the final labels, lowers the gauge, flushes the bytes and writes exactly one access-log
//   line. A second closed() of the same record does nothing. closed() of a record that was never
//   opened counts it as opened first, so opened_total - closed_total == sockets_open always.
// - A denied or failed connection is still a connection: open it, mark it (denyConnection /
//   failConnection), close it.
import type { Clock } from '../core/clock.js';
import type { LogFields, Logger } from '../core/logger.js';
import {
  buildTcpLabels,
  TCP_LABEL_NAMES,
  type PeerInfo,
  type SecurityPolicy,
  type ServiceInfo,
  type TcpLabelName,
} from './istio-labels.js';
import type { Counter, CounterHandle, Gauge, GaugeHandle, MetricsRegistry, PreparedLabels } from './metrics.js';
import { LabelCache } from './label-cache.js';

/** `waypoint`: a waypoint relaying a non-HTTP tunnel; counted like `destination` (downstream = the client). */
export type TcpReporter = 'source' | 'destination' | 'waypoint';
export type Direction = 'inbound' | 'outbound';
/** How the connection travelled: HBONE to a ztunnel, via a waypoint, or not tunnelled. */
export type Via = 'hbone' | 'passthrough' | 'plaintext' | 'waypoint';
/** The flags ztunnel reports for TCP: none, denied by policy, upstream connect failed. */
export type TcpResponseFlag = '-' | 'DENY' | 'CONNECT';

export interface ConnectionEndpoint {
  ip: string;
  port: number;
  /** What the workload API says about the workload at this address, if it is known. */
  workload?: PeerInfo;
  /** SPIFFE URI proven by the mTLS handshake; preferred over workload.principal. */
  identity?: string;
}

export interface ConnectionDestination extends ConnectionEndpoint {
  /** The HBONE target (`ip:port` in the CONNECT authority) when the transport address differs. */
  hboneAddr?: string;
}

/**
 * Why the mesh refused a connection before any byte of it reached a destination. Response
 * flags, metric labels and log fields are derived from this kind, never from a message.
 */
export type Refusal =
  /** The tunnel's authority (or the captured original destination) is not the listener's workload. */
  | 'not_this_workload'
  /** The destination is a mesh capture or proxy port: following it would loop. */
  | 'capture_port'
  /** No service or workload has the destination address (a waypoint, an ingress route). */
  | 'unknown_destination'
  /** The destination does not use this waypoint. */
  | 'not_bound'
  /** No route (a TCPRoute without a usable backend). */
  | 'no_route'
  /** No healthy endpoint for the destination. */
  | 'no_endpoint'
  /** The destination's waypoint has no ready replica. */
  | 'no_waypoint'
  /** `outboundTrafficPolicy: REGISTRY_ONLY` and the destination is not in the registry. */
  | 'registry_only'
  /** The destination's proxy answered the tunnel with an HTTP error other than 401/403. */
  | 'peer_refused';

export type ConnectionReason =
  /** Denied by authorization: `policy` is `ns/name` (null: no ALLOW policy matched), `rule` its index. */
  | { kind: 'denied'; policy: string | null; rule: number | null; message: string }
  /** Refused by the mesh; `status` is the HTTP status an HBONE client was answered with. */
  | { kind: 'refused'; refusal: Refusal; status?: number; message: string }
  /** Could not connect upstream (error code such as ECONNREFUSED or AMBIT_ERR_TIMEOUT). */
  | { kind: 'connect'; code: string; message: string }
  /** The client left before the upstream was up. */
  | { kind: 'cancelled'; message: string }
  /** Closed by the proxy: a policy change, the destination leaving, a drain. */
  | { kind: 'aborted'; message: string }
  /** The connection broke after it was established. */
  | { kind: 'error'; code: string; message: string };

export interface ConnectionRecord {
  id: string;
  reporter: TcpReporter;
  direction: Direction;
  startMs: number;
  /** Set by closed() from the clock when the caller did not. */
  endMs?: number;
  /** endMs - startMs; set by closed(). */
  durationMs?: number;
  source: ConnectionEndpoint;
  destination: ConnectionDestination;
  /** Absent when the destination is not a service (a pod IP, passthrough). */
  service?: ServiceInfo;
  via: Via;
  /** Bytes the reporter's local workload sent (see the invariants above). */
  bytesSent: number;
  /** Bytes the reporter's local workload received. */
  bytesReceived: number;
  responseFlags: TcpResponseFlag;
  securityPolicy: SecurityPolicy;
  reason?: ConnectionReason;
}

export interface ConnectionRecordInit {
  id: string;
  reporter: TcpReporter;
  startMs: number;
  source: ConnectionEndpoint;
  destination: ConnectionDestination;
  service?: ServiceInfo;
  via: Via;
  securityPolicy?: SecurityPolicy;
}

export function newConnectionRecord(init: ConnectionRecordInit): ConnectionRecord {
  return {
    id: init.id,
    reporter: init.reporter,
    direction: init.reporter === 'source' ? 'outbound' : 'inbound',
    startMs: init.startMs,
    source: init.source,
    destination: init.destination,
    ...(init.service ? { service: init.service } : {}),
    via: init.via,
    bytesSent: 0,
    bytesReceived: 0,
    responseFlags: '-',
    securityPolicy: init.securityPolicy ?? 'unknown',
  };
}

/** Mark a connection as denied by authorization (flag DENY). */
export function denyConnection(record: ConnectionRecord, deny: { policy: string | null; rule: number | null; message: string }): void {
  record.responseFlags = 'DENY';
  record.reason = { kind: 'denied', ...deny };
}

/** Mark a connection the mesh refused (flag CONNECT: it never reached a destination). */
export function refuseConnection(record: ConnectionRecord, refusal: { refusal: Refusal; message: string; status?: number }): void {
  record.responseFlags = 'CONNECT';
  record.reason = { kind: 'refused', ...refusal };
}

/** Mark a connection whose upstream could not be reached (flag CONNECT). */
export function failConnection(record: ConnectionRecord, failure: { code: string; message: string }): void {
  record.responseFlags = 'CONNECT';
  record.reason = { kind: 'connect', ...failure };
}

export function connectionFailed(record: ConnectionRecord): boolean {
  return record.responseFlags !== '-';
}

/** `ip:port`, with brackets for IPv6. */
export function formatAddr(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** The endpoint's principal: the handshake identity, else what the workload API says. */
export function endpointPrincipal(e: ConnectionEndpoint | undefined): string | undefined {
  return e ? e.identity ?? e.workload?.principal : undefined;
}

/** The endpoint as a PeerInfo for the label builder, principal included. */
export function endpointPeer(e: ConnectionEndpoint | undefined): PeerInfo | undefined {
  if (!e) return undefined;
  const principal = endpointPrincipal(e);
  if (!e.workload) return principal ? { principal } : undefined;
  return principal === e.workload.principal ? e.workload : { ...e.workload, principal };
}

/** Istio's TCP labels for a record, with the given response flags. Pure. */
export function connectionLabels(record: ConnectionRecord, responseFlags: TcpResponseFlag = record.responseFlags) {
  return buildTcpLabels({
    reporter: record.reporter,
    source: endpointPeer(record.source),
    destination: endpointPeer(record.destination),
    service: record.service,
    protocol: 'tcp',
    responseFlags,
    securityPolicy: record.securityPolicy,
  });
}

function workloadName(p: PeerInfo | undefined): string | undefined {
  return p?.name || p?.workload || p?.canonicalService || undefined;
}

/**
 * The access-log line for a closed connection, with ztunnel's field names. Pure. Fields
 * without a value are left out; identities only appear for mutual TLS, as in ztunnel.
 */
export function tcpAccessLogFields(record: ConnectionRecord): LogFields {
  const mtls = record.securityPolicy === 'mutual_tls';
  const failed = connectionFailed(record) || record.reason !== undefined;
  const durationMs = record.durationMs ?? (record.endMs !== undefined ? record.endMs - record.startMs : undefined);
  const fields: LogFields = {
    level: failed ? 'error' : 'info',
    msg: 'connection complete',
    'src.addr': formatAddr(record.source.ip, record.source.port),
    'src.workload': workloadName(record.source.workload),
    'src.namespace': record.source.workload?.namespace || undefined,
    'src.identity': mtls ? endpointPrincipal(record.source) : undefined,
    'dst.addr': formatAddr(record.destination.ip, record.destination.port),
    'dst.hbone_addr': record.destination.hboneAddr,
    'dst.service': record.service?.hostname,
    'dst.workload': workloadName(record.destination.workload),
    'dst.namespace': record.destination.workload?.namespace || undefined,
    'dst.identity': mtls ? endpointPrincipal(record.destination) : undefined,
    direction: record.direction,
    via: record.via,
    bytes_sent: record.bytesSent,
    bytes_recv: record.bytesReceived,
    duration: durationMs === undefined ? undefined : `${Math.round(durationMs)}ms`,
    response_flags: record.responseFlags,
  };
  const r = record.reason;
  if (r) {
    fields.error = r.message;
    fields.reason = r.kind;
    if (r.kind === 'denied') {
      fields.policy = r.policy ?? undefined;
      fields.rule = r.rule ?? undefined;
    } else if (r.kind === 'refused') {
      fields.refusal = r.refusal;
      fields.status = r.status;
    } else if (r.kind === 'connect' || r.kind === 'error') {
      fields.error_code = r.code;
    }
  }
  for (const k of Object.keys(fields)) if (fields[k] === undefined) delete fields[k];
  return fields;
}

export const TCP_METRIC_HELP = {
  opened: 'The total number of TCP connections opened',
  closed: 'The total number of TCP connections closed',
  failed: 'The total number of TCP connections that failed (denied by policy or upstream connect error)',
  sent: 'The size of total bytes sent during response in case of a TCP connection',
  received: 'The size of total bytes received during request in case of a TCP connection',
  socketsOpen: 'The number of TCP connections currently open',
} as const;

export interface TcpMetrics {
  opened: Counter<TcpLabelName>;
  closed: Counter<TcpLabelName>;
  failed: Counter<TcpLabelName>;
  sentBytes: Counter<TcpLabelName>;
  receivedBytes: Counter<TcpLabelName>;
  socketsOpen: Gauge<TcpLabelName>;
}

export function registerTcpMetrics(registry: MetricsRegistry): TcpMetrics {
  const labelNames = TCP_LABEL_NAMES;
  return {
    opened: registry.counter({ name: 'istio_tcp_connections_opened_total', help: TCP_METRIC_HELP.opened, labelNames }),
    closed: registry.counter({ name: 'istio_tcp_connections_closed_total', help: TCP_METRIC_HELP.closed, labelNames }),
    failed: registry.counter({ name: 'istio_tcp_connections_failed_total', help: TCP_METRIC_HELP.failed, labelNames }),
    sentBytes: registry.counter({ name: 'istio_tcp_sent_bytes_total', help: TCP_METRIC_HELP.sent, labelNames }),
    receivedBytes: registry.counter({ name: 'istio_tcp_received_bytes_total', help: TCP_METRIC_HELP.received, labelNames }),
    socketsOpen: registry.gauge({ name: 'istio_tcp_sockets_open', help: TCP_METRIC_HELP.socketsOpen, labelNames }),
  };
}

/** What TcpTelemetry keeps for an open connection: handles resolved once, at open. */
interface OpenConnection {
  record: ConnectionRecord;
  /** Counter for the bytes the reporter's side sent (received_bytes for source, sent_bytes for destination). */
  localSent: CounterHandle;
  localReceived: CounterHandle;
  sockets: GaugeHandle;
  flushedSent: number;
  flushedReceived: number;
}

export interface TcpTelemetryOptions {
  registry: MetricsRegistry;
  logger: Logger;
  clock?: Pick<Clock, 'now'>;
}

export class TcpTelemetry {
  readonly metrics: TcpMetrics;
  private readonly logger: Logger;
  private readonly clock: Pick<Clock, 'now'>;
  private readonly open = new Map<ConnectionRecord, OpenConnection>();
  private readonly done = new WeakSet<ConnectionRecord>();
  private readonly labels = new LabelCache(TCP_LABEL_NAMES);

  constructor(options: TcpTelemetryOptions) {
    this.metrics = registerTcpMetrics(options.registry);
    this.logger = options.logger;
    this.clock = options.clock ?? { now: () => Date.now() };
    options.registry.addCollector(() => this.flush());
  }

  /** Connections opened and not yet closed. */
  get openConnections(): number {
    return this.open.size;
  }

  opened(record: ConnectionRecord): void {
    if (this.open.has(record) || this.done.has(record)) return;
    const labels = this.labelsOf(record, '-');
    const m = this.metrics;
    m.opened.labels(labels).inc();
    const sockets = m.socketsOpen.labels(labels);
    sockets.inc();
    const sent = m.sentBytes.labels(labels);
    const received = m.receivedBytes.labels(labels);
    const source = record.reporter === 'source';
    this.open.set(record, {
      record,
      localSent: source ? received : sent,
      localReceived: source ? sent : received,
      sockets,
      flushedSent: 0,
      flushedReceived: 0,
    });
  }

  closed(record: ConnectionRecord): void {
    if (this.done.has(record)) return;
    if (!this.open.has(record)) this.opened(record);
    const state = this.open.get(record)!;
    this.open.delete(record);
    this.done.add(record);

    if (record.endMs === undefined) record.endMs = this.clock.now();
    record.durationMs = record.endMs - record.startMs;

    this.flushOne(state);
    state.sockets.dec();
    const labels = this.labelsOf(record, record.responseFlags);
    this.metrics.closed.labels(labels).inc();
    if (connectionFailed(record)) this.metrics.failed.labels(labels).inc();
    this.logger.record(tcpAccessLogFields(record));
  }

  private labelsOf(r: ConnectionRecord, flags: TcpResponseFlag): PreparedLabels<TcpLabelName> {
    const c = this.labels;
    const svc = r.service;
    const key = `${r.reporter}|${c.endpoint(r.source)}|${c.endpoint(r.destination)}|${svc ? `${svc.hostname}|${svc.namespace}|${svc.name}` : '-'}|${flags}|${r.securityPolicy}`;
    return c.get(key, () => connectionLabels(r, flags));
  }

  /** Fold the byte counts of open connections into the counters (runs before every render). */
  flush(): void {
    for (const state of this.open.values()) this.flushOne(state);
  }

  private flushOne(s: OpenConnection): void {
    const sent = s.record.bytesSent;
    const received = s.record.bytesReceived;
    if (sent > s.flushedSent) {
      s.localSent.inc(sent - s.flushedSent);
      s.flushedSent = sent;
    }
    if (received > s.flushedReceived) {
      s.localReceived.inc(received - s.flushedReceived);
      s.flushedReceived = received;
    }
  }
}
