// Leader election on a coordination.k8s.io/v1 Lease, the way client-go's leaderelection does
// it, so that of several control-plane replicas one writes status and keeps waypoint and
// gateway Deployments (every replica serves xDS and the CA).
//
// Invariants:
// - The decision (decideLease) is pure: given the Lease as read, who we are, the time we
//   first saw its current record and the lease duration, it says create, renew, take over or
//   follow. A holder is considered gone when its record has not changed for a whole lease
//   duration by *our* clock (client-go's rule: clocks of two machines are never compared).
// - Writes are optimistic: create fails with 409 if someone else created it first, replace
//   carries the resourceVersion read and fails with 409 if the Lease moved meanwhile. Either
//   way we read again at the next tick; nothing is forced.
// - A leader that cannot renew for renewDeadline steps down (onStoppedLeading) before its
//   lease can expire for the others, so two replicas never both believe they lead for long.
// - On close, a leader gives the lease up (holder cleared), so a successor need not wait.
import * as k8s from '@kubernetes/client-node';
import type { Clock, TimerHandle } from '../core/clock.js';
import { describeError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';

/** The Lease the control-plane replicas hold to decide who writes status and applies objects. */
export const LEADER_LEASE = 'ambit-control-plane-leader';

export interface LeaseRecord {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

export type LeaseAction =
  | { kind: 'create' }
  | { kind: 'renew' }
  | { kind: 'takeover'; transitions: number }
  | { kind: 'follow'; holder: string; expiresInMs: number };

/**
 * What to do with the Lease. `observedAtMs` is when we first saw its current record (holder
 * and renewTime) on our own clock.
 */
export function decideLease(current: LeaseRecord | undefined, me: string, nowMs: number, observedAtMs: number, leaseDurationMs: number): LeaseAction {
  if (!current) return { kind: 'create' };
  const holder = current.holderIdentity ?? '';
  if (holder === me) return { kind: 'renew' };
  const expiresInMs = holder === '' ? 0 : observedAtMs + leaseDurationMs - nowMs;
  if (expiresInMs <= 0) return { kind: 'takeover', transitions: (current.leaseTransitions ?? 0) + 1 };
  return { kind: 'follow', holder, expiresInMs };
}

export interface LeaderElectionOptions {
  kubeConfig: k8s.KubeConfig;
  namespace: string;
  /** The Lease's name. */
  name: string;
  /** This replica (its pod name). */
  identity: string;
  clock: Clock;
  logger: Logger;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  onStartedLeading(): void;
  onStoppedLeading(): void;
}

interface LeaseObject {
  metadata?: { resourceVersion?: string };
  spec?: LeaseRecord;
}

export class LeaderElector {
  private readonly api: k8s.CoordinationV1Api;
  private leading = false;
  private timer: TimerHandle | undefined;
  /** The tick in progress (a read and maybe a write): close() waits for it. */
  private inflight: Promise<void> | undefined;
  private closed = false;
  /** The record last read and when we first saw it. */
  private observed: { key: string; atMs: number } | undefined;
  private lastRenewMs = 0;

  constructor(private readonly opts: LeaderElectionOptions) {
    this.api = opts.kubeConfig.makeApiClient(k8s.CoordinationV1Api);
  }

  isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    this.tick();
  }

  /** Stops; a leader gives the lease up unless `release` is false (as a crash would leave it). */
  async close(release = true): Promise<void> {
    this.closed = true;
    this.timer?.cancel();
    await this.inflight;
    const wasLeading = this.leading;
    if (wasLeading) this.setLeading(false);
    if (!release || !wasLeading) return;
    try {
      const cur = await this.read();
      if (cur?.spec?.holderIdentity === this.opts.identity) {
        await this.write(cur, { ...cur.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: this.microNow() });
      }
    } catch (e: unknown) {
      this.opts.logger.debug('could not give up the lease', { lease: this.opts.name, error: describeError(e).message });
    }
  }

  private get durationMs(): number {
    return this.opts.leaseDurationMs ?? 15_000;
  }

  private tick(): void {
    if (this.closed) return;
    this.inflight = this.attempt().finally(() => { this.inflight = undefined; });
  }

  private async attempt(): Promise<void> {
    try {
      await this.tryAcquireOrRenew();
    } catch (e: unknown) {
      this.opts.logger.debug('lease read or write failed', { lease: this.opts.name, error: describeError(e).message });
    }
    if (this.leading && this.opts.clock.now() - this.lastRenewMs > (this.opts.renewDeadlineMs ?? 10_000)) {
      this.opts.logger.warn('could not renew the leader lease in time; stepping down', { lease: this.opts.name, identity: this.opts.identity });
      this.setLeading(false);
    }
    if (!this.closed) this.timer = this.opts.clock.setTimeout(() => this.tick(), this.opts.retryPeriodMs ?? 2_000);
  }

  private async tryAcquireOrRenew(): Promise<void> {
    const now = this.opts.clock.now();
    const cur = await this.read();
    const key = `${cur?.spec?.holderIdentity ?? ''}|${cur?.spec?.renewTime ?? ''}|${cur?.metadata?.resourceVersion ?? ''}`;
    if (this.observed?.key !== key) this.observed = { key, atMs: now };
    const action = decideLease(cur?.spec, this.opts.identity, now, this.observed.atMs, this.durationMs);
    const seconds = Math.ceil(this.durationMs / 1000);
    switch (action.kind) {
      case 'create':
        await this.api.createNamespacedLease({
          namespace: this.opts.namespace,
          body: { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: this.opts.name, namespace: this.opts.namespace }, spec: { holderIdentity: this.opts.identity, leaseDurationSeconds: seconds, acquireTime: this.microNow(), renewTime: this.microNow(), leaseTransitions: 0 } as k8s.V1LeaseSpec },
        });
        break;
      case 'renew':
        await this.write(cur!, { ...cur!.spec, leaseDurationSeconds: seconds, renewTime: this.microNow() });
        break;
      case 'takeover':
        await this.write(cur!, { holderIdentity: this.opts.identity, leaseDurationSeconds: seconds, acquireTime: this.microNow(), renewTime: this.microNow(), leaseTransitions: action.transitions });
        this.opts.logger.info('took over the leader lease', { lease: this.opts.name, identity: this.opts.identity, previous: cur?.spec?.holderIdentity || null });
        break;
      case 'follow':
        if (this.leading) this.setLeading(false);
        return;
    }
    this.lastRenewMs = now;
    if (!this.leading) this.setLeading(true);
  }

  private setLeading(v: boolean): void {
    this.leading = v;
    this.opts.logger.info(v ? 'leading' : 'not leading', { lease: this.opts.name, identity: this.opts.identity });
    if (v) this.opts.onStartedLeading();
    else this.opts.onStoppedLeading();
  }

  private async read(): Promise<LeaseObject | undefined> {
    try {
      return await this.api.readNamespacedLease({ name: this.opts.name, namespace: this.opts.namespace }) as unknown as LeaseObject;
    } catch (e: unknown) {
      if ((e as { code?: number }).code === 404) return undefined;
      throw e;
    }
  }

  private async write(cur: LeaseObject, spec: Record<string, unknown>): Promise<void> {
    await this.api.replaceNamespacedLease({
      name: this.opts.name, namespace: this.opts.namespace,
      body: { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: this.opts.name, namespace: this.opts.namespace, resourceVersion: cur.metadata?.resourceVersion }, spec: spec as k8s.V1LeaseSpec },
    });
  }

  private microNow(): k8s.V1MicroTime {
    return new k8s.V1MicroTime(this.opts.clock.now());
  }
}
