// The control plane's own TLS certificate for xDS and the CA: issued by the mesh CA it runs,
// with the control plane's SPIFFE identity (what proxies check) and its address as DNS/IP SANs
// (what other TLS clients check), renewed at half life. It reaches the gRPC server through
// grpc-js's certificate-provider credentials, so a renewal applies to the next handshake
// without rebinding.
import { isIP } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import type { CertificateProvider, IdentityCertificateUpdateListener } from '@grpc/grpc-js/build/src/certificate-provider.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { MeshCA } from '../identity/ca.js';
import { mustParseSpiffe } from '../identity/spiffe.js';

export interface ServingCertificateOptions {
  ca: MeshCA;
  /** spiffe://<td>/ns/<ns>/sa/ambit-control-plane */
  identity: string;
  /** Host names and addresses clients use to reach the control plane. */
  hosts: readonly string[];
  ttlSeconds: number;
  clock: Clock;
  logger: Logger;
}

export class ServingCertificate implements CertificateProvider {
  private current: { certificate: Buffer; privateKey: Buffer; notAfter: Date } | undefined;
  private readonly listeners = new Set<IdentityCertificateUpdateListener>();
  private timer: TimerHandle | undefined;
  private closed = false;

  constructor(private readonly opts: ServingCertificateOptions) {}

  /** Issues the first certificate and keeps renewing it. */
  async start(): Promise<void> {
    await this.issue();
  }

  credentials(): grpc.ServerCredentials {
    // grpc-js's factory takes the identity provider first (its declaration names the
    // parameters the other way round). No CA provider: no client certificate is asked for,
    // proxies authenticate with bearer tokens.
    return grpc.experimental.createCertificateProviderServerCredentials(this, null, false);
  }

  notAfter(): Date | undefined {
    return this.current?.notAfter;
  }

  close(): void {
    this.closed = true;
    this.timer?.cancel();
  }

  addCaCertificateListener(): void {}
  removeCaCertificateListener(): void {}

  addIdentityCertificateListener(listener: IdentityCertificateUpdateListener): void {
    this.listeners.add(listener);
    // Delivered after the call returns: grpc-js registers its own watcher only after adding
    // this listener, and would miss a certificate handed over synchronously.
    const c = this.current;
    if (c) queueMicrotask(() => { if (this.listeners.has(listener)) listener({ certificate: c.certificate, privateKey: c.privateKey }); });
  }

  removeIdentityCertificateListener(listener: IdentityCertificateUpdateListener): void {
    this.listeners.delete(listener);
  }

  private async issue(): Promise<void> {
    const { opts } = this;
    const r = await opts.ca.issueWorkloadCertificate(mustParseSpiffe(opts.identity), opts.ttlSeconds, {
      dns: opts.hosts.filter((h) => isIP(h) === 0), ips: opts.hosts.filter((h) => isIP(h) !== 0),
    });
    if (!r.ok) throw r.error;
    const c = r.value;
    this.current = { certificate: Buffer.from(c.certChainPem.join('')), privateKey: Buffer.from(c.keyPem), notAfter: c.notAfter };
    for (const l of this.listeners) l({ certificate: this.current.certificate, privateKey: this.current.privateKey });
    opts.logger.info('serving certificate issued', { identity: opts.identity, hosts: opts.hosts, notAfter: c.notAfter.toISOString() });
    const renewInMs = Math.max(1_000, (c.notAfter.getTime() - opts.clock.now()) / 2);
    if (!this.closed) {
      this.timer = opts.clock.setTimeout(() => {
        this.issue().catch((e: unknown) => {
          opts.logger.error('serving certificate renewal failed; retrying in 60 s', { error: e instanceof Error ? e.message : String(e) });
          if (!this.closed) this.timer = opts.clock.setTimeout(() => void this.issue().catch(() => {}), 60_000);
        });
      }, renewInMs);
    }
  }
}
