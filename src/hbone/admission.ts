// Admission of inbound HBONE connections: how many a proxy holds at once, and how many one
// source address may hold, before the TLS handshake and after it. One instance is shared by
// every HBONE listener of a process (a ztunnel has one per pod), so the bounds are per
// process, not per pod: a flood of idle TCP connections or half-finished handshakes costs the
// flooder its own share, never other sources' connections, and never unbounded memory.
//
// Invariants:
// - Every accepted raw connection takes a ticket before anything is allocated for it, or is
//   destroyed at once (refused, counted by reason). A ticket is released exactly once, when
//   its connection closes, whatever happened to it.
// - Pending handshakes (connected, not yet a verified mTLS session) are bounded per source and
//   in all; sessions (verified) are bounded per source and in all. A source is the peer's IP.
// - The maps are keyed by peer input (the source IP) and bounded by the limits themselves: a
//   source appears only while it holds a ticket.

export interface HboneLimits {
  /** Connections not yet through the TLS handshake and the peer check, in all. Default 2048. */
  maxPendingHandshakes: number;
  /** The same, from one source address. Default 64. */
  maxPendingHandshakesPerSource: number;
  /** Verified HBONE sessions (HTTP/2 connections), in all. Default 16384. */
  maxSessions: number;
  /** The same, from one source address. Default 256. */
  maxSessionsPerSource: number;
}

export const DEFAULT_HBONE_LIMITS: HboneLimits = Object.freeze({
  maxPendingHandshakes: 2048,
  maxPendingHandshakesPerSource: 64,
  maxSessions: 16_384,
  maxSessionsPerSource: 256,
});

export type AdmissionRefusal = 'pending_handshakes' | 'pending_handshakes_per_source' | 'sessions' | 'sessions_per_source';

export interface AdmissionTicket {
  /** The handshake and peer check passed: the connection now counts as a session. */
  established(): AdmissionRefusal | undefined;
  release(): void;
}

export class HboneAdmission {
  private pending = 0;
  private sessions = 0;
  private readonly pendingBySource = new Map<string, number>();
  private readonly sessionsBySource = new Map<string, number>();
  private readonly refusedBy = new Map<AdmissionRefusal, number>();

  constructor(readonly limits: HboneLimits = DEFAULT_HBONE_LIMITS) {}

  /** A ticket for a new raw connection from `source`, or why it is refused. */
  admit(source: string): AdmissionTicket | AdmissionRefusal {
    if (this.pending >= this.limits.maxPendingHandshakes) return this.refused('pending_handshakes');
    if ((this.pendingBySource.get(source) ?? 0) >= this.limits.maxPendingHandshakesPerSource) return this.refused('pending_handshakes_per_source');
    this.pending++;
    inc(this.pendingBySource, source);
    let state: 'pending' | 'session' | 'released' = 'pending';
    return {
      established: () => {
        if (state !== 'pending') return undefined;
        const why = this.sessions >= this.limits.maxSessions ? 'sessions'
          : (this.sessionsBySource.get(source) ?? 0) >= this.limits.maxSessionsPerSource ? 'sessions_per_source' : undefined;
        this.pending--;
        dec(this.pendingBySource, source);
        if (why) {
          state = 'released';
          return this.refused(why);
        }
        state = 'session';
        this.sessions++;
        inc(this.sessionsBySource, source);
        return undefined;
      },
      release: () => {
        if (state === 'pending') {
          this.pending--;
          dec(this.pendingBySource, source);
        } else if (state === 'session') {
          this.sessions--;
          dec(this.sessionsBySource, source);
        }
        state = 'released';
      },
    };
  }

  stats(): { pendingHandshakes: number; sessions: number; sources: number; refused: Record<string, number> } {
    return { pendingHandshakes: this.pending, sessions: this.sessions, sources: new Set([...this.pendingBySource.keys(), ...this.sessionsBySource.keys()]).size, refused: Object.fromEntries(this.refusedBy) };
  }

  private refused(why: AdmissionRefusal): AdmissionRefusal {
    this.refusedBy.set(why, (this.refusedBy.get(why) ?? 0) + 1);
    return why;
  }
}

function inc(m: Map<string, number>, k: string): void {
  m.set(k, (m.get(k) ?? 0) + 1);
}

function dec(m: Map<string, number>, k: string): void {
  const n = (m.get(k) ?? 0) - 1;
  if (n <= 0) m.delete(k);
  else m.set(k, n);
}
