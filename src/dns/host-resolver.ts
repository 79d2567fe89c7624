// Name -> addresses for a proxy that must reach a host by name (an egress waypoint's
// ServiceEntry endpoints with resolution DNS), through the same upstream resolver and
// forwarder the DNS proxy uses — never the host's own resolver, so a lookup goes only where
// the cluster's DNS goes.
//
// Invariants:
// - Answers are cached for their TTL, at least MIN_TTL_MS and at most MAX_TTL_MS (Envoy
//   refreshes DNS clusters every 5 s by default; Istio's ServiceEntry hosts change rarely).
// - Concurrent lookups of one name share one query.
// - Failures (NXDOMAIN, no A record, timeout) are not cached; they reject with a message.
import { randomInt } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import type { DnsForwarder } from './forwarder.js';
import { decodeAnswer, encodeQuery, parseQuery } from './message.js';

const MIN_TTL_MS = 5_000;
const MAX_TTL_MS = 60_000;

export class HostResolver {
  private readonly cache = new Map<string, { addrs: string[]; until: number }>();
  private readonly inflight = new Map<string, Promise<string[]>>();

  constructor(private readonly o: { forwarder: DnsForwarder; clock: Clock }) {}

  /** IPv4 addresses of `host` (A records, CNAMEs followed by the upstream). */
  resolve(host: string): Promise<string[]> {
    const name = host.toLowerCase().replace(/\.$/, '');
    const hit = this.cache.get(name);
    if (hit && hit.until > this.o.clock.now()) return Promise.resolve(hit.addrs);
    let p = this.inflight.get(name);
    if (!p) {
      p = this.lookup(name).finally(() => this.inflight.delete(name));
      this.inflight.set(name, p);
    }
    return p;
  }

  private async lookup(name: string): Promise<string[]> {
    const parsed = parseQuery(encodeQuery(randomInt(0, 65536), name, 'A'));
    if (!parsed.ok) throw new Error(`"${name}" cannot be asked: ${parsed.reason}`);
    const answer = decodeAnswer(await this.o.forwarder.forward(parsed.query, 'udp'));
    if (answer.rcode !== 'NOERROR') throw new Error(`${name}: ${answer.rcode}`);
    const a = answer.answers.filter((r) => r.type === 'A');
    if (a.length === 0) throw new Error(`${name} has no A record`);
    const ttl = Math.min(...a.map((r) => r.ttl)) * 1000;
    const addrs = a.map((r) => r.data);
    this.cache.set(name, { addrs, until: this.o.clock.now() + Math.min(MAX_TTL_MS, Math.max(MIN_TTL_MS, ttl)) });
    return addrs;
  }
}
