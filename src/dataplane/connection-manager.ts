// The live inbound connections of a ztunnel, so that a policy change can close those that
// no longer pass (a connection is authorized when it opens and again on every policy
// change, as Istio's ztunnel does), and so that shutdown can drain them.
//
// Invariants:
// - Every accepted inbound connection is registered until its relay is done.
// - recheck() evaluates each live connection against the new state with the same decision
//   as a new connection; a connection whose workload left or that is now denied is aborted
//   (both sides reset) with the reason recorded on its telemetry record.
import { delay, type Clock } from '../core/clock.js';
import type { Decision } from '../rbac/index.js';
import type { ConnectionRecord } from '../telemetry/connection-record.js';
import { denyConnection } from '../telemetry/connection-record.js';
import { authorize, type InboundRequest } from './inbound-decision.js';
import type { MeshView } from './mesh-view.js';

export interface LiveConnection {
  workloadUid: string;
  request: InboundRequest;
  record: ConnectionRecord;
  abort(reason: string): void;
}

export class ConnectionManager {
  private readonly live = new Set<LiveConnection>();

  constructor(private readonly clock: Clock) {}

  get size(): number {
    return this.live.size;
  }

  add(c: LiveConnection): () => void {
    this.live.add(c);
    return () => { this.live.delete(c); };
  }

  /** Close what the new state no longer allows; returns what was closed and why. */
  recheck(state: MeshView): { closed: number; reasons: string[] } {
    const reasons: string[] = [];
    for (const c of [...this.live]) {
      const w = state.workloads.get(c.workloadUid);
      let verdict: Decision | undefined;
      if (!w) {
        reasons.push(`${c.record.id}: destination workload left`);
        c.abort('destination workload left the mesh');
      } else if ((verdict = authorize(state, w, c.request)).decision === 'DENY') {
        denyConnection(c.record, { policy: verdict.policy, rule: verdict.ruleIndex, message: `policy changed: ${verdict.reason}` });
        reasons.push(`${c.record.id}: ${verdict.reason}`);
        c.abort(`policy changed: ${verdict.reason}`);
      } else {
        continue;
      }
      this.live.delete(c);
    }
    return { closed: reasons.length, reasons };
  }

  /** Wait for live connections to finish, up to the deadline; then abort the rest. */
  async drain(deadlineMs: number): Promise<number> {
    const until = this.clock.now() + deadlineMs;
    while (this.live.size > 0 && this.clock.now() < until) await delay(this.clock, Math.min(100, Math.max(1, until - this.clock.now())));
    const left = this.live.size;
    for (const c of [...this.live]) c.abort('ztunnel shutting down');
    this.live.clear();
    return left;
  }
}
