// The input of an authorization decision: what the enforcer knows about a connection (the
// ztunnel, L4) or a request (the waypoint, L7). Plain values, no sockets.
//
// Invariants:
// - `sourcePrincipal` is the peer's SPIFFE identity WITHOUT `spiffe://` (`<td>/ns/<ns>/sa/<sa>`),
//   and is undefined for a plaintext connection: such a source has no identity, no namespace and
//   no service account (principal/namespace/serviceAccount matches never match it; their not-forms do).
// - The source namespace and service account are derived from the principal, never given apart.
// - IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`, as dual-stack sockets report them) are matched
//   as the IPv4 address they carry.

export interface ConnectionAttributes {
  sourceIp?: string;
  /** `<td>/ns/<ns>/sa/<sa>`, without `spiffe://` (a leading `spiffe://` is tolerated); undefined = plaintext. */
  sourcePrincipal?: string;
  destinationIp: string;
  destinationPort: number;
}

export interface RequestAuthAttributes {
  /** `iss/sub` of the validated JWT. */
  principal?: string;
  audiences?: string[];
  /** The `azp` claim. */
  presenter?: string;
  claims?: Record<string, unknown>;
}

export interface HttpAttributes {
  method: string;
  /** The request path as sent (a query string or fragment is ignored when matching paths). */
  path: string;
  /** `:authority` / `Host`. */
  host: string;
  /** Header names in any case; several values of one header are matched joined by `,` (as Envoy does). */
  headers: Record<string, string | string[]>;
  /** The original client IP (from X-Forwarded-For / PROXY); falls back to `sourceIp`. */
  remoteIp?: string;
  /** Present only when a RequestAuthentication validated a JWT. */
  auth?: RequestAuthAttributes;
}

export interface RequestAttributes extends ConnectionAttributes {
  http?: HttpAttributes;
}

export interface SpiffeParts {
  trustDomain: string;
  namespace: string;
  serviceAccount: string;
}

const SPIFFE_PREFIX = 'spiffe://';

/** `spiffe://td/ns/a/sa/b` -> `td/ns/a/sa/b`; anything else unchanged. */
export function stripSpiffe(s: string): string {
  return s.startsWith(SPIFFE_PREFIX) ? s.slice(SPIFFE_PREFIX.length) : s;
}

/** Splits `<td>/ns/<ns>/sa/<sa>` (with or without `spiffe://`); null when it has another shape. */
export function parsePrincipal(principal: string | undefined): SpiffeParts | null {
  if (principal === undefined) return null;
  const parts = stripSpiffe(principal).split('/');
  if (parts.length !== 5 || parts[1] !== 'ns' || parts[3] !== 'sa') return null;
  const [trustDomain, , namespace, , serviceAccount] = parts as [string, string, string, string, string];
  if (!trustDomain || !namespace || !serviceAccount) return null;
  return { trustDomain, namespace, serviceAccount };
}
