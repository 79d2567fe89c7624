// The one door to @peculiar/x509 (X.509 and PKCS#10 encoding; no hand-written ASN.1 here).
// Importing this module loads reflect-metadata (which the library's DI container needs) and
// points the library's default crypto provider at Node's WebCrypto. Every call in this room
// also passes `webcrypto` explicitly, so nothing depends on that default being set first.
import 'reflect-metadata';
import { webcrypto, createPrivateKey, createPublicKey, X509Certificate as NodeX509Certificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto);

export { x509 };

/** Node's WebCrypto, passed to every library call. */
export const crypto = webcrypto;

export type CryptoKey = webcrypto.CryptoKey;
export type CryptoKeyPair = webcrypto.CryptoKeyPair;

/** ECDSA P-256 with SHA-256: the algorithm of every key and signature Ambit makes. */
export const ECDSA_P256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export async function generateP256KeyPair(): Promise<CryptoKeyPair> {
  return crypto.subtle.generateKey(ECDSA_P256, true, ['sign', 'verify']);
}

export async function exportPkcs8Pem(key: CryptoKey): Promise<string> {
  const der = await crypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

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
