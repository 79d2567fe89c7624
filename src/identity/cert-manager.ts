// CertificateManager: obtains, caches and rotates the workload certificates a node proxy
// presents on behalf of its workloads (ztunnel's SecretManager).
//
// Invariants:
// - At most one certificate request per identity is in flight. Concurrent get() calls for an
//   identity without a certificate share that request's promise.
// - get() returns the cached certificate while it is valid (now < notAfter), even while a
//   renewal is in flight or failing: a failed renewal never takes a valid certificate away.
//   An expired certificate is never returned.
// - Every successful request schedules exactly one renewal, at notBefore + (notAfter -
//   notBefore) / 2 (half life), and never sooner than MIN_RENEWAL_DELAY_MS from now (so a CA
//   that issues nearly expired certificates cannot make us spin).
// - Every failed request schedules exactly one retry, after retryInitialMs * 2^(failures-1)
//   (±10% jitter), capped at retryMaxMs. Failures reset to 0 after a success.
// - While no valid certificate exists and a retry is waiting, get() rejects at once with the
//   last error (callers fail fast; the backoff, not the traffic, paces the CA).
// - Each request uses a fresh key (generateKeyAndCsr); keys rotate with certificates.
// - forget() and close() cancel the identity's timer and drop it; a request still in flight
//   then resolves its waiters but is neither cached nor rescheduled, and emits no event.
// - Listeners run synchronously; one that throws is logged and does not affect the others.
import type { Clock, TimerHandle } from '../core/clock.js';
import { AmbitError } from '../core/errors.js';
import type { Logger, Tracer } from '../core/logger.js';
import { generateKeyAndCsr as defaultGenerateKeyAndCsr, type KeyAndCsr } from './csr.js';
import { formatSpiffe, type Identity } from './spiffe.js';
import { workloadCertificateFromChain, type WorkloadCertificate } from './workload-certificate.js';

/** Sends a CSR to the CA for an identity; resolves to the chain (leaf first, root last). */
export type CertificateFetcher = (csrPem: string, identity: Identity) => Promise<string[]>;

export interface CertificateManagerOptions {
  fetch: CertificateFetcher;
  /** Trust bundle the issued chains must lead to. */
  rootPem: string;
  clock: Clock;
  logger: Logger;
  /** First retry delay after a failure; default 1000 ms. */
  retryInitialMs?: number;
  /** Largest retry delay; default 60000 ms. */
  retryMaxMs?: number;
  /** Key + CSR generation; defaults to a fresh ECDSA P-256 key per request. */
  generateKeyAndCsr?: (identity: Identity) => Promise<KeyAndCsr>;
  /** Source of jitter in [0, 1); default Math.random. 0.5 means no jitter. */
  random?: () => number;
}

export type CertificateState =
  /** First request in flight, nothing to serve yet. */
  | 'pending'
  /** Serving a valid certificate; renewal scheduled. */
  | 'valid'
  /** Serving a valid certificate; renewal in flight. */
  | 'renewing'
  /** Serving a valid certificate; the last renewal failed and a retry is scheduled. */
  | 'retrying'
  /** Nothing valid to serve; a retry is scheduled (or due). */
  | 'unavailable';

export interface CertificateStatus {
  identity: Identity;
  /** spiffe://... */
  spiffe: string;
  state: CertificateState;
  notBefore?: Date;
  notAfter?: Date;
  /** When the next renewal or retry is due, if one is scheduled. */
  nextAttemptAt?: Date;
  /** Consecutive failed requests. */
  failures: number;
  lastError?: string;
}

export interface RenewedEvent {
  identity: Identity;
  certificate: WorkloadCertificate;
  /** True for an identity's first certificate. */
  initial: boolean;
}

export interface FailedEvent {
  identity: Identity;
  error: AmbitError;
  /** Consecutive failures, this one included. */
  failures: number;
  retryInMs: number;
  /** True when a valid older certificate is still being served. */
  servingPrevious: boolean;
}

export interface CertificateManagerEvents {
  renewed: (event: RenewedEvent) => void;
  failed: (event: FailedEvent) => void;
}

interface Entry {
  identity: Identity;
  key: string;
  cert?: WorkloadCertificate;
  inflight?: Promise<WorkloadCertificate>;
  timer?: TimerHandle;
  nextAttemptAt?: number;
  failures: number;
  lastError?: AmbitError;
}

export const DEFAULT_RETRY_INITIAL_MS = 1000;
export const DEFAULT_RETRY_MAX_MS = 60_000;
export const MIN_RENEWAL_DELAY_MS = 1000;

/** Half of the certificate's life after its notBefore. */
export function renewalTime(cert: Pick<WorkloadCertificate, 'notBefore' | 'notAfter'>): number {
  const from = cert.notBefore.getTime();
  return from + Math.floor((cert.notAfter.getTime() - from) / 2);
}

/** Backoff before retry number `failures` (1-based), before jitter. */
export function retryDelayMs(failures: number, initialMs: number, maxMs: number): number {
  return Math.min(maxMs, initialMs * 2 ** Math.min(Math.max(0, failures - 1), 30));
}

export class CertificateManager {
  private readonly fetchChain: CertificateFetcher;
  private readonly rootPem: string;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly trace: Tracer;
  private readonly retryInitialMs: number;
  private readonly retryMaxMs: number;
  private readonly makeKeyAndCsr: (identity: Identity) => Promise<KeyAndCsr>;
  private readonly random: () => number;
  private readonly entries = new Map<string, Entry>();
  private readonly listeners: { [K in keyof CertificateManagerEvents]: Set<CertificateManagerEvents[K]> } = {
    renewed: new Set(),
    failed: new Set(),
  };
  private closed = false;

  constructor(options: CertificateManagerOptions) {
    this.fetchChain = options.fetch;
    this.rootPem = options.rootPem;
    this.clock = options.clock;
    this.logger = options.logger;
    this.trace = options.logger.tracer('cert');
    this.retryInitialMs = options.retryInitialMs ?? DEFAULT_RETRY_INITIAL_MS;
    this.retryMaxMs = Math.max(this.retryInitialMs, options.retryMaxMs ?? DEFAULT_RETRY_MAX_MS);
    this.makeKeyAndCsr = options.generateKeyAndCsr ?? defaultGenerateKeyAndCsr;
    this.random = options.random ?? Math.random;
  }

  /** The identity's certificate: cached if valid, else the (shared) request for one. */
  get(identity: Identity): Promise<WorkloadCertificate> {
    if (this.closed) {
      return Promise.reject(new AmbitError('AMBIT_ERR_CERT', `certificate manager is closed; cannot get ${formatSpiffe(identity)}`));
    }
    const key = formatSpiffe(identity);
    let entry = this.entries.get(key);
    if (!entry) {
      entry = { identity, key, failures: 0 };
      this.entries.set(key, entry);
      return this.request(entry);
    }
    const valid = this.validCert(entry);
    if (valid) return Promise.resolve(valid);
    if (entry.inflight) return entry.inflight;
    if (entry.lastError && entry.timer) {
      const inMs = Math.max(0, (entry.nextAttemptAt ?? this.clock.now()) - this.clock.now());
      return Promise.reject(new AmbitError('AMBIT_ERR_CERT', `no valid certificate for ${key}: ${entry.lastError.message} (retrying in ${Math.ceil(inMs / 1000)}s)`, {
        cause: entry.lastError,
        hint: entry.lastError.hint ?? 'is the control plane CA reachable from this node?',
      }));
    }
    // Expired with no renewal pending (timers held up): ask now.
    return this.request(entry);
  }

  /** The identity's valid certificate if one is cached; never starts a request. */
  current(identity: Identity): WorkloadCertificate | undefined {
    const entry = this.entries.get(formatSpiffe(identity));
    return entry ? this.validCert(entry) : undefined;
  }

  /** Stops renewing an identity and drops its certificate. Returns whether it was known. */
  forget(identity: Identity): boolean {
    const key = formatSpiffe(identity);
    const entry = this.entries.get(key);
    if (!entry) return false;
    entry.timer?.cancel();
    entry.timer = undefined;
    this.entries.delete(key);
    if (this.trace.enabled) this.trace.log('forgot identity', { identity: key });
    return true;
  }

  /** One row per identity, for /config_dump. */
  list(): CertificateStatus[] {
    const now = this.clock.now();
    return [...this.entries.values()]
      .map((e): CertificateStatus => {
        const valid = e.cert !== undefined && now < e.cert.notAfter.getTime();
        const state: CertificateState = e.inflight
          ? (valid ? 'renewing' : 'pending')
          : !valid ? 'unavailable' : e.failures > 0 ? 'retrying' : 'valid';
        return {
          identity: e.identity,
          spiffe: e.key,
          state,
          notBefore: e.cert?.notBefore,
          notAfter: e.cert?.notAfter,
          nextAttemptAt: e.timer && e.nextAttemptAt !== undefined ? new Date(e.nextAttemptAt) : undefined,
          failures: e.failures,
          lastError: e.lastError?.message,
        };
      })
      .sort((a, b) => (a.spiffe < b.spiffe ? -1 : a.spiffe > b.spiffe ? 1 : 0));
  }

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof CertificateManagerEvents>(event: K, listener: CertificateManagerEvents[K]): () => void {
    const set = this.listeners[event] as Set<CertificateManagerEvents[K]>;
    set.add(listener);
    return () => { set.delete(listener); };
  }

  /** Cancels every timer and drops every certificate. get() rejects afterwards. */
  close(): void {
    this.closed = true;
    for (const entry of this.entries.values()) entry.timer?.cancel();
    this.entries.clear();
  }

  private validCert(entry: Entry): WorkloadCertificate | undefined {
    return entry.cert && this.clock.now() < entry.cert.notAfter.getTime() ? entry.cert : undefined;
  }

  private isLive(entry: Entry): boolean {
    return !this.closed && this.entries.get(entry.key) === entry;
  }

  private request(entry: Entry): Promise<WorkloadCertificate> {
    const identity = entry.identity;
    if (this.trace.enabled) this.trace.log('requesting certificate', { identity: entry.key, failures: entry.failures });
    const p = (async () => {
      try {
        const { keyPem, csrPem } = await this.makeKeyAndCsr(identity);
        const chain = await this.fetchChain(csrPem, identity);
        const built = workloadCertificateFromChain({ identity, keyPem, certChainPem: chain, rootPem: this.rootPem });
        if (!built.ok) throw built.error;
        return built.value;
      } catch (e: unknown) {
        if (e instanceof AmbitError) throw e;
        throw new AmbitError('AMBIT_ERR_CERT', `certificate request for ${entry.key} failed: ${e instanceof Error ? e.message : String(e)}`, {
          cause: e,
          hint: 'is the control plane CA reachable from this node?',
        });
      }
    })();
    entry.inflight = p;
    p.then(
      (cert) => this.succeeded(entry, p, cert),
      (e: unknown) => this.failedRequest(entry, p, e as AmbitError),
    );
    return p;
  }

  private succeeded(entry: Entry, p: Promise<WorkloadCertificate>, cert: WorkloadCertificate): void {
    if (entry.inflight === p) entry.inflight = undefined;
    if (!this.isLive(entry)) return;
    const initial = entry.cert === undefined;
    entry.cert = cert;
    entry.failures = 0;
    entry.lastError = undefined;
    const now = this.clock.now();
    const at = Math.max(renewalTime(cert), now + MIN_RENEWAL_DELAY_MS);
    this.schedule(entry, at);
    this.logger.info(initial ? 'certificate issued' : 'certificate renewed', {
      identity: entry.key,
      notAfter: cert.notAfter.toISOString(),
      renewAt: new Date(at).toISOString(),
    });
    this.emit('renewed', { identity: entry.identity, certificate: cert, initial });
  }

  private failedRequest(entry: Entry, p: Promise<WorkloadCertificate>, error: AmbitError): void {
    if (entry.inflight === p) entry.inflight = undefined;
    if (!this.isLive(entry)) return;
    entry.failures += 1;
    entry.lastError = error;
    const base = retryDelayMs(entry.failures, this.retryInitialMs, this.retryMaxMs);
    const jitter = 1 + (this.random() * 2 - 1) * 0.1;
    const retryInMs = Math.max(1, Math.min(this.retryMaxMs, Math.round(base * jitter)));
    this.schedule(entry, this.clock.now() + retryInMs);
    const servingPrevious = this.validCert(entry) !== undefined;
    this.logger.warn('certificate request failed', {
      identity: entry.key,
      code: error.code,
      error: error.message,
      failures: entry.failures,
      retryInMs,
      servingPrevious,
    });
    this.emit('failed', { identity: entry.identity, error, failures: entry.failures, retryInMs, servingPrevious });
  }

  private schedule(entry: Entry, atMs: number): void {
    entry.timer?.cancel();
    entry.nextAttemptAt = atMs;
    entry.timer = this.clock.setTimeout(() => {
      entry.timer = undefined;
      if (!this.isLive(entry) || entry.inflight) return;
      this.request(entry);
    }, atMs - this.clock.now());
  }

  private emit<K extends keyof CertificateManagerEvents>(event: K, payload: Parameters<CertificateManagerEvents[K]>[0]): void {
    for (const listener of this.listeners[event]) {
      try {
        (listener as (p: typeof payload) => void)(payload);
      } catch (e: unknown) {
        this.logger.error('certificate listener threw', { event, error: e instanceof Error ? e.message : String(e) });
      }
    }
  }
}
