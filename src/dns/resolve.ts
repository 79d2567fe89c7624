// The DNS proxy's decision for one question (pure, as Istio's ztunnel decides it):
//
// 0. Only plain names are answered here: printable ASCII without a backslash, i.e. labels that
//    hold neither a "." nor a byte outside printable ASCII (message.ts writes those escaped,
//    `\.` and `\DDD`). Mesh hosts are plain names; the text of any other name, split on ".",
//    would give labels it does not have (`echo\.shop.svc.cluster.local` is not a name of the
//    service echo.shop). Such names are forwarded, as the query's bytes: the upstream sees and
//    echoes exactly the labels asked.
// 1. Only A and AAAA are answered here; every other type is forwarded upstream.
// 2. The aliases of the requested name, from the client's point of view, in this order: the
//    name itself; its Kubernetes expansions (`svc` -> `svc.<ns>.svc.<domain>`, `svc.ns` ->
//    `svc.ns.svc.<domain>`, `svc.ns.svc` -> `svc.ns.svc.<domain>`); then, for each search
//    domain of the client (`<ns>.svc.<domain>`, `svc.<domain>`, `<domain>`) the name ends with,
//    the name without it, and that name's expansions. A stripped alias is what a resolver's
//    search list made of a shorter name (`api.partner.example.shop.svc.cluster.local` is
//    `api.partner.example` tried with the first search domain).
// 3. For each alias, the hosts that match it exactly, then the wildcards that cover it
//    (`*.example.com`, `*.com`): the first alias with a match wins. Of several matches, the
//    one in the client's namespace is preferred, else the first. Hosts without an address are
//    not answered here (forwarded), and neither are hosts not visible to the client's
//    namespace (ServiceEntry exportTo).
// 4. The answer is authoritative: the host's addresses of the asked family, TTL 30 s, in a
//    random order; none of that family (AAAA for an IPv4-only host) is an empty NOERROR, never
//    NXDOMAIN: the name exists. When the alias was found by stripping a search domain (and
//    not through a wildcard), a CNAME from the asked name to the stripped name comes first and
//    the addresses are given for the stripped name.
// 5. No match: forwarded upstream (NXDOMAIN is the upstream's to say).
import { isIPv4, isIPv6 } from 'node:net';
import { DEFAULT_TTL_SECONDS, type DnsRecord } from './message.js';

export interface DnsHost {
  hostname: string;
  namespace: string;
  addresses: readonly string[];
  /** Namespaces that may resolve it; undefined = every namespace. */
  visibleTo?: readonly string[];
}

/** The hosts the proxy answers for, indexed by name. Immutable. */
export class DnsRegistry {
  private readonly byName = new Map<string, DnsHost[]>();

  constructor(hosts: Iterable<DnsHost>) {
    for (const h of hosts) {
      if (h.addresses.length === 0) continue;
      const key = h.hostname.toLowerCase();
      const list = this.byName.get(key);
      if (list) list.push(h);
      else this.byName.set(key, [h]);
    }
  }

  get size(): number {
    return this.byName.size;
  }

  lookup(name: string): readonly DnsHost[] {
    return this.byName.get(name) ?? [];
  }
}

export interface DnsClient {
  namespace: string;
}

export interface ResolveOptions {
  clusterDomain: string;
  /** Override of the client's search domains (default: Kubernetes' three). */
  searchDomains?: readonly string[];
  /** For the order of addresses; default Math.random. */
  random?: () => number;
}

export type DnsDecision =
  | { kind: 'answer'; records: DnsRecord[]; host: DnsHost }
  | { kind: 'forward'; reason: 'type' | 'unknown' | 'not-plain' };

interface Alias {
  name: string;
  stripped?: string;
}

export function searchDomainsOf(client: DnsClient, clusterDomain: string): string[] {
  return [`${client.namespace}.svc.${clusterDomain}`, `svc.${clusterDomain}`, clusterDomain];
}

export function aliasesOf(name: string, client: DnsClient, o: ResolveOptions): Alias[] {
  const out: Alias[] = [];
  const seen = new Set<string>();
  const add = (a: Alias) => { if (!seen.has(a.name)) { seen.add(a.name); out.push(a); } };
  add({ name });
  for (const fqdn of kubeExpansions(name, client, o.clusterDomain)) add({ name: fqdn });
  for (const sd of o.searchDomains ?? searchDomainsOf(client, o.clusterDomain)) {
    if (!name.endsWith(`.${sd}`)) continue;
    const stripped = name.slice(0, -(sd.length + 1));
    if (!stripped) continue;
    add({ name: stripped, stripped });
    for (const fqdn of kubeExpansions(stripped, client, o.clusterDomain)) add({ name: fqdn, stripped });
  }
  return out;
}

function kubeExpansions(name: string, client: DnsClient, domain: string): string[] {
  const labels = name.split('.');
  if (labels.length === 1) return [`${name}.${client.namespace}.svc.${domain}`];
  if (labels.length === 2) return [`${name}.svc.${domain}`];
  if (labels.length === 3 && labels[2] === 'svc') return [`${name}.${domain}`];
  return [];
}

/** The name, then the wildcards that cover it, most specific first. */
export function wildcardsOf(name: string): string[] {
  const out = [name];
  const labels = name.split('.');
  for (let i = 1; i < labels.length; i++) out.push(`*.${labels.slice(i).join('.')}`);
  return out;
}

/** Printable ASCII but the backslash (which starts an escape in a name's presentation text). */
const PLAIN_NAME = /^[!-[\]-~]+$/;

export function decideDns(reg: DnsRegistry, client: DnsClient, q: { name: string; type: string }, o: ResolveOptions): DnsDecision {
  if (q.type !== 'A' && q.type !== 'AAAA') return { kind: 'forward', reason: 'type' };
  if (!PLAIN_NAME.test(q.name)) return { kind: 'forward', reason: 'not-plain' };
  for (const alias of aliasesOf(q.name, client, o)) {
    for (const candidate of wildcardsOf(alias.name)) {
      const visible = reg.lookup(candidate).filter((h) => !h.visibleTo || h.visibleTo.includes(client.namespace));
      if (visible.length === 0) continue;
      const host = visible.find((h) => h.namespace === client.namespace) ?? visible[0]!;
      const wildcard = candidate !== alias.name;
      const family = q.type === 'A' ? isIPv4 : isIPv6;
      const addrs = shuffle(host.addresses.filter((a) => family(a)), o.random ?? Math.random);
      // The host exists: no address of this family is an empty answer, not NXDOMAIN.
      if (addrs.length === 0) return { kind: 'answer', records: [], host };
      const records: DnsRecord[] = [];
      let ipName = q.name;
      if (alias.stripped !== undefined && !wildcard) {
        records.push({ name: q.name, type: 'CNAME', ttl: DEFAULT_TTL_SECONDS, data: alias.stripped });
        ipName = alias.stripped;
      }
      for (const a of addrs) records.push({ name: ipName, type: q.type, ttl: DEFAULT_TTL_SECONDS, data: a });
      return { kind: 'answer', records, host };
    }
  }
  return { kind: 'forward', reason: 'unknown' };
}

function shuffle<T>(xs: T[], random: () => number): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}
