// The one door to @peculiar/x509 (X.509 and PKCS#10 encoding; no hand-written ASN.1 here).
// It is heavy (~10 MB resident with its dependencies), so only the CA side (signing, CSR
// parsing) imports it; the workload side uses ./pem.ts and ./csr.ts's fixed-shape encoder.
// Importing this module loads reflect-metadata (which the library's DI container needs) and
// points the library's default crypto provider at Node's WebCrypto. Every call in this room
// also passes `webcrypto` explicitly, so nothing depends on that default being set first.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
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

// The node:crypto-only helpers live in ./pem.ts (no @peculiar/x509 there); re-exported for
// the callers that already take everything from this door.
export { issuedBy, normalizePem, publicKeyDerOfCert, publicKeyDerOfPrivateKey, splitCertificates } from './pem.js';
