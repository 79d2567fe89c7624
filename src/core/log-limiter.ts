// Logging something a peer can make happen at will (a refused self-call, a flood of bad
// handshakes) at most once per key and interval, so an attacker cannot turn it into a flood of
// log lines. The first event of a key in an interval is logged; the rest are counted and the
// count is reported with the next line that is logged for that key.
//
// Invariants:
// - Memory is bounded: at most `maxKeys` keys are remembered; when full, the oldest is dropped
//   (it may then be logged again early, which is harmless).
// - Pure bookkeeping over the Clock: no timers.
import type { Clock } from './clock.js';

export interface LogDecision {
  log: boolean;
  /** Events of this key not logged since the last line that was. */
  suppressed: number;
}

export class LogLimiter {
  private readonly last = new Map<string, { atMs: number; suppressed: number }>();

  constructor(private readonly clock: Clock, private readonly intervalMs = 10_000, private readonly maxKeys = 1024) {}

  /** Should this event of `key` be logged now? */
  allow(key: string): LogDecision {
    const now = this.clock.now();
    const seen = this.last.get(key);
    if (seen && now - seen.atMs < this.intervalMs) {
      seen.suppressed++;
      return { log: false, suppressed: seen.suppressed };
    }
    const suppressed = seen?.suppressed ?? 0;
    this.last.delete(key);
    if (this.last.size >= this.maxKeys) this.last.delete(this.last.keys().next().value!);
    this.last.set(key, { atMs: now, suppressed: 0 });
    return { log: true, suppressed };
  }
}
