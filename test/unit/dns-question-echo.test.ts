// The DNS proxy echoes the question exactly as received, and answers a mesh name only for a
// query whose labels are that name's labels. A label may hold any byte (a "." among them):
// the wire labels `echo.shop` `svc` `cluster` `local` are not the name echo.shop.svc.cluster.local,
// though a decoder that joins labels with "." gives both the same text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { systemClock } from '../../src/core/clock.js';
import { Logger } from '../../src/core/logger.js';
import { DnsForwarder } from '../../src/dns/forwarder.js';
import { decodeAnswer, encodeAnswer, isAnswerTo, parseQuery } from '../../src/dns/message.js';
import { DnsMetrics } from '../../src/dns/metrics.js';
import { decideDns, DnsRegistry } from '../../src/dns/resolve.js';
import { DnsServer } from '../../src/dns/server.js';
import { MetricsRegistry } from '../../src/telemetry/metrics.js';
import { fuzzAsync } from '../helpers/fuzz.js';

/** A query in wire format from raw labels: one question, RD set, type A (1) or AAAA (28). */
function wireQuery(id: number, labels: readonly Buffer[], qtype = 1, edns = false): Buffer {
  const name = Buffer.concat([...labels.flatMap((l) => [Buffer.from([l.length]), l]), Buffer.from([0])]);
  const h = Buffer.alloc(12);
  h.writeUInt16BE(id, 0);
  h.writeUInt16BE(0x0100, 2);
  h.writeUInt16BE(1, 4);
  if (edns) h.writeUInt16BE(1, 10);
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(qtype, 0);
  tail.writeUInt16BE(1, 2);
  // OPT: root name, type 41, payload 1232, no flags, no data.
  const opt = edns ? Buffer.from([0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]) : Buffer.alloc(0);
  return Buffer.concat([h, name, tail, opt]);
}
const L = (...xs: string[]): Buffer[] => xs.map((x) => Buffer.from(x, 'latin1'));
/** The question section (name, type, class) of a message with one question and no compression. */
function questionOf(msg: Buffer): Buffer {
  let at = 12;
  while (msg[at] !== 0) at += msg[at]! + 1;
  return msg.subarray(12, at + 5);
}

const logger = new Logger({ component: 'test', level: 'error' });
function server(): DnsServer {
  return new DnsServer({
    source: () => ({ name: 'shop/client', namespace: 'shop' }),
    registry: () => new DnsRegistry([
      { hostname: 'echo.shop.svc.cluster.local', namespace: 'shop', addresses: ['10.96.0.10'] },
      { hostname: '*.cdn.example', namespace: 'egress', addresses: ['240.240.0.2'] },
    ]),
    resolve: { clusterDomain: 'cluster.local' },
    // No upstream: what is not answered from the registry gets SERVFAIL at once (made here, with the question).
    forwarder: new DnsForwarder({ upstreams: [], clock: systemClock, transport: { udp: () => Promise.reject(new Error('none')), tcp: () => { throw new Error('none'); } } }),
    metrics: new DnsMetrics(new MetricsRegistry()), logger, clock: systemClock,
  });
}

const cases: { name: string; labels: Buffer[]; answered: boolean }[] = [
  { name: 'the mesh name itself (control)', labels: L('echo', 'shop', 'svc', 'cluster', 'local'), answered: true },
  { name: 'the mesh name in mixed case (control)', labels: L('Echo', 'SHOP', 'svc', 'cluster', 'local'), answered: true },
  { name: 'a dot inside the first label', labels: L('echo.shop', 'svc', 'cluster', 'local'), answered: false },
  { name: 'a dot inside a middle label', labels: L('echo', 'shop.svc', 'cluster.local'), answered: false },
  { name: 'a short name with a dot inside (search-domain shape)', labels: L('echo.shop'), answered: false },
  { name: 'a label ending with a dot', labels: L('echo.', 'shop', 'svc', 'cluster', 'local'), answered: false },
  { name: 'a label starting with a dot', labels: L('.echo', 'shop', 'svc', 'cluster', 'local'), answered: false },
  { name: 'a wildcard-covered name whose middle label holds a dot', labels: L('img', 'x.cdn', 'example'), answered: false },
  { name: 'a backslash escape spelled out in the bytes', labels: L('echo\\.shop', 'svc', 'cluster', 'local'), answered: false },
  { name: 'bytes that are not UTF-8', labels: [Buffer.from([0xff, 0xfe]), ...L('shop', 'svc', 'cluster', 'local')], answered: false },
  { name: 'a 63-byte label of 0xff (would re-encode as 189 bytes)', labels: [Buffer.alloc(63, 0xff), ...L('example')], answered: false },
  { name: 'a NUL and a space inside labels', labels: [Buffer.from('a\0b'), Buffer.from('c d'), ...L('example')], answered: false },
];

for (const c of cases) {
  test(`question echo: ${c.name} — the answer's question is the query's, byte for byte`, async () => {
    for (const edns of [false, true]) {
      const q = wireQuery(0x1234, c.labels, 1, edns);
      const a = await server().handle(q, 'udp');
      assert.ok(a, 'answered');
      assert.equal(a.readUInt16BE(0), 0x1234);
      assert.equal(a.readUInt16BE(4), 1, 'one question');
      assert.deepEqual(questionOf(a), questionOf(q), 'the question goes back exactly as asked');
      const d = decodeAnswer(a);
      if (c.answered) {
        assert.equal(d.rcode, 'NOERROR');
        assert.deepEqual(d.answers.map((r) => r.data), ['10.96.0.10']);
      } else {
        assert.deepEqual(d.answers, [], 'no mesh address for labels that differ from the mesh name');
        assert.equal(d.rcode, 'SERVFAIL', 'left to the upstream (none here)');
      }
    }
  });
}

test('question echo: the text of a name with a dot inside a label escapes it, and never equals a plain name', () => {
  const p = parseQuery(wireQuery(1, L('Echo.Shop', 'svc')));
  assert.ok(p.ok);
  assert.equal(p.query.asked, 'Echo\\.Shop.svc');
  assert.equal(p.query.name, 'echo\\.shop.svc');
  const bytes = parseQuery(wireQuery(1, [Buffer.from([0x41, 0x00, 0xff, 0x5c])]));
  assert.ok(bytes.ok);
  assert.equal(bytes.query.asked, 'A\\000\\255\\\\');
  const plain = parseQuery(wireQuery(1, L('echo', 'shop', 'svc')));
  assert.ok(plain.ok);
  assert.equal(plain.query.name, 'echo.shop.svc');
  assert.equal(decideDns(new DnsRegistry([{ hostname: 'echo.shop.svc', namespace: 'shop', addresses: ['10.0.0.1'] }]), { namespace: 'shop' }, p.query, { clusterDomain: 'cluster.local' }).kind, 'forward');
});

test('question echo: a compression pointer in the question name is FORMERR (it can only point into the header)', () => {
  const q = wireQuery(7, L('x'));
  // Replace the terminating 0 of the name by a pointer to offset 2 (the flags).
  const b = Buffer.concat([q.subarray(0, 14), Buffer.from([0xc0, 0x02]), q.subarray(15)]);
  const p = parseQuery(b);
  assert.equal(p.ok, false);
  if (!p.ok) assert.equal(p.answer?.rcode, 'FORMERR');
});

test('question echo: an upstream answer is taken only if its question has the same labels (case aside)', () => {
  const asked = parseQuery(wireQuery(5, L('echo.shop', 'svc')));
  const other = parseQuery(wireQuery(5, L('echo', 'shop', 'svc')));
  const upper = parseQuery(wireQuery(5, L('ECHO.shop', 'SVC')));
  assert.ok(asked.ok && other.ok && upper.ok);
  const a = encodeAnswer(other.query, [], 'NXDOMAIN', { authoritative: false, maxBytes: 512 });
  assert.equal(isAnswerTo(a, { id: 5, question: asked.query.question }), false, 'labels echo/shop/svc are not echo.shop/svc');
  assert.equal(isAnswerTo(a, { id: 5, question: other.query.question }), true);
  const b = encodeAnswer(upper.query, [], 'NXDOMAIN', { authoritative: false, maxBytes: 512 });
  assert.equal(isAnswerTo(b, { id: 5, question: asked.query.question }), true, 'case differs only');
});

test('property: any labels of any bytes — the answer made here echoes the question byte for byte, and names a mesh host only for its own labels', async () => {
  const label = fc.oneof(
    fc.uint8Array({ minLength: 1, maxLength: 63 }).map((a) => Buffer.from(a)),
    fc.constantFrom('echo', 'shop', 'svc', 'cluster', 'local', 'echo.shop', 'svc.cluster', '.', 'img', 'cdn', 'example', 'x.cdn').map((s) => Buffer.from(s)),
  );
  const labels = fc.array(label, { minLength: 0, maxLength: 6 }).filter((ls) => ls.reduce((n, l) => n + l.length + 1, 0) <= 254);
  const s = server();
  await fuzzAsync('dns: question echo over any labels', fc.asyncProperty(labels, fc.nat(0xffff), fc.boolean(), fc.constantFrom(1, 28), async (ls, id, edns, qtype) => {
    const q = wireQuery(id, ls, qtype, edns);
    const a = await s.handle(q, 'udp');
    assert.ok(a);
    assert.deepEqual(questionOf(a), questionOf(q));
    const d = decodeAnswer(a);
    const text = ls.map((l) => l.toString('latin1').toLowerCase());
    // Answered from the registry only when every label is plain (no ".", printable ASCII):
    // then the name's text stands for exactly its labels.
    if (d.answers.length > 0) assert.ok(text.every((l) => /^[!-[\]-~]+$/.test(l) && !l.includes('.')), `answered ${JSON.stringify(text)}`);
    if (text.join('/') === 'echo/shop/svc/cluster/local' && qtype === 1) assert.deepEqual(d.answers.map((r) => r.data), ['10.96.0.10']);
  }), { seed: 1460, numRuns: 600 });
});
