// A self-signed serving certificate for 127.0.0.1 (ECDSA P-256), for the API server stand-in:
// the client library verifies it through the kubeconfig's certificate-authority-data, as it
// does a real cluster's.
import { x509, crypto, generateP256KeyPair, exportPkcs8Pem, ECDSA_P256 } from '../../../src/identity/x509.js';

export async function servingCertificate(): Promise<{ certPem: string; keyPem: string }> {
  const keys = await generateP256KeyPair();
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01' + Buffer.from(globalThis.crypto.getRandomValues(new Uint8Array(8))).toString('hex'),
    name: [{ CN: ['kube-apiserver stand-in'] }],
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 86_400_000),
    keys,
    signingAlgorithm: ECDSA_P256,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyCertSign, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
      new x509.SubjectAlternativeNameExtension([{ type: 'ip', value: '127.0.0.1' }, { type: 'dns', value: 'localhost' }], false),
    ],
  }, crypto);
  return { certPem: cert.toString('pem'), keyPem: await exportPkcs8Pem(keys.privateKey) };
}
