// The hand-encoded CSR (node:crypto + a fixed-shape DER encoder) is read and verified by an
// independent X.509 library (@peculiar, the CA side), for identities of every length where the
// DER length encoding changes form.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyAndCsr, parseAndVerifyCsr } from '../../src/identity/csr.js';
import { createPrivateKey, createPublicKey } from 'node:crypto';

test('CSRs verify and carry exactly the SPIFFE URI, across DER length-form boundaries', async () => {
  for (const n of [1, 5, 60, 90, 100, 127, 128, 200, 255, 256, 300]) {
    const identity = { trustDomain: 'cluster.local', namespace: 'ns', serviceAccount: 's'.repeat(n) };
    const { keyPem, csrPem } = await generateKeyAndCsr(identity);
    const parsed = await parseAndVerifyCsr(csrPem);
    assert.ok(parsed.ok, parsed.ok ? '' : `${n}: ${parsed.error.message}`);
    assert.deepEqual(parsed.value.uriSans, [`spiffe://cluster.local/ns/ns/sa/${'s'.repeat(n)}`]);
    // The key in the CSR is the key returned.
    const pub = createPublicKey(createPrivateKey(keyPem)).export({ type: 'spki', format: 'der' });
    assert.ok(Buffer.from(parsed.value.request.publicKey.rawData).equals(pub), `${n}: public key`);
  }
});

test('a tampered CSR is refused', async () => {
  const { csrPem } = await generateKeyAndCsr({ trustDomain: 'cluster.local', namespace: 'ns', serviceAccount: 'a' });
  const body = csrPem.split('\n').filter((l) => l && !l.startsWith('-----')).join('');
  const der = Buffer.from(body, 'base64');
  der[der.length - 40] ^= 0xff; // inside the signature
  const bad = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
  const parsed = await parseAndVerifyCsr(bad);
  assert.equal(parsed.ok, false);
});
