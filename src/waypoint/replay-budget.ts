// The bytes of request bodies an L7 proxy keeps so that a retry or a mirror can send them
// again: at most MAX_REPLAY_BYTES per request, and at most `capacityBytes` for the whole
// process. A body that does not fit the budget is streamed once (no retry, no mirror) instead
// of being refused: the budget bounds memory, it never fails a request.
export const DEFAULT_REPLAY_BUDGET_BYTES = 64 * 1024 * 1024;

export class ReplayBudget {
  private used = 0;
  private exhausted = 0;

  constructor(readonly capacityBytes = DEFAULT_REPLAY_BUDGET_BYTES) {}

  /** Takes `n` bytes if they fit. */
  tryTake(n: number): boolean {
    if (this.used + n > this.capacityBytes) {
      this.exhausted++;
      return false;
    }
    this.used += n;
    return true;
  }

  give(n: number): void {
    this.used = Math.max(0, this.used - n);
  }

  stats(): { usedBytes: number; capacityBytes: number; exhausted: number } {
    return { usedBytes: this.used, capacityBytes: this.capacityBytes, exhausted: this.exhausted };
  }
}
