// How Istio names a service in a VirtualService: a short name (no dot) means a Service in
// the VirtualService's own namespace; anything with a dot is taken as a fully qualified
// hostname as written (Istio's ResolveShortnameToFQDN). `*` and `*.suffix` are wildcards.
// Shared by the config validator and the waypoint's route compiler, so both agree.

import { CLUSTER_DOMAIN } from '../core/mesh-constants.js';

export { CLUSTER_DOMAIN };

/** `reviews` in namespace `shop` -> `reviews.shop.svc.cluster.local`; FQDNs, wildcards and IPs unchanged. */
export function resolveIstioHost(host: string, namespace: string, domain = CLUSTER_DOMAIN): string {
  if (host === '*' || host.includes('.') || host.includes(':')) return host;
  return `${host}.${namespace}.svc.${domain}`;
}

/** Whether a (resolved) VirtualService host names this hostname. */
export function istioHostMatches(pattern: string, hostname: string): boolean {
  if (pattern === '*') return true;
  if (pattern.startsWith('*.')) return hostname.endsWith(pattern.slice(1));
  return pattern === hostname;
}

/** `name.ns.svc.cluster.local` -> {namespace, name}; undefined for other hostnames. */
export function serviceOfHostname(hostname: string, domain = CLUSTER_DOMAIN): { namespace: string; name: string } | undefined {
  const suffix = `.svc.${domain}`;
  if (!hostname.endsWith(suffix)) return undefined;
  const parts = hostname.slice(0, -suffix.length).split('.');
  if (parts.length !== 2 || !parts[0] || !parts[1]) return undefined;
  return { name: parts[0], namespace: parts[1] };
}
