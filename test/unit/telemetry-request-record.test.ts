import { test } from 'node:test';
import assert from 'node:assert/strict';
import { memoryLogger, type LogFields } from '../../src/core/logger.js';
import { MetricsRegistry } from '../../src/telemetry/metrics.js';
import {
  ISTIO_BYTE_BUCKETS,
  ISTIO_DURATION_BUCKETS_MS,
  requestAccessLogFields,
  RequestTelemetry,
  traceIdOf,
  type RequestRecord,
} from '../../src/telemetry/request-record.js';
import type { PeerInfo, ServiceInfo } from '../../src/telemetry/istio-labels.js';

const sleep: PeerInfo = { workload: 'sleep', name: 'sleep-1', namespace: 'default', canonicalService: 'sleep', canonicalRevision: 'v1' };
const reviews: PeerInfo = { workload: 'reviews-v2', name: 'reviews-v2-abc', namespace: 'bookinfo', canonicalService: 'reviews', canonicalRevision: 'v2', principal: 'spiffe://cluster.local/ns/bookinfo/sa/reviews' };
const svc: ServiceInfo = { hostname: 'reviews.bookinfo.svc.cluster.local', namespace: 'bookinfo', name: 'reviews' };
const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

function request(over: Partial<RequestRecord> = {}): RequestRecord {
  return {
    id: 'r1',
    reporter: 'waypoint',
    startMs: Date.UTC(2026, 0, 1, 12, 0, 0),
    durationMs: 12,
    source: { ip: '10.1.0.5', port: 41000, workload: sleep, identity: 'spiffe://cluster.local/ns/default/sa/sleep' },
    destination: { ip: '10.1.2.9', port: 9080, workload: reviews },
    service: svc,
    protocol: 'http',
    httpVersion: 'HTTP/1.1',
    method: 'GET',
    path: '/reviews/1',
    authority: 'reviews.bookinfo:9080',
    responseCode: 200,
    requestBytes: 80,
    responseBytes: 3000,
    responseFlags: '-',
    securityPolicy: 'mutual_tls',
    traceparent: TRACEPARENT,
    requestId: 'req-1',
    ...over,
  };
}

function setup() {
  const registry = new MetricsRegistry();
  const { logger, lines } = memoryLogger();
  return { registry, lines, l7: new RequestTelemetry({ registry, logger }) };
}

function withoutTime(l: LogFields): LogFields {
  const { time: _time, ...rest } = l;
  return rest;
}

test('buckets are Envoy\'s defaults, as Istio uses them for duration and for bytes', () => {
  const envoyDefault = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000];
  assert.deepEqual([...ISTIO_DURATION_BUCKETS_MS], envoyDefault);
  assert.deepEqual([...ISTIO_BYTE_BUCKETS], envoyDefault);
});

test('a 200 through the waypoint: one count, duration and sizes observed, one access-log line', () => {
  const { registry, lines, l7 } = setup();
  l7.completed(request());

  const labels = {
    reporter: 'waypoint',
    source_workload: 'sleep', source_canonical_service: 'sleep', source_canonical_revision: 'v1',
    source_workload_namespace: 'default', source_principal: 'spiffe://cluster.local/ns/default/sa/sleep',
    source_app: 'sleep', source_version: 'v1', source_cluster: 'unknown',
    destination_service: 'reviews.bookinfo.svc.cluster.local', destination_service_namespace: 'bookinfo',
    destination_service_name: 'reviews', destination_workload: 'reviews-v2', destination_canonical_service: 'reviews',
    destination_canonical_revision: 'v2', destination_workload_namespace: 'bookinfo',
    destination_principal: 'spiffe://cluster.local/ns/bookinfo/sa/reviews', destination_app: 'reviews',
    destination_version: 'v2', destination_cluster: 'unknown',
    request_protocol: 'http', response_flags: '-', connection_security_policy: 'mutual_tls',
    response_code: '200', grpc_response_status: '',
  };
  const m = l7.metrics;
  assert.equal(m.requests.find(labels)?.value, 1);
  const d = m.duration.find(labels)!;
  assert.equal(d.count, 1);
  assert.equal(d.sum, 12);
  // 12 ms is above 10 and at most 25: the le="25" bucket is the first to count it
  assert.deepEqual(d.cumulative().slice(0, 6), [0, 0, 0, 0, 1, 1]);
  assert.equal(m.requestBytes.find(labels)!.sum, 80);
  // 3000 bytes: not in le=1000 nor le=2500, first counted by le=5000
  assert.deepEqual(m.responseBytes.find(labels)!.cumulative().slice(9, 12), [0, 0, 1]);
  const text = registry.render();
  assert.match(text, /^# HELP istio_requests_total /m);
  assert.match(text, /^# TYPE istio_request_duration_milliseconds histogram$/m);
  assert.match(text, /^istio_request_duration_milliseconds_bucket\{reporter="waypoint",.*,grpc_response_status="",le="25"\} 1$/m);
  assert.match(text, /^istio_request_duration_milliseconds_bucket\{reporter="waypoint",.*,le="10"\} 0$/m);
  assert.match(text, /^istio_response_bytes_bucket\{.*,le="\+Inf"\} 1$/m);
  assert.match(text, /^istio_request_bytes_sum\{.*\} 80$/m);

  assert.equal(lines.length, 1);
  assert.deepEqual(withoutTime(lines[0]!), {
    level: 'info',
    msg: 'request complete',
    reporter: 'waypoint',
    start_time: '2026-01-01T12:00:00.000Z',
    method: 'GET',
    path: '/reviews/1',
    protocol: 'HTTP/1.1',
    authority: 'reviews.bookinfo:9080',
    response_code: 200,
    response_flags: '-',
    bytes_received: 80,
    bytes_sent: 3000,
    duration: 12,
    upstream_host: '10.1.2.9:9080',
    request_id: 'req-1',
    traceparent: TRACEPARENT,
    trace_id: '4bf92f3577b34da6a3ce929d0e0e4736',
    'src.addr': '10.1.0.5:41000',
    'src.workload': 'sleep-1',
    'src.namespace': 'default',
    'src.identity': 'spiffe://cluster.local/ns/default/sa/sleep',
    'dst.service': 'reviews.bookinfo.svc.cluster.local',
    'dst.workload': 'reviews-v2-abc',
    'dst.namespace': 'bookinfo',
    'dst.identity': 'spiffe://cluster.local/ns/bookinfo/sa/reviews',
  });
});

test('the same label set is one series: two identical requests count 2', () => {
  const { l7 } = setup();
  l7.completed(request());
  l7.completed(request({ durationMs: 700, id: 'r2' }));
  assert.equal(l7.metrics.requests.size, 1);
  const [h] = [...l7.metrics.requests.handles()];
  assert.equal(h!.value, 2);
  const [d] = [...l7.metrics.duration.handles()];
  assert.equal(d!.count, 2);
  assert.equal(d!.sum, 712);
  l7.completed(request({ responseCode: 404 }));
  assert.equal(l7.metrics.requests.size, 2);
});

test('a request denied by L7 policy: 403 with RBAC, one error line naming the policy, no upstream', () => {
  const { lines, l7 } = setup();
  l7.completed(request({
    destination: undefined,
    responseCode: 403,
    responseBytes: 19,
    durationMs: 0.4,
    responseFlags: 'RBAC',
    reason: { kind: 'denied', policy: 'bookinfo/no-delete', rule: 1, message: 'RBAC: access denied' },
    method: 'DELETE',
    traceparent: undefined,
    requestId: undefined,
  }));
  const [h] = [...l7.metrics.requests.handles()];
  assert.match(h!.labels.text, /response_flags="RBAC"/);
  assert.match(h!.labels.text, /response_code="403"/);
  assert.match(h!.labels.text, /destination_workload="unknown"/);
  assert.match(h!.labels.text, /destination_service="reviews.bookinfo.svc.cluster.local"/);
  assert.equal(lines.length, 1);
  assert.deepEqual(withoutTime(lines[0]!), {
    level: 'error',
    msg: 'request complete',
    reporter: 'waypoint',
    start_time: '2026-01-01T12:00:00.000Z',
    method: 'DELETE',
    path: '/reviews/1',
    protocol: 'HTTP/1.1',
    authority: 'reviews.bookinfo:9080',
    response_code: 403,
    response_flags: 'RBAC',
    bytes_received: 80,
    bytes_sent: 19,
    duration: 0,
    'src.addr': '10.1.0.5:41000',
    'src.workload': 'sleep-1',
    'src.namespace': 'default',
    'src.identity': 'spiffe://cluster.local/ns/default/sa/sleep',
    'dst.service': 'reviews.bookinfo.svc.cluster.local',
    error: 'RBAC: access denied',
    reason: 'denied',
    policy: 'bookinfo/no-delete',
    rule: 1,
  });
});

test('gRPC requests report grpc protocol and status; sidecar reporters are kept', () => {
  const { l7 } = setup();
  l7.completed(request({ reporter: 'destination', protocol: 'grpc', httpVersion: 'HTTP/2', grpcStatus: 14, responseFlags: ['UF', 'URX'], reason: { kind: 'upstream', code: 'ECONNRESET', message: 'upstream reset' } }));
  const [h] = [...l7.metrics.requests.handles()];
  assert.match(h!.labels.text, /^reporter="destination",/);
  assert.match(h!.labels.text, /request_protocol="grpc",response_flags="UF,URX",connection_security_policy="mutual_tls",response_code="200",grpc_response_status="14"$/);
  const fields = requestAccessLogFields(request({ protocol: 'grpc', grpcStatus: 14, responseFlags: ['UF', 'URX'], upstreamHost: '10.9.9.9:50051' }));
  assert.equal(fields.grpc_status, 14);
  assert.equal(fields.response_flags, 'UF,URX');
  assert.equal(fields.upstream_host, '10.9.9.9:50051');
  assert.equal(fields.level, 'error');
});

test('no response at all is response_code 0 and an error line', () => {
  const { l7, lines } = setup();
  l7.completed(request({ responseCode: 0, responseBytes: 0, responseFlags: 'UH' }));
  const [h] = [...l7.metrics.requests.handles()];
  assert.match(h!.labels.text, /response_code="0"/);
  assert.equal(lines[0]!.level, 'error');
  assert.equal(lines[0]!.response_code, 0);
});

test('traceIdOf reads a W3C traceparent and refuses malformed or all-zero ids', () => {
  assert.equal(traceIdOf(TRACEPARENT), '4bf92f3577b34da6a3ce929d0e0e4736');
  assert.equal(traceIdOf(undefined), undefined);
  assert.equal(traceIdOf(''), undefined);
  assert.equal(traceIdOf('00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01'), undefined);
  assert.equal(traceIdOf('00-00000000000000000000000000000000-00f067aa0ba902b7-01'), undefined);
  assert.equal(traceIdOf('00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01'), undefined);
  assert.equal(traceIdOf('ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'), undefined);
  assert.equal(traceIdOf('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7'), undefined);
});
