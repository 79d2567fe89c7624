// Real X.509 material for TLS tests: a separate test CA (not the mesh root) and certificates it
// signs, with DNS names, for servers "outside" the mesh and for clients (mutual TLS).
import { randomBytes } from 'node:crypto';
import { crypto, ECDSA_P256, exportPkcs8Pem, generateP256KeyPair, x509, type CryptoKeyPair } from '../../src/identity/x509.js';

export interface TestCa {
  certPem: string;
  keyPem: string;
  cert: x509.X509Certificate;
  keys: CryptoKeyPair;
}

export interface IssuedCert {
  certPem: string;
  keyPem: string;
}

const DAY = 86_400_000;

export async function makeTestCa(commonName = 'Ambit Test Partner CA'): Promise<TestCa> {
  const keys = await generateP256KeyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomBytes(8).toString('hex'),
    name: `CN=${commonName}`,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 365 * DAY),
    keys,
    signingAlgorithm: ECDSA_P256,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    ],
  }, crypto);
  return { certPem: cert.toString('pem'), keyPem: await exportPkcs8Pem(keys.privateKey), cert, keys };
}

/** A leaf signed by `ca`: server (DNS names) or client usage; validity in days from now (negative: expired). */
export async function issueCert(ca: TestCa, o: { commonName: string; dnsNames?: string[]; usage?: 'server' | 'client'; notAfterDays?: number; notBeforeDays?: number }): Promise<IssuedCert> {
  const keys = await generateP256KeyPair();
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([o.usage === 'client' ? x509.ExtendedKeyUsage.clientAuth : x509.ExtendedKeyUsage.serverAuth]),
  ];
  if (o.dnsNames?.length) extensions.push(new x509.SubjectAlternativeNameExtension(o.dnsNames.map((d) => ({ type: 'dns' as const, value: d }))));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomBytes(8).toString('hex'),
    subject: `CN=${o.commonName}`,
    issuer: ca.cert.subject,
    notBefore: new Date(Date.now() + (o.notBeforeDays ?? -1) * DAY),
    notAfter: new Date(Date.now() + (o.notAfterDays ?? 90) * DAY),
    signingKey: ca.keys.privateKey,
    publicKey: keys.publicKey,
    signingAlgorithm: ECDSA_P256,
    extensions,
  }, crypto);
  return { certPem: cert.toString('pem'), keyPem: await exportPkcs8Pem(keys.privateKey) };
}

export function b64(s: string): string {
  return Buffer.from(s).toString('base64');
}
