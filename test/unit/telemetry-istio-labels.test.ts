import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  buildHttpLabels,
  buildTcpLabels,
  formatResponseFlags,
  HTTP_LABEL_NAMES,
  TCP_LABEL_NAMES,
  type PeerInfo,
  type ServiceInfo,
} from '../../src/telemetry/istio-labels.js';

// Istio's standard label set, in Istio's order (istio.io standard metrics; ztunnel CommonTrafficLabels).
const EXPECTED_TCP = [
  'reporter', 'source_workload', 'source_canonical_service', 'source_canonical_revision',
  'source_workload_namespace', 'source_principal', 'source_app', 'source_version', 'source_cluster',
  'destination_service', 'destination_service_namespace', 'destination_service_name',
  'destination_workload', 'destination_canonical_service', 'destination_canonical_revision',
  'destination_workload_namespace', 'destination_principal', 'destination_app', 'destination_version',
  'destination_cluster', 'request_protocol', 'response_flags', 'connection_security_policy',
];

const sleep: PeerInfo = {
  workload: 'sleep',
  name: 'sleep-7d9c-abcde',
  namespace: 'default',
  canonicalService: 'sleep',
  canonicalRevision: 'v1',
  principal: 'spiffe://cluster.local/ns/default/sa/sleep',
  app: 'sleep-app',
  version: 'v1.2',
  cluster: 'Kubernetes',
};
const reviews: PeerInfo = {
  workload: 'reviews-v2',
  namespace: 'bookinfo',
  canonicalService: 'reviews',
  canonicalRevision: 'v2',
  principal: 'spiffe://cluster.local/ns/bookinfo/sa/bookinfo-reviews',
  cluster: 'Kubernetes',
};
const reviewsSvc: ServiceInfo = { hostname: 'reviews.bookinfo.svc.cluster.local', namespace: 'bookinfo', name: 'reviews' };

test('label names are exactly Istio\'s, in Istio\'s order; HTTP adds response_code and grpc_response_status', () => {
  assert.deepEqual([...TCP_LABEL_NAMES], EXPECTED_TCP);
  assert.deepEqual([...HTTP_LABEL_NAMES], [...EXPECTED_TCP, 'response_code', 'grpc_response_status']);
  assert.deepEqual(Object.keys(buildTcpLabels({ reporter: 'source', protocol: 'tcp' })), EXPECTED_TCP);
  assert.deepEqual(Object.keys(buildHttpLabels({ reporter: 'waypoint', protocol: 'http' })), [...HTTP_LABEL_NAMES]);
});

test('with nothing known, every peer and service label is unknown', () => {
  const labels = buildTcpLabels({ reporter: 'destination', protocol: 'tcp' });
  const expected: Record<string, string> = {};
  for (const n of EXPECTED_TCP) expected[n] = 'unknown';
  expected.reporter = 'destination';
  expected.request_protocol = 'tcp';
  expected.response_flags = '-';
  expected.connection_security_policy = 'unknown';
  assert.deepEqual(labels, expected);
});

test('a full source, destination and service map onto the labels', () => {
  const labels = buildTcpLabels({
    reporter: 'source',
    source: sleep,
    destination: reviews,
    service: reviewsSvc,
    protocol: 'tcp',
    responseFlags: '-',
    securityPolicy: 'mutual_tls',
  });
  assert.deepEqual(labels, {
    reporter: 'source',
    source_workload: 'sleep',
    source_canonical_service: 'sleep',
    source_canonical_revision: 'v1',
    source_workload_namespace: 'default',
    source_principal: 'spiffe://cluster.local/ns/default/sa/sleep',
    source_app: 'sleep-app',
    source_version: 'v1.2',
    source_cluster: 'Kubernetes',
    destination_service: 'reviews.bookinfo.svc.cluster.local',
    destination_service_namespace: 'bookinfo',
    destination_service_name: 'reviews',
    destination_workload: 'reviews-v2',
    destination_canonical_service: 'reviews',
    destination_canonical_revision: 'v2',
    destination_workload_namespace: 'bookinfo',
    destination_principal: 'spiffe://cluster.local/ns/bookinfo/sa/bookinfo-reviews',
    // no app/version labels: ztunnel reports the canonical service and revision
    destination_app: 'reviews',
    destination_version: 'v2',
    destination_cluster: 'Kubernetes',
    request_protocol: 'tcp',
    response_flags: '-',
    connection_security_policy: 'mutual_tls',
  });
});

test('a destination that is not a service leaves the three service labels unknown', () => {
  const labels = buildTcpLabels({ reporter: 'source', source: sleep, destination: reviews, protocol: 'tcp' });
  assert.equal(labels.destination_service, 'unknown');
  assert.equal(labels.destination_service_namespace, 'unknown');
  assert.equal(labels.destination_service_name, 'unknown');
  assert.equal(labels.destination_workload, 'reviews-v2');
});

test('empty strings count as missing', () => {
  const labels = buildTcpLabels({
    reporter: 'source',
    source: { workload: '', namespace: '', app: '', canonicalService: '', principal: '' },
    protocol: 'tcp',
  });
  assert.equal(labels.source_workload, 'unknown');
  assert.equal(labels.source_workload_namespace, 'unknown');
  assert.equal(labels.source_app, 'unknown');
  assert.equal(labels.source_principal, 'unknown');
});

test('HTTP labels: response_code defaults to 0, grpc_response_status is empty for plain HTTP', () => {
  const http = buildHttpLabels({ reporter: 'waypoint', protocol: 'http', responseCode: 503, grpcStatus: 14 });
  assert.equal(http.reporter, 'waypoint');
  assert.equal(http.request_protocol, 'http');
  assert.equal(http.response_code, '503');
  assert.equal(http.grpc_response_status, '');
  const none = buildHttpLabels({ reporter: 'waypoint', protocol: 'http' });
  assert.equal(none.response_code, '0');
  const grpc = buildHttpLabels({ reporter: 'destination', protocol: 'grpc', responseCode: 200, grpcStatus: 14 });
  assert.equal(grpc.request_protocol, 'grpc');
  assert.equal(grpc.grpc_response_status, '14');
  assert.equal(buildHttpLabels({ reporter: 'source', protocol: 'grpc', responseCode: 200 }).grpc_response_status, '');
});

test('response flags: - for none, comma-joined for several', () => {
  assert.equal(formatResponseFlags(undefined), '-');
  assert.equal(formatResponseFlags('DENY'), 'DENY');
  assert.equal(formatResponseFlags([]), '-');
  assert.equal(formatResponseFlags(['-']), '-');
  assert.equal(formatResponseFlags(['UT', 'URX']), 'UT,URX');
  assert.equal(buildTcpLabels({ reporter: 'source', protocol: 'tcp', responseFlags: ['UF', 'URX'] }).response_flags, 'UF,URX');
});

test('label values from the network are bounded: an odd HTTP or gRPC status becomes unknown', async () => {
  const { boundedCode, boundedGrpcStatus } = await import('../../src/telemetry/istio-labels.js');
  assert.deepEqual([0, 200, 404, 599, 600, 999, 42, -1, 1.5].map(boundedCode), ['0', '200', '404', '599', 'unknown', 'unknown', 'unknown', 'unknown', 'unknown']);
  assert.deepEqual([0, 5, 16, 17, 1000000, -3, Number.NaN].map(boundedGrpcStatus), ['0', '5', '16', 'unknown', 'unknown', 'unknown', 'unknown']);
});
