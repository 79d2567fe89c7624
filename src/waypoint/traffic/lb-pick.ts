// Load balancing over the endpoints of one upstream cluster (pure decision; no sockets).
//
// Invariants:
// - Only usable candidates are considered: healthy (workload status), not excluded (tried by
//   an earlier attempt of the request), not ejected by outlier detection.
// - LEAST_REQUEST (Istio's default): among the candidates with the fewest requests in flight,
//   round robin (with one request at a time this is plain round robin).
// - ROUND_ROBIN: the cursor of the cluster, over the candidates sorted by uid.
// - RANDOM: one call of random().
// - HASH (consistentHash): rendezvous hashing of the key over the candidates (highest
//   hash(key, uid) wins): one key goes to one endpoint while that endpoint is a candidate, and
//   only the keys of an endpoint that leaves move. A request without the key (no header, no
//   cookie) is spread by random(), as Envoy does for a missing hash key.
import { createHash } from 'node:crypto';
import type { LbPolicy } from './policy.js';

export interface LbCandidate {
  uid: string;
  inFlight: number;
}

export interface LbInput {
  policy: LbPolicy;
  /** Usable candidates, in a stable order (sorted by uid). */
  candidates: readonly LbCandidate[];
  /** The cluster's round-robin cursor (the caller advances it by `nextCursor`). */
  cursor: number;
  /** The hash key of the request for HASH policies (undefined: the request has none). */
  hashKey?: string;
  random: () => number;
}

export function pickEndpoint(input: LbInput): { uid: string; nextCursor: number } | undefined {
  const c = input.candidates;
  if (c.length === 0) return undefined;
  const p = input.policy;
  switch (p.kind) {
    case 'ROUND_ROBIN':
      return { uid: c[input.cursor % c.length]!.uid, nextCursor: input.cursor + 1 };
    case 'RANDOM':
      return { uid: c[Math.floor(input.random() * c.length) % c.length]!.uid, nextCursor: input.cursor };
    case 'HASH': {
      if (input.hashKey === undefined) return { uid: c[Math.floor(input.random() * c.length) % c.length]!.uid, nextCursor: input.cursor };
      let best = c[0]!;
      let bestScore = -1n;
      for (const x of c) {
        const s = score(input.hashKey, x.uid);
        if (s > bestScore) { best = x; bestScore = s; }
      }
      return { uid: best.uid, nextCursor: input.cursor };
    }
    case 'LEAST_REQUEST': {
      let least = Infinity;
      for (const x of c) least = Math.min(least, x.inFlight);
      const best = c.filter((x) => x.inFlight === least);
      return { uid: best[input.cursor % best.length]!.uid, nextCursor: input.cursor + 1 };
    }
  }
}

function score(key: string, uid: string): bigint {
  return createHash('sha256').update(key).update('\0').update(uid).digest().readBigUInt64BE(0);
}

/**
 * The hash key of a request for a HASH policy: the header's value, the cookie's, the source
 * IP, the query parameter's; undefined when the request has none.
 */
export function hashKeyOf(policy: LbPolicy, req: { headers: Record<string, string | string[] | undefined>; path: string; sourceIp: string }): string | undefined {
  if (policy.kind !== 'HASH') return undefined;
  switch (policy.by) {
    case 'source-ip': return req.sourceIp;
    case 'header': {
      const v = req.headers[policy.name];
      return Array.isArray(v) ? v.join(',') : v;
    }
    case 'cookie': return cookieValue(req.headers.cookie, policy.name);
    case 'query': {
      const q = req.path.indexOf('?');
      if (q < 0) return undefined;
      return new URLSearchParams(req.path.slice(q + 1)).get(policy.name) ?? undefined;
    }
  }
}

function cookieValue(header: string | string[] | undefined, name: string): string | undefined {
  for (const h of Array.isArray(header) ? header : header ? [header] : []) {
    for (const part of h.split(';')) {
      const eq = part.indexOf('=');
      if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
    }
  }
  return undefined;
}
