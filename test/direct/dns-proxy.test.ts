// The DNS proxy end to end on loopback: real UDP and TCP sockets, a real upstream (ZoneServer),
// answers from the registry, forwarding, limits, and Istio's metric names.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { systemClock } from '../../src/core/clock.js';
import { Logger } from '../../src/core/logger.js';
import { DnsForwarder } from '../../src/dns/forwarder.js';
import { decodeAnswer, encodeQuery } from '../../src/dns/message.js';
import { DnsMetrics } from '../../src/dns/metrics.js';
import { DnsRegistry } from '../../src/dns/resolve.js';
import { DnsServer } from '../../src/dns/server.js';
import { ZoneServer } from '../../src/dns/zone-server.js';
import { MetricsRegistry } from '../../src/telemetry/metrics.js';

const logger = new Logger({ component: 'test', level: 'error' });
const cleanup: (() => void)[] = [];
after(() => { for (const c of cleanup) c(); });

async function udpSocket(): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  cleanup.push(() => { try { s.close(); } catch { /* closed */ } });
  return s;
}

async function setup(o: { upstreamPort: number; timeoutMs?: number; maxOutstanding?: number }) {
  const registry = new MetricsRegistry();
  const forwarder = new DnsForwarder({
    upstreams: [{ ip: '127.0.0.1', port: o.upstreamPort }], clock: systemClock, timeoutMs: o.timeoutMs ?? 2000, maxOutstanding: o.maxOutstanding,
    transport: { udp: udpSocket, tcp: (dst) => net.connect(dst.port, dst.ip) },
  });
  const server = new DnsServer({
    source: () => ({ name: 'shop/client', namespace: 'shop', canonicalName: 'client', canonicalRevision: 'v1' }),
    registry: () => new DnsRegistry([
      { hostname: 'echo.shop.svc.cluster.local', namespace: 'shop', addresses: ['10.96.0.10'] },
      { hostname: 'api.partner.example', namespace: 'egress', addresses: ['240.240.0.1'] },
    ]),
    resolve: { clusterDomain: 'cluster.local' }, forwarder, metrics: new DnsMetrics(registry), logger, clock: systemClock,
  });
  const udp = await udpSocket();
  server.attachUdp(udp);
  const tcp = net.createServer();
  await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', () => r()));
  server.attachTcp(tcp);
  cleanup.push(() => { server.close(); tcp.close(); });
  return { udpPort: udp.address().port, tcpPort: (tcp.address() as net.AddressInfo).port, registry };
}

async function askUdp(port: number, msg: Buffer, timeoutMs = 3000): Promise<Buffer> {
  const c = await udpSocket();
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no answer')), timeoutMs);
    c.once('message', (m) => { clearTimeout(t); resolve(m); });
    c.send(msg, port, '127.0.0.1');
  });
}

async function askTcp(port: number, msgs: Buffer[], timeoutMs = 5000): Promise<Buffer[]> {
  const s = net.connect(port, '127.0.0.1');
  cleanup.push(() => s.destroy());
  // Never wait for ever: a missing answer ends the stream (and the assertions say what is missing).
  const deadline = setTimeout(() => s.destroy(), timeoutMs);
  s.once('close', () => clearTimeout(deadline));
  const framed = Buffer.concat(msgs.map((m) => { const h = Buffer.alloc(2); h.writeUInt16BE(m.length); return Buffer.concat([h, m]); }));
  s.write(framed);
  let buf = Buffer.alloc(0);
  const out: Buffer[] = [];
  for await (const c of s) {
    buf = Buffer.concat([buf, c as Buffer]);
    while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
      out.push(buf.subarray(2, 2 + buf.readUInt16BE(0)));
      buf = buf.subarray(2 + buf.readUInt16BE(0));
    }
    if (out.length === msgs.length) { s.destroy(); break; }
  }
  return out;
}

test('answers registry names itself, forwards the rest to the upstream, over UDP and TCP', async () => {
  const zone = new ZoneServer({ records: { 'www.example.org': ['192.0.2.80'] } });
  const { port } = await zone.listen('127.0.0.1', 0);
  cleanup.push(() => zone.close());
  const p = await setup({ upstreamPort: port });
  const svc = decodeAnswer(await askUdp(p.udpPort, encodeQuery(1, 'echo', 'A')));
  assert.deepEqual(svc.answers.map((a) => a.data), ['10.96.0.10']);
  assert.equal(svc.authoritative, true);
  const se = decodeAnswer(await askUdp(p.udpPort, encodeQuery(2, 'api.partner.example.shop.svc.cluster.local', 'A')));
  assert.deepEqual(se.answers.map((a) => `${a.type} ${a.data}`), ['CNAME api.partner.example', 'A 240.240.0.1']);
  const v6 = decodeAnswer(await askUdp(p.udpPort, encodeQuery(3, 'api.partner.example', 'AAAA')));
  assert.equal(v6.rcode, 'NOERROR');
  assert.deepEqual(v6.answers, []);
  const fwd = decodeAnswer(await askUdp(p.udpPort, encodeQuery(4, 'www.example.org', 'A')));
  assert.equal(fwd.id, 4, 'the client id is restored');
  assert.deepEqual(fwd.answers.map((a) => a.data), ['192.0.2.80']);
  const nx = decodeAnswer(await askUdp(p.udpPort, encodeQuery(5, 'nope.example.org', 'A')));
  assert.equal(nx.rcode, 'NXDOMAIN');
  const [t1, t2] = await askTcp(p.tcpPort, [encodeQuery(6, 'echo.shop', 'A'), encodeQuery(7, 'www.example.org', 'A')]);
  assert.deepEqual(decodeAnswer(t1!).answers.map((a) => a.data), ['10.96.0.10']);
  assert.deepEqual(decodeAnswer(t2!).answers.map((a) => a.data), ['192.0.2.80']);
  const text = p.registry.render();
  assert.match(text, /istio_dns_requests_total\{request_query_type="a",request_protocol="udp",source_canonical_service="client",source_canonical_revision="v1"\} 4/);
  assert.match(text, /istio_dns_upstream_requests_total\{request_query_type="a",request_protocol="udp",[^}]*\} 2/);
  assert.match(text, /istio_dns_upstream_requests_total\{request_query_type="a",request_protocol="tcp",[^}]*\} 1/);
  assert.match(text, /istio_dns_upstream_request_duration_seconds_count\{[^}]*\} 2/);
});

test('limits: a silent upstream times out (SERVFAIL), too many outstanding queries fail fast, spoofed answers are ignored', async () => {
  const silent = await udpSocket();
  const p = await setup({ upstreamPort: silent.address().port, timeoutMs: 300, maxOutstanding: 2 });
  let seen = 0;
  silent.on('message', (m, r) => {
    seen++;
    // A spoofed answer: right port, wrong id. The proxy must keep waiting, then SERVFAIL.
    const fake = Buffer.from(m);
    fake.writeUInt16BE((m.readUInt16BE(0) + 1) & 0xffff, 0);
    fake[2] = fake[2]! | 0x80;
    silent.send(fake, r.port, r.address);
  });
  const started = Date.now();
  const answers = await Promise.all([1, 2, 3].map((i) => askUdp(p.udpPort, encodeQuery(i, `x${i}.example.org`, 'A'))));
  const codes = answers.map((a) => decodeAnswer(a).rcode);
  assert.deepEqual(codes, ['SERVFAIL', 'SERVFAIL', 'SERVFAIL']);
  assert.equal(seen, 2, 'the third query was refused before reaching the upstream');
  assert.ok(Date.now() - started < 2000);
  const text = p.registry.render();
  assert.match(text, /istio_dns_upstream_failures_total\{[^}]*\} 3/);
});

test('malformed and oversized input: FORMERR when there is an id, dropped otherwise, counted; the server keeps serving', async () => {
  const zone = new ZoneServer({ records: {} });
  const { port } = await zone.listen('127.0.0.1', 0);
  cleanup.push(() => zone.close());
  const p = await setup({ upstreamPort: port });
  const bad = Buffer.from(encodeQuery(77, 'example.com', 'A').subarray(0, 20));
  assert.equal(decodeAnswer(await askUdp(p.udpPort, bad)).rcode, 'FORMERR');
  await assert.rejects(askUdp(p.udpPort, Buffer.from([1, 2, 3]), 300), /no answer/);
  await assert.rejects(askUdp(p.udpPort, Buffer.alloc(5000, 7), 300), /no answer/);
  // A TCP client announcing a message over the limit is cut.
  const s = net.connect(p.tcpPort, '127.0.0.1');
  s.write(Buffer.from([0xff, 0xff, 1, 2, 3]));
  const cut = setTimeout(() => s.destroy(new Error('the server did not cut the connection')), 5000);
  await new Promise<void>((r) => { s.on('close', () => r()); s.on('error', () => {}); });
  clearTimeout(cut);
  assert.deepEqual(decodeAnswer(await askUdp(p.udpPort, encodeQuery(8, 'echo', 'A'))).answers.map((a) => a.data), ['10.96.0.10']);
  const text = p.registry.render();
  assert.match(text, /ambit_dns_refused_total\{reason="bad_query_formerr",request_protocol="udp"\} 1/);
  assert.match(text, /ambit_dns_refused_total\{reason="dropped",request_protocol="udp"\} 1/);
  assert.match(text, /ambit_dns_refused_total\{reason="oversized",request_protocol="udp"\} 1/);
  assert.match(text, /ambit_dns_refused_total\{reason="oversized",request_protocol="tcp"\} 1/);
});

test('a name with a dot inside a label goes upstream as asked; an upstream answer about other labels is not taken', async () => {
  // The upstream answers every query about the labels www/example/org (whatever was asked),
  // and queries it does not know with their own question (NXDOMAIN).
  const upstream = await udpSocket();
  const asked: Buffer[] = [];
  const zoneAnswer = (id: number, labels: string[]): Buffer => {
    const name = Buffer.concat([...labels.flatMap((l) => [Buffer.from([l.length]), Buffer.from(l)]), Buffer.from([0, 0, 1, 0, 1])]);
    const h = Buffer.alloc(12);
    h.writeUInt16BE(id, 0);
    h.writeUInt16BE(0x8180, 2);
    h.writeUInt16BE(1, 4);
    h.writeUInt16BE(1, 6);
    // One A record, its name a pointer to the question (offset 12), 192.0.2.80.
    return Buffer.concat([h, name, Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 192, 0, 2, 80])]);
  };
  upstream.on('message', (m, r) => {
    asked.push(Buffer.from(m));
    upstream.send(zoneAnswer(m.readUInt16BE(0), ['www', 'example', 'org']), r.port, r.address);
  });
  const p = await setup({ upstreamPort: upstream.address().port, timeoutMs: 400 });
  const wire = (id: number, labels: string[]): Buffer => {
    const h = Buffer.alloc(12);
    h.writeUInt16BE(id, 0);
    h.writeUInt16BE(0x0100, 2);
    h.writeUInt16BE(1, 4);
    return Buffer.concat([h, ...labels.flatMap((l) => [Buffer.from([l.length]), Buffer.from(l)]), Buffer.from([0, 0, 1, 0, 1])]);
  };
  const plain = decodeAnswer(await askUdp(p.udpPort, wire(1, ['www', 'example', 'org'])));
  assert.deepEqual(plain.answers.map((a) => a.data), ['192.0.2.80'], 'control: the same labels are answered');
  const q = wire(2, ['www.example', 'org']);
  const a = await askUdp(p.udpPort, q);
  assert.deepEqual(asked.at(-1)!.subarray(12), q.subarray(12), 'forwarded with its labels as asked');
  const d = decodeAnswer(a);
  assert.equal(d.rcode, 'SERVFAIL', 'the answer about www/example/org is not an answer to www.example/org');
  assert.deepEqual(d.answers, []);
  assert.deepEqual(a.subarray(12, q.length), q.subarray(12), 'the question echoed byte for byte');
  // And the mesh name's text with a dot inside a label is not the mesh name.
  const mesh = decodeAnswer(await askUdp(p.udpPort, wire(3, ['echo.shop', 'svc', 'cluster', 'local'])));
  assert.deepEqual(mesh.answers, []);
});
