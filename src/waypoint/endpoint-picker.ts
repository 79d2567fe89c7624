// Which endpoint of a service gets the next request (pure state machine; no sockets).
//
// Invariants:
// - Least request, as Istio's default: among the candidates with the fewest requests in
//   flight, round robin. With one request at a time this is plain round robin.
// - An endpoint whose connect failed is skipped for `failureCooldownMs` (unless every
//   candidate is cooling down: then all are tried again rather than none).
// - Unhealthy endpoints (workload status) are never picked; `exclude` removes endpoints a
//   retry already tried.
export interface PickCandidate {
  uid: string;
  healthy: boolean;
}

export interface EndpointPickerOptions {
  now: () => number;
  failureCooldownMs?: number;
}

export class EndpointPicker {
  private readonly inFlight = new Map<string, number>();
  private readonly failedAt = new Map<string, number>();
  private readonly cursor = new Map<string, number>();
  private readonly cooldownMs: number;

  constructor(private readonly opts: EndpointPickerOptions) {
    this.cooldownMs = opts.failureCooldownMs ?? 5_000;
  }

  pick<C extends PickCandidate>(serviceKey: string, candidates: readonly C[], exclude: ReadonlySet<string> = new Set()): C | undefined {
    const now = this.opts.now();
    const usable = candidates.filter((c) => c.healthy && !exclude.has(c.uid));
    const warm = usable.filter((c) => now - (this.failedAt.get(c.uid) ?? -Infinity) >= this.cooldownMs);
    const pool = warm.length > 0 ? warm : usable;
    if (pool.length === 0) return undefined;
    const least = Math.min(...pool.map((c) => this.inFlight.get(c.uid) ?? 0));
    const best = pool.filter((c) => (this.inFlight.get(c.uid) ?? 0) === least);
    const i = this.cursor.get(serviceKey) ?? 0;
    this.cursor.set(serviceKey, i + 1);
    return best[i % best.length];
  }

  started(uid: string): void {
    this.inFlight.set(uid, (this.inFlight.get(uid) ?? 0) + 1);
  }

  finished(uid: string): void {
    const n = (this.inFlight.get(uid) ?? 1) - 1;
    if (n <= 0) this.inFlight.delete(uid);
    else this.inFlight.set(uid, n);
  }

  connectFailed(uid: string): void {
    this.failedAt.set(uid, this.opts.now());
  }

  connected(uid: string): void {
    this.failedAt.delete(uid);
  }
}
