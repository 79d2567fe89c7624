// The DNS proxy's message parsing: table tests, and property tests that hostile bytes never
// crash or hang the parser.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import dnsPacket from 'dns-packet';
import { decodeAnswer, encodeAnswer, encodeQuery, isAnswerTo, MAX_QUERY_BYTES, parseQuery, withId } from '../../src/dns/message.js';

test('parses a query: lower-cased name without the trailing dot, type, id, EDNS payload', () => {
  const p = parseQuery(encodeQuery(4242, 'API.Partner.Example.', 'AAAA', { udpPayload: 1232 }));
  assert.ok(p.ok);
  assert.equal(p.query.id, 4242);
  assert.equal(p.query.name, 'api.partner.example');
  assert.equal(p.query.type, 'AAAA');
  assert.equal(p.query.udpPayload, 1232);
  assert.equal(p.query.recursionDesired, true);
});

const refusals: { name: string; bytes: () => Buffer; answer?: string; reason: RegExp }[] = [
  { name: 'shorter than a header', bytes: () => Buffer.from([1, 2, 3]), reason: /shorter than a DNS header/ },
  { name: 'a response', bytes: () => dnsPacket.encode({ type: 'response', id: 7, questions: [{ type: 'A', name: 'x' }] }), reason: /a response/ },
  { name: 'two questions', bytes: () => dnsPacket.encode({ type: 'query', id: 7, questions: [{ type: 'A', name: 'x' }, { type: 'A', name: 'y' }] }), answer: 'FORMERR', reason: /2 questions/ },
  { name: 'opcode NOTIFY', bytes: () => { const b = encodeQuery(7, 'x', 'A'); b[2] = (b[2]! & 0x87) | (4 << 3); return b; }, answer: 'NOTIMP', reason: /opcode 4/ },
  { name: 'class CH', bytes: () => dnsPacket.encode({ type: 'query', id: 7, questions: [{ type: 'TXT', name: 'version.bind', class: 'CH' }] }), answer: 'REFUSED', reason: /class CH/ },
  { name: 'truncated question', bytes: () => encodeQuery(7, 'example.com', 'A').subarray(0, 20), answer: 'FORMERR', reason: /malformed/ },
  { name: 'a forward compression pointer', bytes: () => { const b = Buffer.alloc(14); b.writeUInt16BE(7, 0); b.writeUInt16BE(1, 4); b[12] = 0xc0; b[13] = 0x20; return b; }, answer: 'FORMERR', reason: /malformed/ },
  { name: 'a query claiming answer records', bytes: () => { const b = encodeQuery(7, 'x.example', 'A'); b.writeUInt16BE(0xffff, 6); b.writeUInt16BE(0xffff, 8); return b; }, answer: 'FORMERR', reason: /answer or authority records/ },
  { name: 'oversized', bytes: () => Buffer.alloc(MAX_QUERY_BYTES + 1, 1), answer: 'FORMERR', reason: /over the 4096-byte limit/ },
];

for (const c of refusals) {
  test(`refuses ${c.name}`, () => {
    const p = parseQuery(c.bytes());
    assert.equal(p.ok, false);
    if (p.ok) return;
    assert.match(p.reason, c.reason);
    assert.equal(p.answer?.rcode, c.answer);
  });
}

test('answers echo the question, carry AA, and truncate (TC, no records) past the client payload size', () => {
  const p = parseQuery(encodeQuery(9, 'Echo.Shop', 'A'));
  assert.ok(p.ok);
  const small = decodeAnswer(encodeAnswer(p.query, [{ name: 'Echo.Shop', type: 'A', ttl: 30, data: '10.96.0.10' }], 'NOERROR', { authoritative: true, maxBytes: 512 }));
  assert.deepEqual(small, { id: 9, rcode: 'NOERROR', authoritative: true, truncated: false, answers: [{ name: 'Echo.Shop', type: 'A', ttl: 30, data: '10.96.0.10' }] });
  const many = Array.from({ length: 60 }, (_, i) => ({ name: 'Echo.Shop', type: 'A' as const, ttl: 30, data: `10.96.1.${i}` }));
  const big = decodeAnswer(encodeAnswer(p.query, many, 'NOERROR', { authoritative: true, maxBytes: 512 }));
  assert.equal(big.truncated, true);
  assert.deepEqual(big.answers, []);
});

test('isAnswerTo takes only a response with the same id and question', () => {
  const q = encodeQuery(1, 'a.example', 'A');
  const p = parseQuery(q);
  assert.ok(p.ok);
  const question = (name: string, type: string): Buffer => {
    const x = parseQuery(encodeQuery(1, name, type));
    assert.ok(x.ok);
    return x.query.question;
  };
  const answer = encodeAnswer(p.query, [], 'NXDOMAIN', { authoritative: true, maxBytes: 512 });
  assert.equal(isAnswerTo(answer, { id: 1, question: question('a.example', 'A') }), true);
  assert.equal(isAnswerTo(answer, { id: 1, question: question('A.Example', 'A') }), true, 'ASCII case aside');
  assert.equal(isAnswerTo(withId(answer, 2), { id: 1, question: question('a.example', 'A') }), false);
  assert.equal(isAnswerTo(answer, { id: 1, question: question('b.example', 'A') }), false);
  assert.equal(isAnswerTo(answer, { id: 1, question: question('a.example', 'AAAA') }), false);
  assert.equal(isAnswerTo(q, { id: 1, question: question('a.example', 'A') }), false, 'a query is not an answer');
});

const budget = (f: () => void) => {
  const t = process.hrtime.bigint();
  f();
  return Number(process.hrtime.bigint() - t) / 1e6;
};

test('property: any bytes up to 5000 -> a result, never a throw, in bounded time', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 5000 }), (bytes) => {
    const ms = budget(() => {
      const p = parseQuery(Buffer.from(bytes));
      assert.equal(typeof p.ok, 'boolean');
      isAnswerTo(Buffer.from(bytes), { id: 0, question: Buffer.from([1, 0x78, 0, 0, 1, 0, 1]) });
    });
    assert.ok(ms < 50, `took ${ms} ms`);
  }), { numRuns: 3000 });
});

test('property: mutated valid queries (bit flips, cuts, pointer bytes) never throw or hang', () => {
  const name = fc.array(fc.stringMatching(/^[a-z0-9-]{1,20}$/), { minLength: 1, maxLength: 6 }).map((l) => l.join('.'));
  fc.assert(fc.property(name, fc.constantFrom('A', 'AAAA', 'MX', 'TXT', 'SRV'), fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 8 }), fc.nat(), (n, type, flips, cut) => {
    const b = Buffer.from(encodeQuery(7, n, type, { udpPayload: 1232 }));
    for (const [pos, v] of flips) b[pos % b.length] = v;
    const m = b.subarray(0, Math.max(0, b.length - (cut % 8)));
    const ms = budget(() => {
      const p = parseQuery(m);
      if (p.ok) {
        // Whatever parsed can be answered.
        encodeAnswer(p.query, [], 'NOERROR', { authoritative: true, maxBytes: 512 });
      }
    });
    assert.ok(ms < 50, `took ${ms} ms`);
  }), { numRuns: 3000 });
});

test('property: well-formed queries round-trip their name and type', () => {
  const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?$/);
  fc.assert(fc.property(fc.array(label, { minLength: 1, maxLength: 5 }), fc.constantFrom('A', 'AAAA', 'CNAME', 'MX'), fc.integer({ min: 0, max: 65535 }), (labels, type, id) => {
    const p = parseQuery(encodeQuery(id, labels.join('.'), type));
    assert.ok(p.ok);
    assert.equal(p.query.name, labels.join('.'));
    assert.equal(p.query.type, type);
    assert.equal(p.query.id, id);
  }));
});
