// Reading a Secret's values and checking the TLS material in it, without ever putting a byte of
// it in a message: errors name the key and the problem, never the content.
//
// Invariants:
// - `data` values are base64 (strictly: the alphabet, padding, length a multiple of 4), as the
//   Kubernetes API stores them; `stringData` values are plain text and win over `data`, as the
//   API server merges them.
// - Nothing here logs, and no returned string contains key or certificate bytes.
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import type { SecretResource } from './egress-resources.js';

export const TLS_CERT_KEY = 'tls.crt';
export const TLS_KEY_KEY = 'tls.key';
export const CA_CERT_KEY = 'ca.crt';

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export function isBase64(s: string): boolean {
  return BASE64.test(s.replace(/\s+/g, ''));
}

/** The value of `key` (stringData over data), or undefined. */
export function secretValue(secret: Pick<SecretResource, 'data' | 'stringData'>, key: string): Buffer | undefined {
  const text = secret.stringData?.[key];
  if (text !== undefined) return Buffer.from(text, 'utf8');
  const b64 = secret.data?.[key];
  if (b64 === undefined || !isBase64(b64)) return undefined;
  return Buffer.from(b64.replace(/\s+/g, ''), 'base64');
}

/** The certificates of a PEM bundle, in order; throws a content-free Error when one is bad. */
export function parseCertificates(pem: Buffer, what: string): X509Certificate[] {
  const blocks = pem.toString('latin1').match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new Error(`${what} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  return blocks.map((b, i) => {
    try {
      return new X509Certificate(b);
    } catch {
      throw new Error(`certificate ${i + 1} of ${what} cannot be parsed`);
    }
  });
}

export function parsePrivateKey(pem: Buffer, what: string): KeyObject {
  try {
    return createPrivateKey({ key: pem, format: 'pem' });
  } catch {
    throw new Error(`${what} is not a PEM private key (PKCS#8, PKCS#1 or SEC1)`);
  }
}

export interface SecretProblem {
  severity: 'error' | 'warning';
  /** The key of data/stringData the problem is about ('' for the whole Secret). */
  key: string;
  code: string;
  message: string;
}

/** Days before expiry from which a certificate draws a warning. */
export const EXPIRY_WARNING_DAYS = 30;

/** Checks the TLS material a Secret holds (what Ambit will use it for), at time `nowMs`. */
export function checkSecretMaterial(secret: SecretResource, nowMs: number): SecretProblem[] {
  const out: SecretProblem[] = [];
  for (const [k, v] of Object.entries(secret.data ?? {})) {
    if (!isBase64(v)) out.push({ severity: 'error', key: k, code: 'bad-base64', message: `data["${k}"] is not base64; put plain text under stringData instead` });
  }
  const isTls = secret.type === 'kubernetes.io/tls';
  const cert = secretValue(secret, TLS_CERT_KEY);
  const key = secretValue(secret, TLS_KEY_KEY);
  const ca = secretValue(secret, CA_CERT_KEY);
  if (isTls) {
    if (cert === undefined) out.push({ severity: 'error', key: TLS_CERT_KEY, code: 'missing-field', message: `a kubernetes.io/tls Secret needs "${TLS_CERT_KEY}"` });
    if (key === undefined) out.push({ severity: 'error', key: TLS_KEY_KEY, code: 'missing-field', message: `a kubernetes.io/tls Secret needs "${TLS_KEY_KEY}"` });
  }
  let leaf: X509Certificate | undefined;
  if (cert !== undefined) {
    try {
      const chain = parseCertificates(cert, TLS_CERT_KEY);
      leaf = chain[0];
      for (const c of chain) out.push(...expiry(c, TLS_CERT_KEY, nowMs));
    } catch (e: unknown) {
      out.push({ severity: 'error', key: TLS_CERT_KEY, code: 'bad-certificate', message: (e as Error).message });
    }
  }
  if (key !== undefined) {
    try {
      const k = parsePrivateKey(key, TLS_KEY_KEY);
      if (leaf && !leaf.checkPrivateKey(k)) {
        out.push({ severity: 'error', key: TLS_KEY_KEY, code: 'key-mismatch', message: `${TLS_KEY_KEY} is not the private key of the certificate in ${TLS_CERT_KEY}` });
      }
    } catch (e: unknown) {
      out.push({ severity: 'error', key: TLS_KEY_KEY, code: 'bad-key', message: (e as Error).message });
    }
  }
  if (ca !== undefined) {
    try {
      for (const c of parseCertificates(ca, CA_CERT_KEY)) out.push(...expiry(c, CA_CERT_KEY, nowMs));
    } catch (e: unknown) {
      out.push({ severity: 'error', key: CA_CERT_KEY, code: 'bad-certificate', message: (e as Error).message });
    }
  }
  return out;
}

function expiry(c: X509Certificate, what: string, nowMs: number): SecretProblem[] {
  const notAfter = Date.parse(c.validTo);
  const notBefore = Date.parse(c.validFrom);
  const subject = c.subject.split('\n').find((l) => l.startsWith('CN=')) ?? c.subject.split('\n')[0] ?? '';
  if (notAfter < nowMs) return [{ severity: 'warning', key: what, code: 'expired', message: `the certificate ${subject} in ${what} expired on ${new Date(notAfter).toISOString()}` }];
  if (notBefore > nowMs) return [{ severity: 'warning', key: what, code: 'not-yet-valid', message: `the certificate ${subject} in ${what} is valid only from ${new Date(notBefore).toISOString()}` }];
  const days = Math.floor((notAfter - nowMs) / 86_400_000);
  if (days < EXPIRY_WARNING_DAYS) return [{ severity: 'warning', key: what, code: 'expires-soon', message: `the certificate ${subject} in ${what} expires in ${days} day${days === 1 ? '' : 's'} (${new Date(notAfter).toISOString()})` }];
  return [];
}
