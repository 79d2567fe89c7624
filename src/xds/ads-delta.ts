// The delta ADS server's bookkeeping for one client and one type URL, and the pure decision of
// what to send it next. No I/O here: ads-server.ts owns the streams.
//
// Invariants:
// - `sent` is what the client has, or will have once it has processed every response already
//   written: name -> version. It is seeded from initial_resource_versions on a resumed stream
//   and updated when a response is written (not when it is ACKed), so pipelined responses
//   never repeat a resource. A NACKed resource stays in `sent` at its rejected version: it is
//   not resent until its version changes (resending the same bytes would fail the same way).
// - `acked` is what the client confirmed: updated only by an ACK, from the response it names.
//   A NACK leaves it unchanged (the client keeps its last ACKed versions).
// - A resource is sent when the client wants it (wildcard or named subscription, and the
//   server's filter) and its version differs from `sent` (or it was named in a new
//   subscription, which the protocol says must always be answered). A name in `sent` that the
//   client no longer gets (removed from the table, or now filtered out) is sent as a removal.
// - Only `dirty` names are examined, unless `fullResync` (new or resumed subscription, a
//   refilter, or a change too large to track name by name): then every name in the table and
//   in `sent` is.
import type { ServerResource } from './ads-types.js';

export class Subscription {
  readonly typeUrl: string;
  wildcard = false;
  readonly names = new Set<string>();
  readonly sent = new Map<string, string>();
  readonly acked = new Map<string, string>();
  readonly dirty = new Set<string>();
  /** Named in a new subscription: answer even if `sent` has the same version. */
  readonly forced = new Set<string>();
  fullResync = true;
  /** The first response of a subscription is sent even when empty: it tells the client it is in sync. */
  needsFirstResponse = true;
  /** When the oldest change not yet pushed to this client happened (push latency). */
  dirtySince: number | undefined;

  constructor(typeUrl: string) {
    this.typeUrl = typeUrl;
  }

  interested(name: string): boolean {
    return this.wildcard || this.names.has(name);
  }

  /** Marks names changed in the table; past `maxTracked` names a full resync is cheaper. */
  markDirty(names: readonly string[], now: number, maxTracked = 256): void {
    if (names.length === 0) return;
    if (this.dirtySince === undefined) this.dirtySince = now;
    if (this.fullResync) return;
    if (names.length > maxTracked) {
      this.fullResync = true;
      this.dirty.clear();
      return;
    }
    for (const n of names) this.dirty.add(n);
  }

  hasWork(): boolean {
    return this.fullResync || this.dirty.size > 0 || this.forced.size > 0 || this.needsFirstResponse;
  }
}

export interface Delta {
  upserts: ServerResource[];
  removals: string[];
}

/** What to send next; pure (reads the subscription, changes nothing). */
export function computeDelta(
  table: ReadonlyMap<string, ServerResource>,
  sub: Subscription,
  wants: (name: string) => boolean,
): Delta {
  const upserts: ServerResource[] = [];
  const removals: string[] = [];
  const check = (name: string): void => {
    const r = table.get(name);
    if (r && sub.interested(name) && wants(name)) {
      if (sub.sent.get(name) !== r.version || sub.forced.has(name)) upserts.push(r);
    } else if (sub.sent.has(name)) {
      removals.push(name);
    }
  };
  if (sub.fullResync) {
    for (const name of table.keys()) check(name);
    for (const name of sub.sent.keys()) if (!table.has(name)) check(name);
  } else {
    const seen = new Set<string>();
    for (const name of [...sub.dirty, ...sub.forced]) {
      if (seen.has(name)) continue;
      seen.add(name);
      check(name);
    }
  }
  return { upserts, removals };
}

/** Records a computed delta as sent (before the bytes are written). */
export function commitDelta(sub: Subscription, delta: Delta): void {
  for (const r of delta.upserts) sub.sent.set(r.name, r.version);
  for (const n of delta.removals) sub.sent.delete(n);
  sub.dirty.clear();
  sub.forced.clear();
  sub.fullResync = false;
}

/** Splits upserts into responses of at most maxBytes of resources each (at least one resource each). */
export function chunkBySize(upserts: readonly ServerResource[], maxBytes: number): ServerResource[][] {
  const chunks: ServerResource[][] = [];
  let cur: ServerResource[] = [];
  let size = 0;
  for (const r of upserts) {
    if (cur.length > 0 && size + r.wire.length > maxBytes) {
      chunks.push(cur);
      cur = [];
      size = 0;
    }
    cur.push(r);
    size += r.wire.length + 6;
  }
  if (cur.length > 0 || chunks.length === 0) chunks.push(cur);
  return chunks;
}
