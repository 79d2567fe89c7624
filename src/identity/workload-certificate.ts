// A workload's credentials (key, chain, trust bundle) and the two things a TLS endpoint needs
// from them: Node `tls` options, and the verified identity of the peer.
//
// Invariants:
// - A WorkloadCertificate built by workloadCertificateFromChain is consistent: the leaf's one
//   URI SAN is its identity, the key is the leaf's key, every link of the chain verifies and
//   the chain ends at (or is issued by) a certificate of rootPem.
// - peerIdentity() returns an identity only for a socket whose peer chain Node verified
//   (`authorized`) and whose leaf has exactly one URI SAN, a valid SPIFFE ID (X509-SVID rule).
import { X509Certificate as NodeX509Certificate } from 'node:crypto';
import type { SecureContextOptions, TLSSocket } from 'node:tls';
import { AmbitError, err, ok, type Result } from '../core/errors.js';
import { formatSpiffe, parseSpiffe, type Identity } from './spiffe.js';
import { issuedBy, normalizePem, publicKeyDerOfCert, publicKeyDerOfPrivateKey, splitCertificates, validityOf } from './pem.js';

export interface WorkloadCertificate {
  identity: Identity;
  /** PKCS#8 PEM private key. */
  keyPem: string;
  /** Leaf first, root last. */
  certChainPem: string[];
  /** The trust bundle peers are verified against. */
  rootPem: string;
  notBefore: Date;
  notAfter: Date;
}

export interface WorkloadCertificateInput {
  identity: Identity;
  keyPem: string;
  certChainPem: string[];
  rootPem: string;
}

function certError(message: string, hint?: string): Result<never, AmbitError> {
  return err(new AmbitError('AMBIT_ERR_CERT', message, { hint }));
}

/** Checks a freshly issued chain against the key and identity it was requested for. */
export function workloadCertificateFromChain(input: WorkloadCertificateInput): Result<WorkloadCertificate, AmbitError> {
  const who = formatSpiffe(input.identity);
  const chain = input.certChainPem.flatMap((p) => splitCertificates(p)).map(normalizePem);
  if (chain.length === 0) return certError(`the CA returned no certificate for ${who}`);
  const roots = splitCertificates(input.rootPem).map(normalizePem);
  if (roots.length === 0) return certError('the trust bundle (root certificate) is empty');
  let leaf: NodeX509Certificate;
  let validity: { notBefore: Date; notAfter: Date };
  try {
    leaf = new NodeX509Certificate(chain[0] as string);
    validity = validityOf(leaf);
    for (const p of chain.slice(1)) new NodeX509Certificate(p);
  } catch (e: unknown) {
    return certError(`the certificate chain for ${who} cannot be decoded: ${e instanceof Error ? e.message : String(e)}`);
  }
  const sans = uriSans(leaf.subjectAltName ?? '');
  if (sans.length !== 1 || sans[0] !== who) {
    return certError(`the issued certificate names ${sans.length ? sans.join(', ') : 'no URI SAN'}, not ${who}`, 'the CA signed a different identity than requested');
  }
  let keyMatches = false;
  try {
    keyMatches = publicKeyDerOfPrivateKey(input.keyPem).equals(publicKeyDerOfCert(chain[0] as string));
  } catch (e: unknown) {
    return certError(`the private key for ${who} cannot be decoded: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!keyMatches) return certError(`the issued certificate for ${who} is not for the key that requested it`);
  for (let i = 0; i + 1 < chain.length; i++) {
    if (!issuedBy(chain[i] as string, chain[i + 1] as string)) {
      return certError(`certificate ${i + 1} of the chain for ${who} is not signed by certificate ${i + 2}`, 'the CA returned a broken chain (leaf first, root last)');
    }
  }
  const top = chain[chain.length - 1] as string;
  if (!roots.includes(top) && !roots.some((r) => issuedBy(top, r))) {
    return certError(`the chain for ${who} does not lead to the mesh root`, 'the CA and this node disagree about the root certificate; check the trust bundle');
  }
  return ok({
    identity: input.identity,
    keyPem: input.keyPem,
    certChainPem: chain,
    rootPem: roots.join(''),
    notBefore: validity.notBefore,
    notAfter: validity.notAfter,
  });
}

/** key, cert (the chain, leaf first) and ca (the roots) for tls.createServer / tls.connect. */
export function tlsOptions(cert: WorkloadCertificate): Required<Pick<SecureContextOptions, 'key' | 'cert' | 'ca'>> {
  return { key: cert.keyPem, cert: cert.certChainPem.join(''), ca: cert.rootPem };
}

/** The URI SANs of a Node `subjectaltname` string (`DNS:a, URI:spiffe://..., URI:"quoted, value"`). */
export function uriSans(subjectAltName: string): string[] {
  const out: string[] = [];
  let i = 0;
  const s = subjectAltName;
  while (i < s.length) {
    while (s[i] === ' ' || s[i] === ',') i++;
    const colon = s.indexOf(':', i);
    if (colon === -1) break;
    const type = s.slice(i, colon);
    i = colon + 1;
    let value: string;
    if (s[i] === '"') {
      // Node JSON-quotes values with special characters (CVE-2021-44532).
      let j = i + 1;
      while (j < s.length && s[j] !== '"') j += s[j] === '\\' ? 2 : 1;
      try {
        value = JSON.parse(s.slice(i, j + 1)) as string;
      } catch {
        return out;
      }
      i = j + 1;
    } else {
      const end = s.indexOf(', ', i);
      value = end === -1 ? s.slice(i) : s.slice(i, end);
      i = end === -1 ? s.length : end;
    }
    if (type === 'URI') out.push(value);
  }
  return out;
}

/** The SPIFFE identity of a certificate's single URI SAN, or undefined. */
export function identityOfSubjectAltName(subjectAltName: string | undefined): Identity | undefined {
  if (!subjectAltName) return undefined;
  const uris = uriSans(subjectAltName);
  if (uris.length !== 1) return undefined;
  const id = parseSpiffe(uris[0] as string);
  return id.ok ? id.value : undefined;
}

/** The verified peer's identity; undefined when the peer is unverified or has no single SPIFFE URI SAN. */
export function peerIdentity(socket: TLSSocket): Identity | undefined {
  if (!socket.authorized) return undefined;
  const peer = socket.getPeerCertificate();
  if (!peer || Object.keys(peer).length === 0) return undefined;
  return identityOfSubjectAltName(peer.subjectaltname);
}

