import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../src/core/clock.js';
import { memoryLogger, type LogFields } from '../../src/core/logger.js';
import { MetricsRegistry } from '../../src/telemetry/metrics.js';
import {
  denyConnection,
  failConnection,
  newConnectionRecord,
  tcpAccessLogFields,
  TcpTelemetry,
  type ConnectionRecord,
} from '../../src/telemetry/connection-record.js';
import type { PeerInfo, ServiceInfo } from '../../src/telemetry/istio-labels.js';

// ---- a tiny reader for the text format, so tests look at what Prometheus would scrape ----

interface Sample { name: string; labels: Record<string, string>; value: number }

function parse(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `bad line: ${line}`);
    const labels: Record<string, string> = {};
    for (const lm of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[lm[1]!] = lm[2]!.replace(/\\(.)/g, (_s, c: string) => (c === 'n' ? '\n' : c));
    }
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** The samples of one metric whose labels include `match`. */
function samples(r: MetricsRegistry, name: string, match: Record<string, string> = {}): Sample[] {
  return parse(r.render()).filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v));
}

function value(r: MetricsRegistry, name: string, match: Record<string, string> = {}): number | undefined {
  const found = samples(r, name, match);
  assert.ok(found.length <= 1, `${name} ${JSON.stringify(match)} matches ${found.length} series`);
  return found[0]?.value;
}

function withoutTime(l: LogFields): LogFields {
  const { time, ...rest } = l;
  assert.equal(typeof time, 'string');
  return rest;
}

// ---- fixtures ----

const sleep: PeerInfo = {
  workload: 'sleep', name: 'sleep-5d9c-x1', namespace: 'default', canonicalService: 'sleep', canonicalRevision: 'latest',
  principal: 'spiffe://cluster.local/ns/default/sa/sleep', cluster: 'local',
};
const echo: PeerInfo = {
  workload: 'echo', name: 'echo-7f-aa', namespace: 'shop', canonicalService: 'echo', canonicalRevision: 'v1',
  principal: 'spiffe://cluster.local/ns/shop/sa/echo', cluster: 'local',
};
const echoSvc: ServiceInfo = { hostname: 'echo.shop.svc.cluster.local', namespace: 'shop', name: 'echo' };

function setup() {
  const clock = new FakeClock(Date.UTC(2026, 0, 1, 12, 0, 0));
  const registry = new MetricsRegistry();
  const { logger, lines } = memoryLogger({ clock: () => clock.now() });
  const tcp = new TcpTelemetry({ registry, logger, clock });
  return { clock, registry, lines, tcp };
}

function outbound(clock: FakeClock): ConnectionRecord {
  return newConnectionRecord({
    id: 'c1',
    reporter: 'source',
    startMs: clock.now(),
    source: { ip: '10.1.0.5', port: 40000, workload: sleep, identity: 'spiffe://cluster.local/ns/default/sa/sleep' },
    destination: { ip: '10.1.1.7', port: 8080, workload: echo, identity: 'spiffe://cluster.local/ns/shop/sa/echo', hboneAddr: '10.1.1.7:8080' },
    service: echoSvc,
    via: 'hbone',
    securityPolicy: 'mutual_tls',
  });
}

test('newConnectionRecord derives the direction from the reporter and starts clean', () => {
  const { clock } = setup();
  const r = outbound(clock);
  assert.equal(r.direction, 'outbound');
  assert.equal(r.bytesSent, 0);
  assert.equal(r.bytesReceived, 0);
  assert.equal(r.responseFlags, '-');
  const inbound = newConnectionRecord({ id: 'c2', reporter: 'destination', startMs: 0, source: { ip: '1.1.1.1', port: 1 }, destination: { ip: '2.2.2.2', port: 2 }, via: 'plaintext' });
  assert.equal(inbound.direction, 'inbound');
  assert.equal(inbound.securityPolicy, 'unknown');
  assert.equal('service' in inbound, false);
});

test('a successful outbound connection: opened, bytes while open, closed, one access-log line', async () => {
  const { clock, registry, lines, tcp } = setup();
  const rec = outbound(clock);
  const ok = { reporter: 'source', response_flags: '-', destination_service: 'echo.shop.svc.cluster.local' };

  tcp.opened(rec);
  assert.equal(value(registry, 'istio_tcp_connections_opened_total', ok), 1);
  assert.equal(value(registry, 'istio_tcp_sockets_open', ok), 1);
  assert.equal(tcp.openConnections, 1);
  assert.equal(lines.length, 0, 'nothing is logged at open');

  // the data path only bumps the record's numbers
  rec.bytesSent += 100; // client -> server
  rec.bytesReceived += 2000; // server -> client
  // a scrape during the connection already sees the bytes; for reporter=source the request
  // direction (client->server) is istio_tcp_received_bytes_total
  assert.equal(value(registry, 'istio_tcp_received_bytes_total', ok), 100);
  assert.equal(value(registry, 'istio_tcp_sent_bytes_total', ok), 2000);
  rec.bytesSent += 20;
  rec.bytesReceived += 5;
  assert.equal(tcp.metrics.sentBytes.size, 1, 'no new series per chunk');

  await clock.advance(1234);
  tcp.closed(rec);

  assert.equal(rec.endMs, clock.now());
  assert.equal(rec.durationMs, 1234);
  assert.equal(value(registry, 'istio_tcp_connections_closed_total', ok), 1);
  assert.equal(value(registry, 'istio_tcp_sockets_open', ok), 0);
  assert.equal(value(registry, 'istio_tcp_received_bytes_total', ok), 120);
  assert.equal(value(registry, 'istio_tcp_sent_bytes_total', ok), 2005);
  assert.deepEqual(samples(registry, 'istio_tcp_connections_failed_total'), []);
  assert.equal(tcp.openConnections, 0);

  // the full label set of the closed counter
  const [closed] = samples(registry, 'istio_tcp_connections_closed_total');
  assert.deepEqual(closed!.labels, {
    reporter: 'source',
    source_workload: 'sleep',
    source_canonical_service: 'sleep',
    source_canonical_revision: 'latest',
    source_workload_namespace: 'default',
    source_principal: 'spiffe://cluster.local/ns/default/sa/sleep',
    source_app: 'sleep',
    source_version: 'latest',
    source_cluster: 'local',
    destination_service: 'echo.shop.svc.cluster.local',
    destination_service_namespace: 'shop',
    destination_service_name: 'echo',
    destination_workload: 'echo',
    destination_canonical_service: 'echo',
    destination_canonical_revision: 'v1',
    destination_workload_namespace: 'shop',
    destination_principal: 'spiffe://cluster.local/ns/shop/sa/echo',
    destination_app: 'echo',
    destination_version: 'v1',
    destination_cluster: 'local',
    request_protocol: 'tcp',
    response_flags: '-',
    connection_security_policy: 'mutual_tls',
  });

  assert.equal(lines.length, 1);
  assert.deepEqual(withoutTime(lines[0]!), {
    level: 'info',
    msg: 'connection complete',
    'src.addr': '10.1.0.5:40000',
    'src.workload': 'sleep-5d9c-x1',
    'src.namespace': 'default',
    'src.identity': 'spiffe://cluster.local/ns/default/sa/sleep',
    'dst.addr': '10.1.1.7:8080',
    'dst.hbone_addr': '10.1.1.7:8080',
    'dst.service': 'echo.shop.svc.cluster.local',
    'dst.workload': 'echo-7f-aa',
    'dst.namespace': 'shop',
    'dst.identity': 'spiffe://cluster.local/ns/shop/sa/echo',
    direction: 'outbound',
    via: 'hbone',
    bytes_sent: 120,
    bytes_recv: 2005,
    duration: '1234ms',
    response_flags: '-',
  });
  assert.equal(lines[0]!.time, '2026-01-01T12:00:01.234Z');
});

test('for reporter=destination the server\'s sends are istio_tcp_sent_bytes_total', () => {
  const { registry, tcp } = setup();
  const rec = newConnectionRecord({
    id: 'in1', reporter: 'destination', startMs: 0,
    source: { ip: '10.1.0.5', port: 40000, identity: 'spiffe://cluster.local/ns/default/sa/sleep' },
    destination: { ip: '10.1.1.7', port: 8080, workload: echo },
    service: echoSvc, via: 'hbone', securityPolicy: 'mutual_tls',
  });
  tcp.opened(rec);
  rec.bytesSent = 700; // server -> client
  rec.bytesReceived = 30; // client -> server
  tcp.closed(rec);
  assert.equal(value(registry, 'istio_tcp_sent_bytes_total', { reporter: 'destination' }), 700);
  assert.equal(value(registry, 'istio_tcp_received_bytes_total', { reporter: 'destination' }), 30);
  // the source is known only by its certificate: the principal is there, the rest unknown
  const [opened] = samples(registry, 'istio_tcp_connections_opened_total');
  assert.equal(opened!.labels.source_principal, 'spiffe://cluster.local/ns/default/sa/sleep');
  assert.equal(opened!.labels.source_workload, 'unknown');
  assert.equal(opened!.labels.source_workload_namespace, 'unknown');
});

test('a denied inbound connection: failed counter with DENY, one error line naming the policy and rule', async () => {
  const { clock, registry, lines, tcp } = setup();
  const rec = newConnectionRecord({
    id: 'in2', reporter: 'destination', startMs: clock.now(),
    source: { ip: '10.1.0.5', port: 40001, workload: sleep, identity: 'spiffe://cluster.local/ns/default/sa/sleep' },
    destination: { ip: '10.1.1.7', port: 8080, workload: echo },
    service: echoSvc, via: 'hbone', securityPolicy: 'mutual_tls',
  });
  tcp.opened(rec);
  await clock.advance(3);
  denyConnection(rec, { policy: 'shop/deny-sleep', rule: 0, message: 'denied by policy shop/deny-sleep rule 0' });
  tcp.closed(rec);

  // opened before the outcome was known: flags '-'; closed and failed carry DENY
  assert.equal(value(registry, 'istio_tcp_connections_opened_total', { response_flags: '-' }), 1);
  assert.equal(value(registry, 'istio_tcp_connections_closed_total', { response_flags: 'DENY' }), 1);
  assert.equal(value(registry, 'istio_tcp_connections_closed_total', { response_flags: '-' }), undefined);
  assert.equal(value(registry, 'istio_tcp_connections_failed_total', { response_flags: 'DENY', reporter: 'destination' }), 1);
  assert.equal(value(registry, 'istio_tcp_sockets_open'), 0);
  assert.equal(value(registry, 'istio_tcp_sent_bytes_total'), 0);

  assert.equal(lines.length, 1);
  assert.deepEqual(withoutTime(lines[0]!), {
    level: 'error',
    msg: 'connection complete',
    'src.addr': '10.1.0.5:40001',
    'src.workload': 'sleep-5d9c-x1',
    'src.namespace': 'default',
    'src.identity': 'spiffe://cluster.local/ns/default/sa/sleep',
    'dst.addr': '10.1.1.7:8080',
    'dst.service': 'echo.shop.svc.cluster.local',
    'dst.workload': 'echo-7f-aa',
    'dst.namespace': 'shop',
    'dst.identity': 'spiffe://cluster.local/ns/shop/sa/echo',
    direction: 'inbound',
    via: 'hbone',
    bytes_sent: 0,
    bytes_recv: 0,
    duration: '3ms',
    response_flags: 'DENY',
    error: 'denied by policy shop/deny-sleep rule 0',
    reason: 'denied',
    policy: 'shop/deny-sleep',
    rule: 0,
  });
});

test('a connect failure without mTLS: CONNECT flag, error code, no identities in the log', () => {
  const { registry, lines, tcp } = setup();
  const rec = newConnectionRecord({
    id: 'c3', reporter: 'source', startMs: 1000,
    source: { ip: 'fd00::5', port: 5000, workload: sleep },
    destination: { ip: 'fd00::9', port: 80 },
    via: 'passthrough',
  });
  rec.endMs = 1010;
  tcp.opened(rec);
  failConnection(rec, { code: 'ECONNREFUSED', message: 'connect ECONNREFUSED [fd00::9]:80' });
  tcp.closed(rec);

  assert.equal(value(registry, 'istio_tcp_connections_failed_total', { response_flags: 'CONNECT' }), 1);
  const [failed] = samples(registry, 'istio_tcp_connections_failed_total');
  assert.equal(failed!.labels.destination_service, 'unknown');
  assert.equal(failed!.labels.destination_workload, 'unknown');
  assert.equal(failed!.labels.connection_security_policy, 'unknown');
  assert.equal(failed!.labels.source_principal, 'spiffe://cluster.local/ns/default/sa/sleep');

  assert.deepEqual(withoutTime(lines[0]!), {
    level: 'error',
    msg: 'connection complete',
    'src.addr': '[fd00::5]:5000',
    'src.workload': 'sleep-5d9c-x1',
    'src.namespace': 'default',
    'dst.addr': '[fd00::9]:80',
    direction: 'outbound',
    via: 'passthrough',
    bytes_sent: 0,
    bytes_recv: 0,
    duration: '10ms',
    response_flags: 'CONNECT',
    error: 'connect ECONNREFUSED [fd00::9]:80',
    reason: 'connect',
    error_code: 'ECONNREFUSED',
  });
});

test('closing twice logs and counts once; closing an unopened record counts it as opened too', () => {
  const { clock, registry, lines, tcp } = setup();
  const a = outbound(clock);
  tcp.opened(a);
  tcp.opened(a); // idempotent
  a.bytesSent = 10;
  tcp.closed(a);
  tcp.closed(a);
  tcp.opened(a); // reopening a closed record is ignored
  assert.equal(lines.length, 1);
  assert.equal(value(registry, 'istio_tcp_connections_opened_total'), 1);
  assert.equal(value(registry, 'istio_tcp_connections_closed_total'), 1);
  assert.equal(value(registry, 'istio_tcp_received_bytes_total'), 10);

  const b = outbound(clock);
  b.id = 'c9';
  b.bytesSent = 5;
  tcp.closed(b);
  assert.equal(lines.length, 2);
  assert.equal(value(registry, 'istio_tcp_connections_opened_total'), 2);
  assert.equal(value(registry, 'istio_tcp_connections_closed_total'), 2);
  assert.equal(value(registry, 'istio_tcp_sockets_open'), 0);
  assert.equal(value(registry, 'istio_tcp_received_bytes_total'), 15);
});

test('inbound and outbound telemetry can share one registry', () => {
  const { clock, registry, tcp } = setup();
  const { logger } = memoryLogger();
  const other = new TcpTelemetry({ registry, logger, clock });
  assert.equal(other.metrics.opened, tcp.metrics.opened);
  const a = outbound(clock);
  const b = outbound(clock);
  tcp.opened(a);
  other.opened(b);
  a.bytesSent = 1;
  b.bytesSent = 2;
  assert.equal(value(registry, 'istio_tcp_connections_opened_total'), 2);
  assert.equal(value(registry, 'istio_tcp_received_bytes_total'), 3);
  assert.equal(value(registry, 'istio_tcp_sockets_open'), 2);
});

test('tcpAccessLogFields is pure and leaves out what is not known', () => {
  const rec = newConnectionRecord({ id: 'x', reporter: 'source', startMs: 0, source: { ip: '10.0.0.1', port: 1 }, destination: { ip: '10.0.0.2', port: 2 }, via: 'plaintext' });
  assert.deepEqual(tcpAccessLogFields(rec), {
    level: 'info',
    msg: 'connection complete',
    'src.addr': '10.0.0.1:1',
    'dst.addr': '10.0.0.2:2',
    direction: 'outbound',
    via: 'plaintext',
    bytes_sent: 0,
    bytes_recv: 0,
    response_flags: '-',
  });
});
