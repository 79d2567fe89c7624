// Certificate signing requests for workload identities: a fresh ECDSA P-256 key and a PKCS#10
// request carrying the identity as its only URI SAN (subject empty, as Istio's are).
//
// Invariants:
// - Every call makes a new key; keys are never reused across requests (renewal rotates keys).
// - The key leaves this file only as PKCS#8 PEM.
import { AmbitError, err, ok, type Result } from '../core/errors.js';
import { formatSpiffe, type Identity } from './spiffe.js';
import { crypto, ECDSA_P256, exportPkcs8Pem, generateP256KeyPair, x509 } from './x509.js';

const SUBJECT_ALT_NAME_OID = '2.5.29.17';

export interface KeyAndCsr {
  /** The private key, PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`). */
  keyPem: string;
  /** The PKCS#10 request, PEM (`-----BEGIN CERTIFICATE REQUEST-----`). */
  csrPem: string;
}

export async function generateKeyAndCsr(identity: Identity): Promise<KeyAndCsr> {
  const keys = await generateP256KeyPair();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create(
    {
      keys,
      signingAlgorithm: ECDSA_P256,
      // Critical because the subject is empty (RFC 5280 4.2.1.6).
      extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: formatSpiffe(identity) }], true)],
    },
    crypto,
  );
  return { keyPem: await exportPkcs8Pem(keys.privateKey), csrPem: csr.toString('pem') + '\n' };
}

export interface ParsedCsr {
  request: x509.Pkcs10CertificateRequest;
  /** Every URI SAN the request asks for, in order. */
  uriSans: string[];
}

/** Decodes a CSR PEM and checks its self-signature (proof that the requester holds the key). */
export async function parseAndVerifyCsr(csrPem: string): Promise<Result<ParsedCsr, AmbitError>> {
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
