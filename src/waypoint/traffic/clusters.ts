// The runtime state of the upstream clusters a proxy sends to under DestinationRule policies:
// per cluster (host, port, subset) the circuit-breaker counts and waiting line, the
// round-robin cursor and the outlier detector. The decisions are the pure functions beside
// it (lb-pick.ts, pool-admission.ts, outlier.ts); this only keeps their state.
//
// Invariants:
// - State is keyed by the policy's cluster key and remembered while a config names it; a
//   new config with other limits applies them to the same counts (in-flight requests stay
//   counted until they finish).
// - Every lease is released exactly once (the proxy releases in `finally`); a release admits
//   the oldest waiting request that may start.
import type { Clock } from '../../core/clock.js';
import { admit, canStart, emptyCounts, retryAllowed, type PoolCounts } from './pool-admission.js';
import { OutlierState, type Outcome } from './outlier.js';
import { pickEndpoint } from './lb-pick.js';
import type { EffectivePolicy } from './policy.js';

interface ClusterState {
  counts: PoolCounts;
  waiting: { http1: boolean; start: () => void }[];
  cursor: number;
  outlier?: OutlierState;
  outlierKey: string;
  inFlight: Map<string, number>;
}

export interface Lease {
  release(): void;
}

export type Acquired = { kind: 'lease'; lease: Lease } | { kind: 'overflow'; reason: string };

export class UpstreamClusters {
  private readonly clusters = new Map<string, ClusterState>();

  constructor(private readonly opts: { clock: Pick<Clock, 'now'>; random: () => number }) {}

  /** Admission through the cluster's circuit breakers; waits in line when the policy allows. */
  async acquire(policy: EffectivePolicy, http1: boolean): Promise<Acquired> {
    const c = this.state(policy);
    const a = admit(policy.pool, c.counts, http1);
    if (a.kind === 'overflow') return { kind: 'overflow', reason: a.reason };
    if (a.kind === 'queued') {
      c.counts.pending++;
      // wake() counts it as active (and no longer pending) before it resumes.
      await new Promise<void>((resolve) => c.waiting.push({ http1, start: resolve }));
    } else {
      c.counts.active++;
      if (http1) c.counts.activeHttp1++;
    }
    let released = false;
    return {
      kind: 'lease',
      lease: {
        release: () => {
          if (released) return;
          released = true;
          c.counts.active--;
          if (http1) c.counts.activeHttp1--;
          this.wake(policy, c);
        },
      },
    };
  }

  /** A retry may start (Envoy max_retries); call `retryDone` when it ends. */
  retryStart(policy: EffectivePolicy): boolean {
    const c = this.state(policy);
    if (!retryAllowed(policy.pool, c.counts)) return false;
    c.counts.retries++;
    return true;
  }

  retryDone(policy: EffectivePolicy): void {
    const c = this.state(policy);
    c.counts.retries = Math.max(0, c.counts.retries - 1);
  }

  /** Candidates minus the ejected ones (outlier detection), in a stable order. */
  usable<C extends { uid: string }>(policy: EffectivePolicy, candidates: readonly C[]): C[] {
    const c = this.state(policy);
    const sorted = [...candidates].sort((a, b) => (a.uid < b.uid ? -1 : a.uid > b.uid ? 1 : 0));
    return c.outlier ? c.outlier.usable(sorted, this.opts.clock.now()) : sorted;
  }

  /** The endpoint for one attempt by the policy's load balancer (candidates already usable). */
  pick<C extends { uid: string }>(policy: EffectivePolicy, candidates: readonly C[], hashKey: string | undefined): C | undefined {
    const c = this.state(policy);
    const r = pickEndpoint({ policy: policy.lb, candidates: candidates.map((x) => ({ uid: x.uid, inFlight: c.inFlight.get(x.uid) ?? 0 })), cursor: c.cursor, hashKey, random: this.opts.random });
    if (!r) return undefined;
    c.cursor = r.nextCursor;
    return candidates.find((x) => x.uid === r.uid);
  }

  started(policy: EffectivePolicy, uid: string): void {
    const c = this.state(policy);
    c.inFlight.set(uid, (c.inFlight.get(uid) ?? 0) + 1);
  }

  finished(policy: EffectivePolicy, uid: string): void {
    const c = this.state(policy);
    const n = (c.inFlight.get(uid) ?? 1) - 1;
    if (n <= 0) c.inFlight.delete(uid);
    else c.inFlight.set(uid, n);
  }

  /** An attempt's outcome for outlier detection; true when it ejected the endpoint. */
  record(policy: EffectivePolicy, uid: string, outcome: Outcome, total: number): boolean {
    const c = this.state(policy);
    return c.outlier?.record(uid, outcome, this.opts.clock.now(), total) ?? false;
  }

  /** For /config_dump: the clusters with state. */
  describe(): Record<string, unknown>[] {
    const now = this.opts.clock.now();
    return [...this.clusters].map(([cluster, c]) => ({ cluster, ...c.counts, waiting: c.waiting.length, ejected: c.outlier?.ejectedCount(now) ?? 0 }));
  }

  private wake(policy: EffectivePolicy, c: ClusterState): void {
    const i = c.waiting.findIndex((w) => canStart(policy.pool, c.counts, w.http1));
    if (i < 0) return;
    const [w] = c.waiting.splice(i, 1);
    // Counted as active before it runs, so two releases in one turn cannot both admit past a limit.
    c.counts.pending--;
    c.counts.active++;
    if (w!.http1) c.counts.activeHttp1++;
    w!.start();
  }

  private state(policy: EffectivePolicy): ClusterState {
    let c = this.clusters.get(policy.cluster);
    const outlierKey = policy.outlier ? JSON.stringify(policy.outlier) : '';
    if (!c) {
      c = { counts: emptyCounts(), waiting: [], cursor: 0, outlierKey, inFlight: new Map(), ...(policy.outlier ? { outlier: new OutlierState(policy.outlier) } : {}) };
      this.clusters.set(policy.cluster, c);
    } else if (c.outlierKey !== outlierKey) {
      c.outlierKey = outlierKey;
      c.outlier = policy.outlier ? new OutlierState(policy.outlier) : undefined;
    }
    return c;
  }
}
export type { Outcome };
