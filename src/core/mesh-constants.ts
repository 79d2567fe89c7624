// The numbers and names every part of the mesh agrees on, in one place: the proxy ports (as
// Istio numbers them) and the cluster domain of service host names.

/** Captured outbound traffic of a pod (ztunnel in-pod listener, sidecar). */
export const OUTBOUND_CAPTURE_PORT = 15001;
/** Captured inbound plaintext of a pod. */
export const INBOUND_PLAINTEXT_PORT = 15006;
/** HBONE: HTTP/2 CONNECT over mutual TLS (ztunnels, waypoints, sidecars, gateways). */
export const HBONE_PORT = 15008;
/** The ztunnel's in-pod DNS proxy (captured port 53). */
export const DNS_CAPTURE_PORT = 15053;
/** Ports whose traffic a proxy must never follow back to a proxy: a connection to them loops. */
export const CAPTURE_PORTS: ReadonlySet<number> = new Set([OUTBOUND_CAPTURE_PORT, INBOUND_PLAINTEXT_PORT, HBONE_PORT, DNS_CAPTURE_PORT]);

export const CLUSTER_DOMAIN = 'cluster.local';

/** `reviews` in `shop` -> `reviews.shop.svc.cluster.local`. */
export function serviceHostname(name: string, namespace: string, domain = CLUSTER_DOMAIN): string {
  return `${name}.${namespace}.svc.${domain}`;
}
