// How a proxy knows it talks to the real control plane before it sends its credential: TLS
// with the mesh root as the only trust anchor, and the server's certificate must carry the
// control plane's SPIFFE identity (URI SAN). A host name or IP SAN is not enough: any
// workload certificate chains to the same root.
import type { PeerCertificate } from 'node:tls';
import type { ClientTlsOptions } from './credentials.js';

export const CONTROL_PLANE_SERVICE_ACCOUNT = 'ambit-control-plane';

export function controlPlaneIdentity(trustDomain: string, namespace = 'istio-system'): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${CONTROL_PLANE_SERVICE_ACCOUNT}`;
}

/** The refusal when `cert` does not name `expected` (pure; undefined = accepted). */
export function checkControlPlaneCertificate(expected: string, cert: Pick<PeerCertificate, 'subjectaltname'>): Error | undefined {
  const sans = (cert.subjectaltname ?? '').split(/,\s*/).filter(Boolean);
  if (sans.includes(`URI:${expected}`)) return undefined;
  return Object.assign(new Error(`the server is not the control plane: its certificate names ${sans.join(', ') || 'nothing'}, expected URI:${expected}`), { code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
}

export function controlPlaneTls(rootCertPem: string, expectedIdentity: string): ClientTlsOptions {
  return { rootCertPem, checkServerIdentity: (_host, cert) => checkControlPlaneCertificate(expectedIdentity, cert) };
}
