// The pure decisions of the HBONE room: reading a CONNECT request, judging a TLS peer on each
// side, and the pool key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConnectRequest } from '../../src/hbone/connect-request.js';
import { checkClientPeer, checkServerSan, type ClientHandshakeFacts } from '../../src/hbone/peer-check.js';
import { poolKey } from '../../src/hbone/pool-key.js';

test('parseConnectRequest: CONNECT with ip:port passes, everything else is a 400 with a reason', () => {
  const table: [Record<string, string | string[] | undefined>, string | { ip: string; port: number }][] = [
    [{ ':method': 'CONNECT', ':authority': '10.0.0.1:80' }, { ip: '10.0.0.1', port: 80 }],
    [{ ':method': 'CONNECT', ':authority': '[fd00::1]:15008' }, { ip: 'fd00::1', port: 15008 }],
    [{ ':method': 'CONNECT', ':authority': '10.0.0.1:65535' }, { ip: '10.0.0.1', port: 65535 }],
    [{ ':method': 'GET', ':authority': '10.0.0.1:80', ':path': '/' }, 'method GET is not CONNECT'],
    [{ ':authority': '10.0.0.1:80' }, 'method (none) is not CONNECT'],
    [{ ':method': 'CONNECT' }, 'CONNECT without :authority'],
    [{ ':method': 'CONNECT', ':authority': '' }, 'CONNECT without :authority'],
    [{ ':method': 'CONNECT', ':authority': 'svc.ns.svc.cluster.local:80' }, "authority 'svc.ns.svc.cluster.local:80' is not ip:port"],
    [{ ':method': 'CONNECT', ':authority': '10.0.0.1' }, "authority '10.0.0.1' is not ip:port"],
    [{ ':method': 'CONNECT', ':authority': '10.0.0.1:0' }, "authority '10.0.0.1:0' is not ip:port"],
    [{ ':method': 'CONNECT', ':authority': '10.0.0.1:65536' }, "authority '10.0.0.1:65536' is not ip:port"],
    [{ ':method': 'CONNECT', ':authority': 'fd00::1:80' }, "authority 'fd00::1:80' is not ip:port"],
    [{ ':method': 'CONNECT', ':authority': '[10.0.0.1]:80' }, "authority '[10.0.0.1]:80' is not ip:port"],
  ];
  for (const [headers, want] of table) {
    const got = parseConnectRequest(headers);
    if (typeof want === 'string') {
      assert.equal(got.ok, false, JSON.stringify(headers));
      if (!got.ok) {
        assert.equal(got.status, 400);
        assert.equal(got.reason, want);
      }
    } else {
      assert.ok(got.ok, JSON.stringify(headers));
      assert.deepEqual(got.target, want);
    }
  }
});

test('parseConnectRequest carries baggage, forwarded and traceparent (repeated headers joined)', () => {
  const got = parseConnectRequest({
    ':method': 'CONNECT', ':authority': '10.0.0.1:80',
    baggage: ['a=1', 'b=2'], forwarded: 'for="10.0.0.2:5000"', traceparent: '00-' + '1'.repeat(32) + '-' + '2'.repeat(16) + '-00', other: 'x',
  });
  assert.ok(got.ok);
  assert.deepEqual(got.headers, { baggage: 'a=1, b=2', forwarded: 'for="10.0.0.2:5000"', traceparent: '00-' + '1'.repeat(32) + '-' + '2'.repeat(16) + '-00' });
  const bare = parseConnectRequest({ ':method': 'CONNECT', ':authority': '10.0.0.1:80' });
  assert.ok(bare.ok);
  assert.deepEqual(bare.headers, {});
});

test('checkClientPeer: certificate, verification, ALPN, SPIFFE SAN, trust domain', () => {
  const good: ClientHandshakeFacts = {
    authorized: true, hasCertificate: true, subjectAltName: 'URI:spiffe://cluster.local/ns/a/sa/b', alpnProtocol: 'h2',
  };
  assert.deepEqual(checkClientPeer(good, 'cluster.local'), { ok: true, identity: 'spiffe://cluster.local/ns/a/sa/b' });
  const bad: [Partial<ClientHandshakeFacts>, RegExp][] = [
    [{ hasCertificate: false, authorized: false }, /no certificate/],
    [{ authorized: false, authorizationError: 'CERT_HAS_EXPIRED' }, /not trusted: CERT_HAS_EXPIRED/],
    [{ alpnProtocol: false }, /ALPN h2 was not negotiated/],
    [{ subjectAltName: 'DNS:example.com' }, /no single SPIFFE URI SAN/],
    [{ subjectAltName: 'URI:spiffe://cluster.local/ns/a/sa/b, URI:spiffe://cluster.local/ns/c/sa/d' }, /no single SPIFFE URI SAN/],
    [{ subjectAltName: 'URI:https://example.com/' }, /no single SPIFFE URI SAN/],
    [{ subjectAltName: 'URI:spiffe://other.org/ns/a/sa/b' }, /not in trust domain cluster\.local/],
  ];
  for (const [over, re] of bad) {
    const v = checkClientPeer({ ...good, ...over }, 'cluster.local');
    assert.equal(v.ok, false, JSON.stringify(over));
    if (!v.ok) assert.match(v.reason, re);
  }
  const foreign = checkClientPeer({ ...good, subjectAltName: 'URI:spiffe://other.org/ns/a/sa/b' }, 'cluster.local');
  assert.equal(foreign.ok ? undefined : foreign.identity, 'spiffe://other.org/ns/a/sa/b');
});

test('checkServerSan: exactly one SPIFFE URI SAN, one of the expected', () => {
  const expected = ['spiffe://cluster.local/ns/a/sa/b', 'spiffe://cluster.local/ns/a/sa/waypoint'];
  assert.equal(checkServerSan('URI:spiffe://cluster.local/ns/a/sa/b', expected), undefined);
  assert.equal(checkServerSan('URI:spiffe://cluster.local/ns/a/sa/waypoint', expected), undefined);
  assert.match(checkServerSan('URI:spiffe://cluster.local/ns/a/sa/c', expected) ?? '', /not one of the expected/);
  assert.match(checkServerSan(undefined, expected) ?? '', /no URI SAN/);
  assert.match(checkServerSan('DNS:b.a.svc', expected) ?? '', /no URI SAN/);
  assert.match(checkServerSan('URI:spiffe://cluster.local/ns/a/sa/b, URI:spiffe://cluster.local/ns/a/sa/waypoint', expected) ?? '', /URI SANs/);
});

test('poolKey: same for reordered or repeated expected identities, different for everything else', () => {
  const base = { sourceIdentity: 'spiffe://td/ns/a/sa/x', expectedIdentities: ['spiffe://td/ns/b/sa/y', 'spiffe://td/ns/b/sa/z'], destination: { ip: '10.0.0.1', port: 15008 } };
  const k = poolKey(base);
  assert.equal(poolKey({ ...base, expectedIdentities: ['spiffe://td/ns/b/sa/z', 'spiffe://td/ns/b/sa/y', 'spiffe://td/ns/b/sa/z'] }), k);
  for (const other of [
    { ...base, sourceIdentity: 'spiffe://td/ns/a/sa/other' },
    { ...base, expectedIdentities: ['spiffe://td/ns/b/sa/y'] },
    { ...base, destination: { ip: '10.0.0.2', port: 15008 } },
    { ...base, destination: { ip: '10.0.0.1', port: 15009 } },
    { ...base, sourceIp: '10.0.0.9' },
  ]) assert.notEqual(poolKey(other), k);
  assert.match(poolKey({ ...base, destination: { ip: 'fd00::1', port: 15008 } }), /\[fd00::1\]:15008/);
});
