// Istio's standard label set for the TCP and HTTP traffic metrics, built by one pure function
// so that ztunnel, waypoint and sidecar report identical label sets.
//
// Invariants (checked against istio.io "Istio Standard Metrics", ztunnel src/proxy/metrics.rs
// and istio/proxy istio_stats.cc):
// - The label names and their order are exactly TCP_LABEL_NAMES (HTTP: + response_code,
//   grpc_response_status). Every label always has a value.
// - A missing or empty value is `unknown` (ztunnel's DefaultedUnknown). Envoy sidecars report
//   `latest` for a missing canonical revision; Ambit follows ztunnel and says `unknown`.
// - destination_service is the service hostname (`reviews.bookinfo.svc.cluster.local`),
//   destination_service_name its short name (`reviews`), destination_service_namespace its
//   namespace. When the destination is not a service (a pod IP, passthrough), ztunnel leaves
//   all three `unknown`; so do we.
// - source_principal / destination_principal are SPIFFE URIs with the scheme
//   (`spiffe://cluster.local/ns/default/sa/sleep`), as ztunnel's Identity prints and as Envoy
//   reports the certificate URI SAN.
// - source_app / source_version fall back to the canonical service / revision when the app and
//   version labels are absent: ztunnel sets *_app from the canonical name and *_version from the
//   canonical revision (which Istio derives from the app/version labels in the first place).
// - response_code is the HTTP status as a decimal string, `0` when no response was sent;
//   values from the network are bounded (boundedCode, boundedGrpcStatus).
//   grpc_response_status is the gRPC status code for gRPC requests and the empty string for
//   plain HTTP, as Envoy's istio_stats filter reports it.

export const UNKNOWN = 'unknown';

export const TCP_LABEL_NAMES = [
  'reporter',
  'source_workload',
  'source_canonical_service',
  'source_canonical_revision',
  'source_workload_namespace',
  'source_principal',
  'source_app',
  'source_version',
  'source_cluster',
  'destination_service',
  'destination_service_namespace',
  'destination_service_name',
  'destination_workload',
  'destination_canonical_service',
  'destination_canonical_revision',
  'destination_workload_namespace',
  'destination_principal',
  'destination_app',
  'destination_version',
  'destination_cluster',
  'request_protocol',
  'response_flags',
  'connection_security_policy',
] as const;

export const HTTP_LABEL_NAMES = [...TCP_LABEL_NAMES, 'response_code', 'grpc_response_status'] as const;

export type TcpLabelName = (typeof TCP_LABEL_NAMES)[number];
export type HttpLabelName = (typeof HTTP_LABEL_NAMES)[number];
export type TcpLabels = { [K in TcpLabelName]: string };
export type HttpLabels = { [K in HttpLabelName]: string };

/** Who reports: the client side, the server side, or a waypoint in between. */
export type Reporter = 'source' | 'destination' | 'waypoint';
export type RequestProtocol = 'tcp' | 'http' | 'grpc';
/** `none`: plaintext seen by a server-side proxy; `unknown`: not known (ztunnel without mTLS). */
export type SecurityPolicy = 'mutual_tls' | 'none' | 'unknown';

/**
 * Response flags, in Envoy's short form. ztunnel uses only `-`, `DENY` (authorization policy)
 * and `CONNECT` (upstream connection could not be established). The others are Envoy's, for L7.
 */
export type ResponseFlag =
  | '-'
  | 'DENY' // ztunnel: denied by authorization policy
  | 'CONNECT' // ztunnel: could not connect upstream
  | 'UF' // upstream connection failure
  | 'UH' // no healthy upstream
  | 'UT' // upstream request timeout
  | 'URX' // retry limit exceeded
  | 'UC' // upstream connection termination
  | 'UO' // upstream overflow (circuit breaking)
  | 'DC' // downstream connection termination
  | 'NR' // no route
  | 'DI' // fault injection: delay
  | 'FI' // fault injection: abort
  | 'RL' // rate limited
  | 'RBAC' // denied by L7 authorization
  | 'UAEX'; // denied by external authorization

/** One side of a connection or request, as the workload API describes it. */
export interface PeerInfo {
  /** The workload's controller name (e.g. the Deployment), label `*_workload`. */
  workload?: string;
  /** The instance name (e.g. the pod); used by the access log, not by metrics. */
  name?: string;
  namespace?: string;
  canonicalService?: string;
  canonicalRevision?: string;
  /** SPIFFE URI, `spiffe://<td>/ns/<ns>/sa/<sa>`. */
  principal?: string;
  /** The `app` label. Falls back to canonicalService. */
  app?: string;
  /** The `version` label. Falls back to canonicalRevision. */
  version?: string;
  cluster?: string;
}

export interface ServiceInfo {
  /** `reviews.bookinfo.svc.cluster.local` */
  hostname: string;
  namespace: string;
  /** `reviews` */
  name: string;
}

export interface TrafficLabelInput {
  reporter: Reporter;
  source?: PeerInfo;
  destination?: PeerInfo;
  /** Absent when the destination is not a service (pod IP, passthrough). */
  service?: ServiceInfo;
  protocol: RequestProtocol;
  /** Default `-`. A list is joined with commas, as Envoy prints several flags. */
  responseFlags?: ResponseFlag | readonly ResponseFlag[];
  /** Default `unknown`. */
  securityPolicy?: SecurityPolicy;
}

export interface RequestLabelInput extends TrafficLabelInput {
  /** HTTP status; undefined or 0 when no response was sent. */
  responseCode?: number;
  /** gRPC status code, for gRPC requests only. */
  grpcStatus?: number;
}

function v(s: string | undefined): string {
  return s === undefined || s === '' ? UNKNOWN : s;
}

/** `-` for none, Envoy's comma-joined short flags otherwise. */
export function formatResponseFlags(flags: ResponseFlag | readonly ResponseFlag[] | undefined): string {
  if (flags === undefined) return '-';
  if (typeof flags === 'string') return flags;
  const real = flags.filter((f) => f !== '-');
  return real.length === 0 ? '-' : real.join(',');
}

/** Istio's TCP label set, in TCP_LABEL_NAMES order. Pure. */
export function buildTcpLabels(input: TrafficLabelInput): TcpLabels {
  const s = input.source;
  const d = input.destination;
  const svc = input.service;
  return {
    reporter: input.reporter,
    source_workload: v(s?.workload),
    source_canonical_service: v(s?.canonicalService),
    source_canonical_revision: v(s?.canonicalRevision),
    source_workload_namespace: v(s?.namespace),
    source_principal: v(s?.principal),
    source_app: v(s?.app || s?.canonicalService),
    source_version: v(s?.version || s?.canonicalRevision),
    source_cluster: v(s?.cluster),
    destination_service: v(svc?.hostname),
    destination_service_namespace: v(svc?.namespace),
    destination_service_name: v(svc?.name),
    destination_workload: v(d?.workload),
    destination_canonical_service: v(d?.canonicalService),
    destination_canonical_revision: v(d?.canonicalRevision),
    destination_workload_namespace: v(d?.namespace),
    destination_principal: v(d?.principal),
    destination_app: v(d?.app || d?.canonicalService),
    destination_version: v(d?.version || d?.canonicalRevision),
    destination_cluster: v(d?.cluster),
    request_protocol: input.protocol,
    response_flags: formatResponseFlags(input.responseFlags),
    connection_security_policy: input.securityPolicy ?? 'unknown',
  };
}

/** Istio's HTTP label set, in HTTP_LABEL_NAMES order. Pure. */
export function buildHttpLabels(input: RequestLabelInput): HttpLabels {
  return {
    ...buildTcpLabels(input),
    response_code: boundedCode(input.responseCode),
    grpc_response_status: input.protocol === 'grpc' && input.grpcStatus !== undefined ? boundedGrpcStatus(input.grpcStatus) : '',
  };
}

/**
 * Label values that come from the network take a bounded set of values (a peer must not be
 * able to grow the metric series without end): HTTP status 100-599 or 0, else `unknown`;
 * gRPC status 0-16 (the codes gRPC defines), else `unknown`.
 */
export function boundedCode(code: number | undefined): string {
  const c = code ?? 0;
  return c === 0 || (Number.isInteger(c) && c >= 100 && c <= 599) ? String(c) : 'unknown';
}

export function boundedGrpcStatus(status: number): string {
  return Number.isInteger(status) && status >= 0 && status <= 16 ? String(status) : 'unknown';
}
