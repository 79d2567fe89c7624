// Property tests of the DNS proxy's message layer (src/dns/message.ts): queries from pods and
// answers from the upstream resolver are untrusted bytes. Whatever the bytes: parseQuery never
// throws and is quick; a refusal says whether to answer (with the query's id) or drop; an
// accepted query can always be answered, within the client's payload size (TC when over), and
// with its question echoed; the checks on upstream answers never throw.
// `npm run fuzz` runs the same properties with random seeds for longer (test/helpers/fuzz.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import dnsPacket from 'dns-packet';
import { decodeAnswer, encodeAnswer, isAnswerTo, MAX_QUERY_BYTES, parseQuery, plausibleCounts, type DnsRecord } from '../../src/dns/message.js';
import { fuzz, quick } from '../helpers/fuzz.js';

const SLOW_MS = 250;

/** A host name as pods ask for them: letters, digits, hyphens and underscores, any case. */
const ldhLabel = fc.stringMatching(/^[A-Za-z0-9_]([A-Za-z0-9_-]{0,20}[A-Za-z0-9_])?$/);
const ldhName = fc.array(ldhLabel, { minLength: 1, maxLength: 6 }).map((l) => l.join('.'));
const qtype = fc.constantFrom('A', 'AAAA', 'CNAME', 'TXT', 'SRV', 'PTR', 'MX', 'ANY', 'HTTPS', 'UNKNOWN_999');

function query(id: number, name: string, type: string, edns: number | null, rd: boolean): Buffer {
  return dnsPacket.encode({
    type: 'query', id, flags: rd ? dnsPacket.RECURSION_DESIRED : 0,
    questions: [{ name, type: type as dnsPacket.RecordType, class: 'IN' }],
    additionals: edns === null ? [] : [{ type: 'OPT', name: '.', udpPayloadSize: edns } as dnsPacket.Answer],
  });
}
const wellFormed = fc.tuple(fc.nat(0xffff), ldhName, qtype, fc.option(fc.integer({ min: 0, max: 65535 })), fc.boolean()).map(([id, n, t, e, rd]) => query(id, n, t, e, rd));

/** Queries with a few bytes changed, cut or appended; headers with any counts; raw bytes. */
const anyMessage = fc.oneof(
  fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
  fc.tuple(wellFormed, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.uint8Array({ maxLength: 30 }), fc.nat()).map(([q, flips, tail, cut]) => {
    const b = Buffer.from(q);
    for (const [at, v] of flips) b[at % b.length] = v;
    const whole = Buffer.concat([b, Buffer.from(tail)]);
    return cut % 4 === 0 ? whole.subarray(0, cut % whole.length) : whole;
  }),
  fc.tuple(fc.nat(0xffff), fc.nat(0xffff), fc.array(fc.nat(0xffff), { minLength: 4, maxLength: 4 }), fc.uint8Array({ maxLength: 80 })).map(([id, flags, counts, rest]) => {
    const h = Buffer.alloc(12);
    h.writeUInt16BE(id, 0);
    h.writeUInt16BE(flags, 2);
    counts.forEach((c, i) => h.writeUInt16BE(c, 4 + 2 * i));
    return Buffer.concat([h, Buffer.from(rest)]);
  }),
  fc.integer({ min: MAX_QUERY_BYTES - 2, max: MAX_QUERY_BYTES + 2 }).map((n) => Buffer.alloc(n, 0x41)),
);

test('property: any bytes from a pod get a parse or a refusal (answer with the id, or drop) — never a throw, never slow', () => {
  fuzz('dns: any query bytes', fc.property(anyMessage, (buf) => {
    const p = quick(() => parseQuery(buf), SLOW_MS, 'parsing a query');
    if (p.ok) {
      assert.equal(p.query.id, buf.readUInt16BE(0));
      assert.ok(p.query.udpPayload >= 512 && p.query.udpPayload <= 4096);
      assert.equal(p.query.raw, buf);
      return;
    }
    assert.ok(p.reason.length > 0);
    if (p.answer) assert.equal(p.answer.id, buf.readUInt16BE(0));
    // Never answer a response (the proxy would be a reflector), nor what has no id.
    if (buf.length >= 3 && buf.length <= MAX_QUERY_BYTES && buf[2]! & 0x80) assert.equal(p.answer, undefined);
    if (buf.length < 12 && buf.length <= MAX_QUERY_BYTES) assert.equal(p.answer, undefined);
  }), { seed: 1450, numRuns: 4000 });
});

const record: fc.Arbitrary<DnsRecord> = fc.tuple(ldhName, fc.oneof(
  fc.ipV4().map((data) => ({ type: 'A' as const, data })),
  fc.ipV6().map((data) => ({ type: 'AAAA' as const, data })),
  ldhName.map((data) => ({ type: 'CNAME' as const, data })),
)).map(([name, r]): DnsRecord => ({ name, ttl: 30, ...r }));

test('property: an accepted query can be answered: never a throw, within the payload size (TC when over), its id and question echoed', () => {
  const rcode = fc.constantFrom('NOERROR', 'SERVFAIL', 'NXDOMAIN') as fc.Arbitrary<'NOERROR' | 'SERVFAIL' | 'NXDOMAIN'>;
  fuzz('dns: answers', fc.property(fc.oneof(wellFormed, anyMessage), fc.array(record, { maxLength: 200 }), rcode, (buf, records, rc) => {
    const p = parseQuery(buf);
    if (!p.ok) return;
    const q = p.query;
    const a = quick(() => encodeAnswer(q, records, rc, { authoritative: true, maxBytes: q.udpPayload }), SLOW_MS, 'encoding an answer');
    assert.ok(a.length <= q.udpPayload, `${a.length} bytes over ${q.udpPayload}`);
    const d = decodeAnswer(a);
    assert.equal(d.id, q.id);
    if (d.truncated) assert.equal(d.answers.length, 0);
    else assert.equal(d.answers.length, records.length);
    // The question goes back byte for byte as asked, whatever its labels hold (a "." inside a
    // label, bytes that are not UTF-8).
    assert.deepEqual(a.subarray(12, 12 + q.question.length), q.question, `${JSON.stringify(q.asked)} ${q.type}`);
    assert.ok(isAnswerTo(a, { id: q.id, question: q.question }), `${JSON.stringify(q.asked)} ${q.type}`);
  }), { seed: 1451, numRuns: 1500 });
});

test('property: checks on upstream answers (isAnswerTo, plausibleCounts, decodeAnswer) take any bytes without throwing unexpectedly', () => {
  fuzz('dns: upstream answers', fc.property(anyMessage, fc.nat(0xffff), ldhName, qtype, (buf, id, name, type) => {
    const asked = parseQuery(query(id, name, type, null, true));
    assert.ok(asked.ok);
    quick(() => isAnswerTo(buf, { id, question: asked.query.question }), SLOW_MS, 'checking an answer');
    const plausible = plausibleCounts(buf);
    try {
      quick(() => decodeAnswer(buf), SLOW_MS, 'decoding an answer');
    } catch (e: unknown) {
      // decodeAnswer throws by contract on malformed input: an Error with words, nothing else.
      assert.ok(e instanceof Error && e.message.length > 0, String(e));
      if (!plausible) assert.match(e.message, /record counts do not fit/);
    }
  }), { seed: 1452, numRuns: 3000 });
});
