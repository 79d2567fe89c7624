// Envoy's circuit breakers for one upstream cluster, as DestinationRule connectionPool sets
// them (pure state; the proxy calls it around each request).
//
// Invariants:
// - A request is admitted when fewer than maxRequests (http2MaxRequests) requests are active
//   and, for HTTP/1.1, fewer than maxConnections requests hold a connection; otherwise an
//   HTTP/1.1 request waits in line while fewer than maxPending (http1MaxPendingRequests) wait,
//   and anything beyond is an overflow: the proxy answers 503 with response flag UO.
// - HTTP/1.1 carries one request per connection at a time, so "requests holding a connection"
//   is the number of connections the cluster uses (Ambit keeps no idle connection beyond
//   that count's need: the keep-alive client reuses them).
// - Waiting requests are admitted in arrival order as active ones finish.
// - A retry is allowed while fewer than maxRetries retries are in flight (Envoy max_retries);
//   beyond, the request ends with what it had (response flag URX when it had nothing).
import type { PoolLimits } from './policy.js';

export type Admission = { kind: 'admitted' } | { kind: 'queued'; position: number } | { kind: 'overflow'; reason: 'max-connections' | 'max-pending' | 'max-requests' };

export interface PoolCounts {
  active: number;
  /** Active HTTP/1.1 requests (each holds a connection). */
  activeHttp1: number;
  pending: number;
  retries: number;
}

export function emptyCounts(): PoolCounts {
  return { active: 0, activeHttp1: 0, pending: 0, retries: 0 };
}

/** The decision for one new request (pure). */
export function admit(limits: PoolLimits, counts: PoolCounts, http1: boolean): Admission {
  if (counts.active >= limits.maxRequests) {
    if (!http1 || counts.pending >= limits.maxPending) return { kind: 'overflow', reason: 'max-requests' };
    return { kind: 'queued', position: counts.pending };
  }
  if (http1 && counts.activeHttp1 >= limits.maxConnections) {
    if (counts.pending >= limits.maxPending) return { kind: 'overflow', reason: counts.pending > 0 || limits.maxPending === 0 ? 'max-pending' : 'max-connections' };
    return { kind: 'queued', position: counts.pending };
  }
  return { kind: 'admitted' };
}

/** Whether a waiting request may start now. */
export function canStart(limits: PoolLimits, counts: PoolCounts, http1: boolean): boolean {
  return counts.active < limits.maxRequests && (!http1 || counts.activeHttp1 < limits.maxConnections);
}

export function retryAllowed(limits: PoolLimits, counts: PoolCounts): boolean {
  return counts.retries < limits.maxRetries;
}
