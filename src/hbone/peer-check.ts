// Who may talk HBONE with whom: the two identity checks, as pure functions over what the TLS
// handshake produced.
//
// Invariants:
// - Server side: a connection is used only when the client presented a certificate, the
//   chain verified against the mesh root (Node's `authorized`), ALPN is `h2`, the leaf has
//   exactly one URI SAN that is a valid SPIFFE ID, and its trust domain is ours.
// - Client side: the server's leaf must have exactly one URI SAN, a SPIFFE ID equal (in its
//   one canonical spelling) to one of the expected identities. The check runs inside the
//   handshake (tls `checkServerIdentity`), so a wrong peer fails before any application byte.
import { identityOfSubjectAltName, uriSans } from '../identity/workload-certificate.js';
import { formatSpiffe } from '../identity/spiffe.js';

export interface ClientHandshakeFacts {
  authorized: boolean;
  authorizationError?: string | undefined;
  /** False when the client sent no certificate. */
  hasCertificate: boolean;
  subjectAltName: string | undefined;
  alpnProtocol: string | false | null | undefined;
}

export type PeerRefusalKind = 'no_certificate' | 'untrusted' | 'alpn' | 'identity' | 'trust_domain';
export type PeerVerdict = { ok: true; identity: string } | { ok: false; kind: PeerRefusalKind; reason: string; identity?: string };

/** The server's decision about a client after the TLS handshake. */
export function checkClientPeer(facts: ClientHandshakeFacts, trustDomain: string): PeerVerdict {
  if (!facts.hasCertificate) return { ok: false, kind: 'no_certificate', reason: 'client presented no certificate' };
  if (!facts.authorized) {
    return { ok: false, kind: 'untrusted', reason: `client certificate not trusted: ${facts.authorizationError ?? 'unknown verification error'}` };
  }
  if (facts.alpnProtocol !== 'h2') return { ok: false, kind: 'alpn', reason: `ALPN h2 was not negotiated (got ${String(facts.alpnProtocol)})` };
  const id = identityOfSubjectAltName(facts.subjectAltName);
  if (!id) return { ok: false, kind: 'identity', reason: 'client certificate has no single SPIFFE URI SAN' };
  const identity = formatSpiffe(id);
  if (id.trustDomain !== trustDomain) {
    return { ok: false, kind: 'trust_domain', reason: `client identity ${identity} is not in trust domain ${trustDomain}`, identity };
  }
  return { ok: true, identity };
}

/** Why the server certificate's SAN is not acceptable, or undefined when it is. */
export function checkServerSan(subjectAltName: string | undefined, expected: readonly string[]): string | undefined {
  const id = identityOfSubjectAltName(subjectAltName);
  if (!id) {
    const sans = uriSans(subjectAltName ?? '');
    return `server certificate has ${sans.length ? `URI SANs ${sans.join(', ')}` : 'no URI SAN'}, not one SPIFFE identity`;
  }
  const identity = formatSpiffe(id);
  if (!expected.includes(identity)) return `server identity ${identity} is not one of the expected ${expected.join(', ')}`;
  return undefined;
}
