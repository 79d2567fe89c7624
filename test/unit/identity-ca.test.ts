import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeClock } from '../../src/core/clock.js';
import {
  CACERTS_FILES, CLOCK_SKEW_MS, DEFAULT_WORKLOAD_TTL_SECONDS, MAX_WORKLOAD_TTL_SECONDS, MeshCA,
} from '../../src/identity/ca.js';
import { generateKeyAndCsr } from '../../src/identity/csr.js';
import { formatSpiffe, mustParseSpiffe } from '../../src/identity/spiffe.js';
import { crypto, ECDSA_P256, exportPkcs8Pem, generateP256KeyPair, x509 } from '../../src/identity/x509.js';

const alice = mustParseSpiffe('spiffe://cluster.local/ns/shop/sa/alice');
const bob = mustParseSpiffe('spiffe://cluster.local/ns/shop/sa/bob');
const HOUR = 3600 * 1000;

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'ambit-identity-ca-'));
  dirs.push(d);
  return d;
}

function assertChainVerifies(chain: string[]): void {
  for (let i = 0; i + 1 < chain.length; i++) {
    const child = new X509Certificate(chain[i] as string);
    const parent = new X509Certificate(chain[i + 1] as string);
    assert.ok(child.checkIssued(parent), `cert ${i} should name cert ${i + 1} as issuer`);
    assert.ok(child.verify(parent.publicKey), `cert ${i} should be signed by cert ${i + 1}`);
  }
  const root = new X509Certificate(chain[chain.length - 1] as string);
  assert.ok(root.checkIssued(root) && root.verify(root.publicKey), 'the last certificate is a self-signed root');
}

/** A CSR whose SAN extension lists the given URIs (the CA must refuse most of these). */
async function csrWithUris(uris: string[]): Promise<string> {
  const keys = await generateP256KeyPair();
  const extensions = uris.length ? [new x509.SubjectAlternativeNameExtension(uris.map((value) => ({ type: 'url' as const, value })), true)] : [];
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ keys, signingAlgorithm: ECDSA_P256, extensions, name: 'CN=x' }, crypto);
  return csr.toString('pem');
}

test('a new CA issues a leaf that chains to its self-signed root, with the expected fields', async () => {
  const clock = new FakeClock(Date.UTC(2026, 0, 1, 12));
  const ca = await MeshCA.create({ trustDomain: 'cluster.local', clock });
  const root = new x509.X509Certificate(ca.rootPem);
  assert.equal(root.getExtension(x509.BasicConstraintsExtension)?.ca, true);
  assert.ok(((root.getExtension(x509.KeyUsagesExtension)?.usages ?? 0) & x509.KeyUsageFlags.keyCertSign) !== 0);
  assert.equal(root.publicKey.algorithm.name, 'ECDSA');

  const { keyPem, csrPem } = await generateKeyAndCsr(alice);
  assert.match(keyPem, /^-----BEGIN PRIVATE KEY-----/);
  const r = await ca.sign({ csrPem, identity: alice });
  assert.ok(r.ok, r.ok ? '' : r.error.message);
  const { certChainPem, notAfter } = r.value;
  assert.equal(certChainPem.length, 2);
  assert.equal(certChainPem[1], ca.rootPem, 'root last');
  assertChainVerifies(certChainPem);

  const leafNode = new X509Certificate(certChainPem[0] as string);
  assert.equal(leafNode.subjectAltName, `URI:${formatSpiffe(alice)}`);
  assert.equal(leafNode.ca, false);
  assert.ok(leafNode.publicKey.equals(createPublicKey(createPrivateKey(keyPem))), 'the leaf carries the CSR key');
  assert.equal(leafNode.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  assert.deepEqual([...(leafNode.keyUsage ?? [])].sort(), ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);

  const leaf = new x509.X509Certificate(certChainPem[0] as string);
  assert.equal(leaf.getExtension(x509.BasicConstraintsExtension)?.ca, false);
  assert.equal(leaf.getExtension(x509.KeyUsagesExtension)?.usages, x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment);
  assert.equal(leaf.notBefore.getTime(), clock.now() - CLOCK_SKEW_MS, 'backdated for clock skew');
  assert.equal(notAfter.getTime(), clock.now() + DEFAULT_WORKLOAD_TTL_SECONDS * 1000, 'default TTL 24h');
  assert.equal(leaf.notAfter.getTime(), notAfter.getTime());
  assert.equal(DEFAULT_WORKLOAD_TTL_SECONDS, 24 * 3600);

  const again = await ca.sign({ csrPem, identity: alice });
  assert.ok(again.ok);
  assert.notEqual(new X509Certificate(again.value.certChainPem[0] as string).serialNumber, leafNode.serialNumber, 'serials are random');
});

test('a CSR for another identity is refused with AMBIT_ERR_CSR_IDENTITY naming both', async () => {
  const ca = await MeshCA.create({ clock: new FakeClock() });
  const { csrPem } = await generateKeyAndCsr(bob);
  const r = await ca.sign({ csrPem, identity: alice });
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.equal(r.error.code, 'AMBIT_ERR_CSR_IDENTITY');
  assert.match(r.error.message, /spiffe:\/\/cluster\.local\/ns\/shop\/sa\/bob/);
  assert.match(r.error.message, /spiffe:\/\/cluster\.local\/ns\/shop\/sa\/alice/);
});

test('a CSR must carry exactly one URI SAN, a SPIFFE ID in the CA trust domain', async () => {
  const ca = await MeshCA.create({ clock: new FakeClock() });
  const cases: [string[], RegExp][] = [
    [[], /no URI SAN/],
    [[formatSpiffe(alice), formatSpiffe(bob)], /2 URI SANs/],
    [[formatSpiffe(alice), formatSpiffe(alice)], /2 URI SANs/],
    [['https://example.com/alice'], /asks for https:\/\/example\.com\/alice/],
  ];
  for (const [uris, why] of cases) {
    const r = await ca.sign({ csrPem: await csrWithUris(uris), identity: alice });
    assert.equal(r.ok, false, uris.join(','));
    if (!r.ok) {
      assert.equal(r.error.code, 'AMBIT_ERR_CSR_IDENTITY');
      assert.match(r.error.message, why);
    }
  }
  const other = mustParseSpiffe('spiffe://other.td/ns/shop/sa/alice');
  const r = await ca.sign({ csrPem: (await generateKeyAndCsr(other)).csrPem, identity: other });
  assert.equal(r.ok, false);
  if (!r.ok) {
    assert.equal(r.error.code, 'AMBIT_ERR_CSR_IDENTITY');
    assert.match(r.error.message, /outside this CA's trust domain 'cluster\.local'/);
  }
});

test('a CSR whose signature does not verify, or that is not a CSR, is refused', async () => {
  const ca = await MeshCA.create({ clock: new FakeClock() });
  const { csrPem } = await generateKeyAndCsr(alice);
  const der = Buffer.from(x509.PemConverter.decode(csrPem)[0] as ArrayBuffer);
  der[der.length - 1] = (der[der.length - 1] as number) ^ 0x01; // flip a bit of the signature
  const tampered = x509.PemConverter.encode(der, 'CERTIFICATE REQUEST');
  const r = await ca.sign({ csrPem: tampered, identity: alice });
  assert.equal(r.ok, false);
  if (!r.ok) {
    assert.equal(r.error.code, 'AMBIT_ERR_CA');
    assert.match(r.error.message, /signature/);
  }
  const junk = await ca.sign({ csrPem: 'hello', identity: alice });
  assert.equal(junk.ok, false);
  if (!junk.ok) assert.match(junk.error.message, /cannot decode the CSR/);
});

test('TTL: default 24h, up to 90 days, longer is refused, never past the CA itself', async () => {
  const clock = new FakeClock();
  const ca = await MeshCA.create({ clock });
  const { csrPem } = await generateKeyAndCsr(alice);
  const hour = await ca.sign({ csrPem, identity: alice, ttlSeconds: 3600 });
  assert.ok(hour.ok);
  assert.equal(hour.value.notAfter.getTime(), clock.now() + HOUR);
  const max = await ca.sign({ csrPem, identity: alice, ttlSeconds: MAX_WORKLOAD_TTL_SECONDS });
  assert.ok(max.ok);
  assert.equal(max.value.notAfter.getTime(), clock.now() + 90 * 24 * HOUR);
  for (const ttlSeconds of [MAX_WORKLOAD_TTL_SECONDS + 1, 0, -5, Number.NaN]) {
    const r = await ca.sign({ csrPem, identity: alice, ttlSeconds });
    assert.equal(r.ok, false, String(ttlSeconds));
    if (!r.ok) assert.equal(r.error.code, 'AMBIT_ERR_CA');
  }
  const tooLong = await ca.sign({ csrPem, identity: alice, ttlSeconds: 91 * 86400 });
  assert.ok(!tooLong.ok && /greater than the maximum of 90d/.test(tooLong.error.message));

  const shortCa = await MeshCA.create({ clock, rootTtlDays: 1 });
  const clamped = await shortCa.sign({ csrPem, identity: alice, ttlSeconds: 2 * 86400 });
  assert.ok(clamped.ok);
  assert.equal(clamped.value.clampedToCa, true);
  assert.equal(clamped.value.notAfter.getTime(), new x509.X509Certificate(shortCa.rootPem).notAfter.getTime());
  await clock.advance(25 * HOUR);
  const expired = await shortCa.sign({ csrPem, identity: alice });
  assert.ok(!expired.ok && /expired/.test(expired.error.message));
});

test('save then load keeps the CA: same root, key 0600, issues verifiable chains', async () => {
  const clock = new FakeClock();
  const ca = await MeshCA.create({ clock });
  const dir = await tempDir();
  await ca.save(dir);
  assert.equal((await stat(join(dir, CACERTS_FILES.caKey))).mode & 0o777, 0o600);
  for (const f of Object.values(CACERTS_FILES)) assert.match(await readFile(join(dir, f), 'utf8'), /-----BEGIN/);
  const loaded = await MeshCA.load(dir, { clock });
  assert.equal(loaded.rootPem, ca.rootPem);
  const r = await loaded.sign({ csrPem: (await generateKeyAndCsr(alice)).csrPem, identity: alice });
  assert.ok(r.ok);
  assertChainVerifies(r.value.certChainPem);
  assert.equal(r.value.certChainPem[1], ca.rootPem);

  // Just root-cert.pem + ca-key.pem: a self-signed root that signs directly.
  await unlink(join(dir, CACERTS_FILES.caCert));
  await unlink(join(dir, CACERTS_FILES.certChain));
  const minimal = await MeshCA.load(dir, { clock });
  const m = await minimal.sign({ csrPem: (await generateKeyAndCsr(alice)).csrPem, identity: alice });
  assert.ok(m.ok);
  assert.deepEqual(m.value.certChainPem.slice(1), [ca.rootPem]);
});

interface Pki { rootPem: string; rootKeys: CryptoKeyPair; interPem: string; interKeyPem: string }
type CryptoKeyPair = Awaited<ReturnType<typeof generateP256KeyPair>>;

/** An operator's PKI: a root and an intermediate signing CA made outside Ambit. */
async function operatorPki(now: number): Promise<Pki> {
  const rootKeys = await generateP256KeyPair();
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    name: 'CN=Operator Root, O=Example', keys: rootKeys, signingAlgorithm: ECDSA_P256,
    notBefore: new Date(now - 24 * HOUR), notAfter: new Date(now + 3650 * 24 * HOUR),
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true)],
  }, crypto);
  const interKeys = await generateP256KeyPair();
  const inter = await x509.X509CertificateGenerator.create({
    subject: 'CN=Mesh Intermediate, O=Example', issuer: root.subjectName, publicKey: interKeys.publicKey, signingKey: rootKeys.privateKey,
    signingAlgorithm: ECDSA_P256, notBefore: new Date(now - 24 * HOUR), notAfter: new Date(now + 365 * 24 * HOUR),
    extensions: [new x509.BasicConstraintsExtension(true, 0, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)],
  }, crypto);
  return { rootPem: root.toString('pem') + '\n', rootKeys, interPem: inter.toString('pem') + '\n', interKeyPem: await exportPkcs8Pem(interKeys.privateKey) };
}

test('an operator intermediate in cacerts: load, issue, chain leaf -> intermediate -> root', async () => {
  const clock = new FakeClock();
  const pki = await operatorPki(clock.now());
  const dir = await tempDir();
  // ca-key.pem in SEC1 form ("EC PRIVATE KEY"), as openssl writes it.
  const sec1 = createPrivateKey(pki.interKeyPem).export({ type: 'sec1', format: 'pem' }) as string;
  await writeFile(join(dir, CACERTS_FILES.caCert), pki.interPem);
  await writeFile(join(dir, CACERTS_FILES.caKey), sec1, { mode: 0o600 });
  await writeFile(join(dir, CACERTS_FILES.rootCert), pki.rootPem);
  await writeFile(join(dir, CACERTS_FILES.certChain), pki.interPem + pki.rootPem);

  const ca = await MeshCA.load(dir, { clock });
  assert.equal(ca.describe().selfSigned, false);
  const r = await ca.sign({ csrPem: (await generateKeyAndCsr(alice)).csrPem, identity: alice });
  assert.ok(r.ok, r.ok ? '' : r.error.message);
  const chain = r.value.certChainPem;
  assert.equal(chain.length, 3);
  assert.equal(chain[1], pki.interPem);
  assert.equal(chain[2], pki.rootPem);
  assertChainVerifies(chain);
  assert.equal(new X509Certificate(chain[0] as string).issuer, new X509Certificate(pki.interPem).subject);

  // cert-chain.pem without the root: the root is appended from root-cert.pem.
  await writeFile(join(dir, CACERTS_FILES.certChain), pki.interPem);
  const short = await MeshCA.load(dir, { clock });
  assert.deepEqual(short.caChainPem, [pki.interPem, pki.rootPem]);

  // save() writes the same four names back; loading them again gives the same chain.
  const copy = await tempDir();
  await ca.save(copy);
  assert.equal(await readFile(join(copy, CACERTS_FILES.caKey), 'utf8'), sec1);
  const reloaded = await MeshCA.load(copy, { clock });
  assert.deepEqual(reloaded.caChainPem, [pki.interPem, pki.rootPem]);
  const again = await reloaded.sign({ csrPem: (await generateKeyAndCsr(bob)).csrPem, identity: bob });
  assert.ok(again.ok);
  assertChainVerifies(again.value.certChainPem);
});

test('load refuses an inconsistent cacerts directory with a clear error', async () => {
  const clock = new FakeClock();
  const pki = await operatorPki(clock.now());
  const other = await operatorPki(clock.now());
  const write = async (files: Partial<Record<keyof typeof CACERTS_FILES, string>>) => {
    const dir = await tempDir();
    for (const [k, v] of Object.entries(files)) await writeFile(join(dir, CACERTS_FILES[k as keyof typeof CACERTS_FILES]), v);
    return dir;
  };
  const cases: [Partial<Record<keyof typeof CACERTS_FILES, string>>, RegExp][] = [
    [{ caKey: pki.interKeyPem }, /has no root-cert\.pem/],
    [{ rootCert: pki.rootPem }, /has no ca-key\.pem/],
    [{ rootCert: 'garbage', caKey: pki.interKeyPem }, /holds no PEM certificate/],
    // key of the intermediate, but no ca-cert.pem: the root would sign, with the wrong key
    [{ rootCert: pki.rootPem, caKey: pki.interKeyPem }, /is not the key of the signing certificate/],
    // intermediate from another PKI
    [{ rootCert: pki.rootPem, caCert: other.interPem, caKey: other.interKeyPem }, /neither in nor signed by root-cert\.pem/],
    [{ rootCert: pki.rootPem, caCert: pki.interPem, caKey: pki.interKeyPem, certChain: pki.interPem + other.rootPem }, /not signed by the next one/],
  ];
  for (const [files, why] of cases) {
    const dir = await write(files);
    await assert.rejects(MeshCA.load(dir, { clock }), (e: unknown) => {
      assert.equal((e as { code?: string }).code, 'AMBIT_ERR_CA');
      assert.match((e as Error).message, why);
      return true;
    });
  }
  // a leaf certificate cannot be a signing CA
  const ca = await MeshCA.create({ clock });
  const leaf = await ca.issueWorkloadCertificate(alice);
  assert.ok(leaf.ok);
  const dir = await write({ rootCert: ca.rootPem, caCert: leaf.value.certChainPem[0], caKey: leaf.value.keyPem });
  await assert.rejects(MeshCA.load(dir, { clock }), /is not a CA/);
});

test('an RSA root (as in Istio\'s sample cacerts) signs P-256 workload certificates', async () => {
  const clock = new FakeClock();
  const alg = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 };
  const keys = await crypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    name: 'CN=Root CA, O=Istio', keys, signingAlgorithm: alg,
    notBefore: new Date(clock.now() - HOUR), notAfter: new Date(clock.now() + 3650 * 24 * HOUR),
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)],
  }, crypto);
  const dir = await tempDir();
  const pkcs1 = createPrivateKey(await exportPkcs8Pem(keys.privateKey)).export({ type: 'pkcs1', format: 'pem' }) as string;
  await writeFile(join(dir, CACERTS_FILES.rootCert), root.toString('pem'));
  await writeFile(join(dir, CACERTS_FILES.caKey), pkcs1);
  const ca = await MeshCA.load(dir, { clock });
  const r = await ca.issueWorkloadCertificate(alice);
  assert.ok(r.ok, r.ok ? '' : r.error.message);
  assertChainVerifies(r.value.certChainPem);
  assert.equal(new X509Certificate(r.value.certChainPem[0] as string).publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
});
