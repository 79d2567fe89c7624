// PEM and certificate helpers that need only node:crypto. Kept apart from ./x509.ts so the
// data path (TLS peer checks, the certificate manager) never loads @peculiar/x509 and its
// dependencies (reflect-metadata, tsyringe, asn1-*): ~10 MB of resident memory per process.
// Imports nothing of ours.
import { createPrivateKey, createPublicKey, X509Certificate as NodeX509Certificate } from 'node:crypto';

/** Splits a PEM bundle into its CERTIFICATE blocks, each ending with a newline. */
export function splitCertificates(pem: string): string[] {
  const re = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;
  return [...pem.matchAll(re)].map((m) => m[0].replace(/\r\n/g, '\n') + '\n');
}

/** Normalises one PEM block (line endings, trailing newline) so equal certificates compare equal. */
export function normalizePem(pem: string): string {
  return pem.replace(/\r\n/g, '\n').trim() + '\n';
}

/** DER of a certificate's SubjectPublicKeyInfo; equal bytes mean the same key. */
export function publicKeyDerOfCert(certPem: string): Buffer {
  return new NodeX509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
}

/** DER of the SubjectPublicKeyInfo of a private key (PKCS#8, SEC1 or PKCS#1 PEM). */
export function publicKeyDerOfPrivateKey(keyPem: string): Buffer {
  return createPublicKey(createPrivateKey(keyPem)).export({ type: 'spki', format: 'der' });
}

/** True when `child` names `parent` as its issuer and parent's key verifies child's signature. */
export function issuedBy(childPem: string, parentPem: string): boolean {
  const child = new NodeX509Certificate(childPem);
  const parent = new NodeX509Certificate(parentPem);
  return child.checkIssued(parent) && child.verify(parent.publicKey);
}

/**
 * A certificate's validity window as Dates (second precision, like the certificate's own
 * UTCTime/GeneralizedTime). Node 20 gives it only as OpenSSL's text ("Nov 26 02:12:42 2026 GMT").
 */
export function validityOf(cert: NodeX509Certificate): { notBefore: Date; notAfter: Date } {
  const notBefore = new Date(cert.validFrom);
  const notAfter = new Date(cert.validTo);
  if (Number.isNaN(notBefore.getTime()) || Number.isNaN(notAfter.getTime())) {
    throw new Error(`unreadable validity window (${cert.validFrom} .. ${cert.validTo})`);
  }
  return { notBefore, notAfter };
}
