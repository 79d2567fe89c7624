import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  formatSpiffe, identityEquals, mustParseSpiffe, parsePrincipal, parseSpiffe, principalOf, type Identity,
} from '../../src/identity/spiffe.js';
import { identityOfSubjectAltName, uriSans } from '../../src/identity/workload-certificate.js';

const good: [string, Identity][] = [
  ['spiffe://cluster.local/ns/default/sa/default', { trustDomain: 'cluster.local', namespace: 'default', serviceAccount: 'default' }],
  ['spiffe://example.org/ns/shop/sa/cart-v2', { trustDomain: 'example.org', namespace: 'shop', serviceAccount: 'cart-v2' }],
  ['spiffe://td_1-x.y/ns/a.b/sa/Sleep_1', { trustDomain: 'td_1-x.y', namespace: 'a.b', serviceAccount: 'Sleep_1' }],
  ['spiffe://td/ns/ns/sa/sa', { trustDomain: 'td', namespace: 'ns', serviceAccount: 'sa' }],
];

const bad: [string, RegExp][] = [
  ['', /empty/],
  ['cluster.local/ns/a/sa/b', /no 'spiffe:\/\/' scheme/],
  ['https://cluster.local/ns/a/sa/b', /does not start with 'spiffe:\/\/'/],
  ['SPIFFE://cluster.local/ns/a/sa/b', /lowercase/],
  ['spiffe://', /trust domain is empty/],
  ['spiffe:///ns/a/sa/b', /trust domain is empty/],
  ['spiffe://cluster.local', /only a trust domain/],
  ['spiffe://cluster.local/', /not \/ns\/<namespace>\/sa\/<service-account>/],
  ['spiffe://Cluster.Local/ns/a/sa/b', /uppercase/],
  ['spiffe://cluster.local:8080/ns/a/sa/b', /port/],
  ['spiffe://user@cluster.local/ns/a/sa/b', /user info/],
  ['spiffe://clu$ter/ns/a/sa/b', /may contain only/],
  ['spiffe://cluster.local/ns/a/sa/b/', /is not \/ns/],
  ['spiffe://cluster.local/ns/a/sa/b/extra', /is not \/ns/],
  ['spiffe://cluster.local/ns//sa/b', /namespace is empty/],
  ['spiffe://cluster.local/ns/a/sa/', /service account is empty/],
  ['spiffe://cluster.local/ns/../sa/b', /namespace may not be '\.\.'/],
  ['spiffe://cluster.local/ns/a/sa/.', /service account may not be '\.'/],
  ['spiffe://cluster.local/sa/b/ns/a', /is not \/ns/],
  ['spiffe://cluster.local/ns/a/sa/b?x=1', /query or fragment/],
  ['spiffe://cluster.local/ns/a/sa/b#f', /query or fragment/],
  ['spiffe://cluster.local/ns/a b/sa/b', /may contain only letters/],
  ['spiffe://cluster.local/ns/a%2f/sa/b', /may contain only letters/],
  ['spiffe://cluster.local/workload/x', /is not \/ns/],
  [`spiffe://cluster.local/ns/${'a'.repeat(2100)}/sa/b`, /longer than 2048/],
];

test('parseSpiffe accepts the Istio form and formatSpiffe prints it back', () => {
  for (const [uri, want] of good) {
    const r = parseSpiffe(uri);
    assert.ok(r.ok, `${uri}: ${r.ok ? '' : r.error.message}`);
    assert.deepEqual(r.value, want);
    assert.equal(formatSpiffe(r.value), uri);
    assert.equal(principalOf(r.value), uri.slice('spiffe://'.length));
  }
});

test('parseSpiffe rejects everything else with AMBIT_ERR_IDENTITY and the reason', () => {
  for (const [uri, why] of bad) {
    const r = parseSpiffe(uri);
    assert.equal(r.ok, false, `${uri} should be rejected`);
    if (r.ok) continue;
    assert.equal(r.error.code, 'AMBIT_ERR_IDENTITY', uri);
    assert.match(r.error.message, why, uri);
    assert.ok(r.error.hint, `${uri}: a hint is expected`);
  }
});

test('a principal without scheme gets a hint to add spiffe://', () => {
  const r = parseSpiffe('cluster.local/ns/a/sa/b');
  assert.equal(r.ok, false);
  if (!r.ok) assert.match(r.error.hint ?? '', /spiffe:\/\/cluster\.local\/ns\/a\/sa\/b/);
});

test('parsePrincipal takes the form without scheme and rejects the scheme', () => {
  const r = parsePrincipal('cluster.local/ns/a/sa/b');
  assert.ok(r.ok);
  assert.deepEqual(r.value, { trustDomain: 'cluster.local', namespace: 'a', serviceAccount: 'b' });
  const withScheme = parsePrincipal('spiffe://cluster.local/ns/a/sa/b');
  assert.equal(withScheme.ok, false);
  if (!withScheme.ok) assert.match(withScheme.error.message, /invalid principal .*no scheme/);
  const broken = parsePrincipal('cluster.local/ns/a');
  assert.equal(broken.ok, false);
  if (!broken.ok) assert.match(broken.error.message, /^invalid principal 'cluster.local\/ns\/a'/);
  assert.equal(parsePrincipal('').ok, false);
});

test('identityEquals compares every field', () => {
  const a = mustParseSpiffe('spiffe://cluster.local/ns/a/sa/b');
  assert.ok(identityEquals(a, { ...a }));
  assert.ok(!identityEquals(a, { ...a, trustDomain: 'other' }));
  assert.ok(!identityEquals(a, { ...a, namespace: 'x' }));
  assert.ok(!identityEquals(a, { ...a, serviceAccount: 'x' }));
  assert.throws(() => mustParseSpiffe('nope'), { code: 'AMBIT_ERR_IDENTITY' });
});

test('uriSans reads Node subjectaltname strings, quoted values included', () => {
  assert.deepEqual(uriSans('URI:spiffe://cluster.local/ns/a/sa/b'), ['spiffe://cluster.local/ns/a/sa/b']);
  assert.deepEqual(uriSans('DNS:a.example, URI:spiffe://td/ns/a/sa/b, IP Address:10.0.0.1'), ['spiffe://td/ns/a/sa/b']);
  assert.deepEqual(uriSans('URI:"spiffe://td/ns/a/sa/b, URI:spiffe://evil/ns/x/sa/y", DNS:x'), ['spiffe://td/ns/a/sa/b, URI:spiffe://evil/ns/x/sa/y']);
  assert.deepEqual(uriSans(''), []);
  assert.deepEqual(identityOfSubjectAltName('URI:spiffe://td/ns/a/sa/b'), { trustDomain: 'td', namespace: 'a', serviceAccount: 'b' });
  // Exactly one URI SAN, and it must be a SPIFFE ID (X509-SVID rule).
  assert.equal(identityOfSubjectAltName('URI:spiffe://td/ns/a/sa/b, URI:spiffe://td/ns/c/sa/d'), undefined);
  assert.equal(identityOfSubjectAltName('URI:https://example.com'), undefined);
  assert.equal(identityOfSubjectAltName('URI:"spiffe://td/ns/a/sa/b, URI:spiffe://evil/ns/x/sa/y"'), undefined);
  assert.equal(identityOfSubjectAltName('DNS:a'), undefined);
  assert.equal(identityOfSubjectAltName(undefined), undefined);
});
