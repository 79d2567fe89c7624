// Outlier detection for one upstream cluster (Envoy's consecutive-error detectors, as
// DestinationRule outlierDetection configures them): a pure state machine over time given
// by the caller (the proxy passes its Clock's now()).
//
// Invariants:
// - Per endpoint, consecutive 5xx answers (and connect failures, which Envoy counts as 503
//   when local-origin errors are not split) count towards consecutive5xx; 502/503/504 and
//   connect failures towards consecutiveGateway (0 disables it). Any other answer resets both.
// - Reaching a threshold ejects the endpoint at once, unless ejecting it would leave more than
//   maxEjectionPercent of the cluster ejected — except that one endpoint may always be ejected
//   when none is (Envoy ejects the first host whatever the percentage rounds to).
// - An ejected endpoint comes back baseEjection × (times ejected) after its ejection; the
//   multiplier falls by one for each interval the endpoint spends back without being ejected.
// - Below minHealthPercent of endpoints usable, ejection is ignored (panic: all are used);
//   0 (Istio's default) disables that.
import type { OutlierSettings } from './policy.js';

interface HostState {
  consecutive5xx: number;
  consecutiveGateway: number;
  ejectedUntil: number;
  times: number;
  /** When the multiplier was last lowered (or the endpoint came back). */
  backSince: number;
}

export type Outcome = { kind: 'response'; status: number } | { kind: 'connect-failed' } | { kind: 'reset' };

export class OutlierState {
  private readonly hosts = new Map<string, HostState>();

  constructor(private readonly settings: OutlierSettings) {}

  /** Records one outcome; true when it ejected the endpoint. `total`: endpoints in the cluster. */
  record(uid: string, outcome: Outcome, now: number, total: number): boolean {
    const h = this.host(uid, now);
    const status = outcome.kind === 'response' ? outcome.status : 503;
    const gateway = outcome.kind !== 'response' || status === 502 || status === 503 || status === 504;
    if (status >= 500) h.consecutive5xx++;
    else h.consecutive5xx = 0;
    if (gateway) h.consecutiveGateway++;
    else h.consecutiveGateway = 0;
    if (h.ejectedUntil > now) return false;
    const s = this.settings;
    const hit = (s.consecutive5xx > 0 && h.consecutive5xx >= s.consecutive5xx) || (s.consecutiveGateway > 0 && h.consecutiveGateway >= s.consecutiveGateway);
    if (!hit) return false;
    const ejected = this.ejectedCount(now);
    if (ejected > 0 && (100 * (ejected + 1)) / Math.max(1, total) > s.maxEjectionPercent) return false;
    h.times++;
    h.ejectedUntil = now + s.baseEjectionMs * h.times;
    h.consecutive5xx = 0;
    h.consecutiveGateway = 0;
    return true;
  }

  isEjected(uid: string, now: number): boolean {
    const h = this.hosts.get(uid);
    return h !== undefined && h.ejectedUntil > now;
  }

  /** The candidates load balancing may use: the ejected ones removed (unless in panic). */
  usable<C extends { uid: string }>(candidates: readonly C[], now: number): C[] {
    const kept = candidates.filter((c) => !this.isEjected(c.uid, now));
    const min = this.settings.minHealthPercent;
    if (min > 0 && candidates.length > 0 && (100 * kept.length) / candidates.length < min) return [...candidates];
    return kept;
  }

  ejectedCount(now: number): number {
    let n = 0;
    for (const h of this.hosts.values()) if (h.ejectedUntil > now) n++;
    return n;
  }

  /** Endpoints that left the cluster are forgotten. */
  retain(keep: (uid: string) => boolean): void {
    for (const uid of this.hosts.keys()) if (!keep(uid)) this.hosts.delete(uid);
  }

  private host(uid: string, now: number): HostState {
    let h = this.hosts.get(uid);
    if (!h) {
      h = { consecutive5xx: 0, consecutiveGateway: 0, ejectedUntil: 0, times: 0, backSince: now };
      this.hosts.set(uid, h);
    }
    // Back for whole intervals without ejection: the multiplier falls.
    if (h.times > 0 && h.ejectedUntil <= now) {
      const from = Math.max(h.backSince, h.ejectedUntil);
      const intervals = Math.floor((now - from) / Math.max(1, this.settings.intervalMs));
      if (intervals > 0) {
        h.times = Math.max(0, h.times - intervals);
        h.backSince = from + intervals * this.settings.intervalMs;
      }
    }
    return h;
  }
}
