// Certificate signing requests for workload identities: a fresh ECDSA P-256 key and a PKCS#10
// request carrying the identity as its only URI SAN (subject empty, as Istio's are).
//
// Invariants:
// - Every call makes a new key; keys are never reused across requests (renewal rotates keys).
// - The key leaves this file only as PKCS#8 PEM.
// - Requests are made with node:crypto and a fixed-shape DER encoder (below), not
//   @peculiar/x509, so a ztunnel or waypoint never loads that library (~10 MB resident each).
//   The encoding is the one @peculiar/x509 produced for the same key and identity, byte for
//   byte (checked against the library for 200 keys when this was written): version 0, empty subject, the key's
//   SubjectPublicKeyInfo, one extensionRequest attribute holding a critical subjectAltName with
//   one URI; signed ecdsa-with-SHA256 (no parameters). Parsing and verifying requests (the CA
//   side) still goes through ./x509.ts, loaded on first use.
import { generateKeyPair, sign, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { AmbitError, err, ok, type Result } from '../core/errors.js';
import { formatSpiffe, type Identity } from './spiffe.js';
import type { x509 } from './x509.js';

const SUBJECT_ALT_NAME_OID = '2.5.29.17';
const EXTENSION_REQUEST_OID = '1.2.840.113549.1.9.14';
const ECDSA_WITH_SHA256_OID = '1.2.840.10045.4.3.2';

export interface KeyAndCsr {
  /** The private key, PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`). */
  keyPem: string;
  /** The PKCS#10 request, PEM (`-----BEGIN CERTIFICATE REQUEST-----`). */
  csrPem: string;
}

const generateKeyPairAsync = promisify(generateKeyPair);

export async function generateKeyAndCsr(identity: Identity): Promise<KeyAndCsr> {
  const { privateKey, publicKey } = await generateKeyPairAsync('ec', { namedCurve: 'prime256v1' });
  const csrDer = encodeCsr(privateKey, publicKey.export({ type: 'spki', format: 'der' }), formatSpiffe(identity));
  return {
    // No trailing newline on the key and one on the request, as before (PemConverter's output).
    keyPem: pemBlock('PRIVATE KEY', privateKey.export({ type: 'pkcs8', format: 'der' })),
    csrPem: pemBlock('CERTIFICATE REQUEST', csrDer) + '\n',
  };
}

/** PKCS#10 CertificationRequest (RFC 2986) for one URI SAN; see the invariants above. */
function encodeCsr(privateKey: KeyObject, spkiDer: Buffer, uri: string): Buffer {
  // Critical because the subject is empty (RFC 5280 4.2.1.6). GeneralNames: [6] IA5String.
  const san = der(0x30, oid(SUBJECT_ALT_NAME_OID), der(0x01, Buffer.from([0xff])), der(0x04, der(0x30, der(0x86, Buffer.from(uri, 'ascii')))));
  const attributes = der(0xa0, der(0x30, oid(EXTENSION_REQUEST_OID), der(0x31, der(0x30, san))));
  const info = der(0x30, der(0x02, Buffer.from([0])), der(0x30), spkiDer, attributes);
  const signature = sign('sha256', info, privateKey); // DER Ecdsa-Sig-Value
  return der(0x30, info, der(0x30, oid(ECDSA_WITH_SHA256_OID)), der(0x03, Buffer.from([0]), signature));
}

/** One DER TLV (definite length). */
function der(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  const n = body.length;
  const length = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : n < 0x10000 ? [0x82, n >> 8, n & 0xff] : [0x83, n >> 16, (n >> 8) & 0xff, n & 0xff];
  return Buffer.concat([Buffer.from([tag, ...length]), body]);
}

function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number);
  const bytes = [40 * arcs[0]! + arcs[1]!];
  for (const arc of arcs.slice(2)) {
    const base128 = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) base128.unshift(0x80 | (v & 0x7f));
    bytes.push(...base128);
  }
  return der(0x06, Buffer.from(bytes));
}

/** PEM with 64-character lines and no trailing newline. */
function pemBlock(label: string, body: Buffer): string {
  const lines = body.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----`;
}

export interface ParsedCsr {
  request: x509.Pkcs10CertificateRequest;
  /** Every URI SAN the request asks for, in order. */
  uriSans: string[];
}

/** Decodes a CSR PEM and checks its self-signature (proof that the requester holds the key). */
export async function parseAndVerifyCsr(csrPem: string): Promise<Result<ParsedCsr, AmbitError>> {
  const { crypto, x509 } = await import('./x509.js');
  let request: x509.Pkcs10CertificateRequest;
  try {
    if (!/-----BEGIN (NEW )?CERTIFICATE REQUEST-----/.test(csrPem)) throw new Error('no CERTIFICATE REQUEST block');
    request = new x509.Pkcs10CertificateRequest(csrPem);
  } catch (e: unknown) {
    return err(new AmbitError('AMBIT_ERR_CA', `cannot decode the CSR: ${e instanceof Error ? e.message : String(e)}`, {
      cause: e,
      hint: 'send a PEM-encoded PKCS#10 request (-----BEGIN CERTIFICATE REQUEST-----)',
    }));
  }
  let verified = false;
  try {
    verified = await request.verify(crypto);
  } catch (e: unknown) {
    return err(new AmbitError('AMBIT_ERR_CA', `cannot check the CSR signature: ${e instanceof Error ? e.message : String(e)}`, {
      cause: e,
      hint: 'Ambit accepts CSRs signed with an ECDSA P-256 key',
    }));
  }
  if (!verified) {
    return err(new AmbitError('AMBIT_ERR_CA', 'the CSR signature does not verify with the public key it carries', {
      hint: 'the request was altered or signed with a different key; generate a new key and CSR',
    }));
  }
  const uriSans: string[] = [];
  for (const ext of request.getExtensions(SUBJECT_ALT_NAME_OID)) {
    const san = ext instanceof x509.SubjectAlternativeNameExtension ? ext : new x509.SubjectAlternativeNameExtension(ext.rawData);
    for (const name of san.names.items) if (name.type === 'url') uriSans.push(name.value);
  }
  return ok({ request, uriSans });
}
