// What `ambit waypoint` and `ambit sidecar` share: a proxy process of a node that serves one
// pod — certificates from the control plane's CA with the node's credential, an optional
// admin/metrics listener, and a graceful stop on SIGTERM/SIGINT.
import { readFile } from 'node:fs/promises';
import { systemClock } from '../../core/clock.js';
import { parseAuthority } from '../../core/ip.js';
import type { Logger } from '../../core/logger.js';
import { formatSpiffe } from '../../identity/spiffe.js';
import { AdminServer } from '../../telemetry/admin-server.js';
import type { MetricsRegistry } from '../../telemetry/metrics.js';
import { CaClient } from '../../xds/ca-client.js';
import { controlPlaneIdentity, controlPlaneTls } from '../../xds/control-plane-tls.js';
import type { ClientTlsOptions, TokenSource } from '../../xds/credentials.js';
import { tokenFromFile } from '../../xds/token-file.js';
import { managedCertificates, type CertificateSource } from '../../dataplane/certificates.js';

/** The options both commands take (parseArgs definitions); the pod's identity comes on top. */
export const POD_PROXY_ARGS = {
  netns: { type: 'string' },
  'pod-ip': { type: 'string', default: process.env.POD_IP },
  node: { type: 'string', default: process.env.NODE_NAME },
  xds: { type: 'string' },
  'token-file': { type: 'string' },
  'root-cert': { type: 'string' },
  admin: { type: 'string' },
  'trust-domain': { type: 'string', default: 'cluster.local' },
  'root-namespace': { type: 'string', default: 'istio-system' },
  'xds-identity': { type: 'string' },
  'drain-ms': { type: 'string', default: '1500' },
} as const;

/** The POD_PROXY_ARGS that have no default and must be given. */
export const POD_PROXY_REQUIRED = ['netns', 'pod-ip', 'node', 'xds', 'token-file', 'root-cert'] as const;

export interface PodProxyCredentials {
  /** The proxy's credential, re-read when its file changes (rotated tokens). */
  token: TokenSource;
  /** TLS to the control plane: the mesh root, and the control plane's identity checked. */
  tls: ClientTlsOptions;
  ca: CaClient;
  certificates: CertificateSource;
}

/** The proxy's credential, the mesh root, and certificates signed by the control plane's CA. */
export async function podProxyCredentials(o: { xds: string; tokenFile: string; rootCert: string; trustDomain: string; xdsIdentity?: string; logger: Logger }): Promise<PodProxyCredentials> {
  const token = tokenFromFile(o.tokenFile);
  const rootPem = await readFile(o.rootCert, 'utf8');
  const tls = controlPlaneTls(rootPem, o.xdsIdentity ?? controlPlaneIdentity(o.trustDomain));
  const ca = new CaClient({ address: o.xds, token, tls });
  const certificates = managedCertificates({
    fetch: (csrPem, identity) => ca.createCertificate({ csrPem, ttlSeconds: 24 * 3600, impersonatedIdentity: formatSpiffe(identity) }),
    rootPem, clock: systemClock, logger: o.logger,
  });
  return { token, tls, ca, certificates };
}

/** /metrics, /stats/prometheus, /healthz/ready and /config_dump on `address` (ip:port). */
export async function podProxyAdmin(address: string, o: {
  logger: Logger; metrics: MetricsRegistry; ready: () => { ready: boolean; reason?: string }; configDump: () => unknown;
}): Promise<AdminServer> {
  const a = parseAuthority(address);
  if (!a) throw new Error(`--admin "${address}" is not ip:port`);
  const admin = new AdminServer({ logger: o.logger, metrics: o.metrics, ready: o.ready, routes: { '/config_dump': () => ({ json: o.configDump() }) } });
  await admin.listen(a.ip, a.port);
  return admin;
}

/** Resolves after SIGTERM or SIGINT once `stop(signal)` has finished. */
export function untilStopped(logger: Logger, stop: (signal: 'SIGTERM' | 'SIGINT') => Promise<unknown>): Promise<void> {
  return new Promise<void>((resolve) => {
    const on = (sig: 'SIGTERM' | 'SIGINT'): void => {
      logger.info('shutting down', { signal: sig });
      void stop(sig).then(() => resolve(), () => resolve());
    };
    process.once('SIGTERM', () => on('SIGTERM'));
    process.once('SIGINT', () => on('SIGINT'));
  });
}
