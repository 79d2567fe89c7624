// The workload certificates a ztunnel holds: one per identity of a workload on its node,
// obtained when the workload appears, renewed at half life, forgotten when it leaves.
// Backed by the identity room's CertificateManager; the fetcher is either the control
// plane's CA service (gRPC) or, for a standalone ztunnel, a local CA directory.
import type { Clock } from '../core/clock.js';
import { AmbitError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { MeshCA } from '../identity/ca.js';
import { CertificateManager, type CertificateFetcher, type CertificateStatus } from '../identity/cert-manager.js';
import { mustParseSpiffe } from '../identity/spiffe.js';
import type { WorkloadCertificate } from '../identity/workload-certificate.js';

export interface CertificateSource {
  get(identity: string): Promise<WorkloadCertificate>;
  current(identity: string): WorkloadCertificate | undefined;
  forget(identity: string): void;
  list(): CertificateStatus[];
  close(): void;
}

/**
 * The current certificate of `identity`, for a TLS handshake happening now; throws when there
 * is none (fetch with get() first). What HBONE servers and pools call per handshake.
 */
export function currentCertificate(source: CertificateSource, identity: string): WorkloadCertificate {
  const c = source.current(identity);
  if (!c) throw new AmbitError('AMBIT_ERR_CERT', `no valid certificate for ${identity}`, { hint: 'the CA has not issued it yet or it expired; see the certificate errors in this log' });
  return c;
}

export function managedCertificates(opts: { fetch: CertificateFetcher; rootPem: string; clock: Clock; logger: Logger }): CertificateSource {
  const mgr = new CertificateManager({ fetch: opts.fetch, rootPem: opts.rootPem, clock: opts.clock, logger: opts.logger });
  return {
    get: (id) => mgr.get(mustParseSpiffe(id)),
    current: (id) => mgr.current(mustParseSpiffe(id)),
    forget: (id) => { mgr.forget(mustParseSpiffe(id)); },
    list: () => mgr.list(),
    close: () => mgr.close(),
  };
}

/** Sign with a CA held in this process (standalone ztunnel, tests). */
export function localCaFetcher(ca: MeshCA, ttlSeconds?: number): CertificateFetcher {
  return async (csrPem, identity) => {
    const r = await ca.sign({ csrPem, identity, ttlSeconds });
    if (!r.ok) throw r.error;
    return r.value.certChainPem;
  };
}
