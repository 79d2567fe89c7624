// Types of the waypoint's routing: the public decision (re-exported by routing.ts) and the
// compiled form both route kinds (HTTPRoute, VirtualService) are turned into.
import type { CompiledMatch, PathMatcher } from './route-match.js';

export interface RouteService {
  namespace: string;
  name: string;
  /** name.ns.svc.cluster.local */
  hostname: string;
  vips: string[];
  ports: { name?: string; port: number; targetPort: number | string; appProtocol?: string }[];
  /** A ServiceEntry host (egress) rather than a Kubernetes Service. */
  kind?: 'ServiceEntry';
}

export interface HttpRequestView {
  method: string;
  /** Includes ?query. */
  path: string;
  host: string;
  /** Lower-case names. */
  headers: Record<string, string | string[] | undefined>;
}

/** A Service and one of its service ports. */
export interface BackendTarget {
  namespace: string;
  name: string;
  port: number;
  /** The backend's hostname when it is not `<name>.<namespace>.svc.cluster.local` (a ServiceEntry host). */
  hostname?: string;
  /** A DestinationRule subset (VirtualService destination.subset). */
  subset?: string;
}

/** Apply in this order: remove, then set (replace), then add (append); see applyHeaderEdits. */
export interface HeaderEdits {
  set: [string, string][];
  add: [string, string][];
  remove: string[];
}

export interface RetryDecision {
  /** Retries after the first try (Envoy num_retries). */
  attempts: number;
  /** Response statuses that are retried. */
  codes: number[];
  backoffMs: number;
  perTryTimeoutMs?: number;
  retryOnConnectFailure: boolean;
}

export type RouteDecision =
  | {
    kind: 'forward';
    /** 'httproute ns/name rule 0', 'virtualservice ns/name route 1' or 'default'. */
    route: string;
    backend: BackendTarget;
    /**
     * True when the chosen backend names a Service (or a port of it) that does not exist.
     * Gateway API: requests that would go to an invalid backendRef get 500; the proxy
     * answers 500 without trying (it would not find the service either).
     */
    backendMissing?: boolean;
    requestHeaders: HeaderEdits;
    responseHeaders: HeaderEdits;
    /** Rewritten path including the query, present only when changed. */
    path?: string;
    /** Rewritten authority, present only when changed. */
    host?: string;
    mirrors: { backend: BackendTarget; percent: number }[];
    timeouts: { requestMs?: number; backendRequestMs?: number };
    /** Absent when retries are disabled (attempts 0). */
    retry?: RetryDecision;
    /** Already decided with random(): present only if a fault fires. */
    fault?: { delayMs?: number; abortStatus?: number };
  }
  | { kind: 'redirect'; route: string; status: number; location: string }
  /**
   * Nothing to forward to. status 404 (reason 'no-match'): the service has routes but none
   * matches. status 500 (reason 'no-backends'): the matched rule has no backend with
   * weight > 0 (Gateway API: "500"; Istio: a direct 500 response).
   */
  | { kind: 'not-found'; route: string; status: 404 | 500; reason: 'no-match' | 'no-backends' };

// ---- compiled form (internal) ----

export type PathRewrite =
  | { kind: 'full'; value: string }
  /** Gateway API ReplacePrefixMatch (segment-wise). */
  | { kind: 'prefix-segments'; value: string }
  /** Istio rewrite.uri: swap the matched prefix (or the whole path after exact/regex matches). */
  | { kind: 'prefix-plain'; value: string }
  | { kind: 'regex'; rewrite: (path: string) => string };

export interface RedirectSpec {
  scheme?: string;
  hostname?: string;
  port?: number;
  /** Without a port: the scheme's well-known port, or the port the request came to. */
  derivePort: 'protocol-default' | 'request-port';
  path?: PathRewrite;
  status: number;
}

export interface WeightedBackend {
  backend: BackendTarget;
  weight: number;
  missing: boolean;
  requestHeaders: HeaderEdits;
  responseHeaders: HeaderEdits;
}

export interface FaultSpec {
  delay?: { ms: number; percent: number };
  abort?: { status: number; percent: number };
}

export interface CompiledRule {
  name: string;
  /** Only backends with weight > 0; empty (and no redirect) means "answer 500". */
  backends: WeightedBackend[];
  redirect?: RedirectSpec;
  rewrite?: { path?: PathRewrite; host?: string };
  requestHeaders: HeaderEdits;
  responseHeaders: HeaderEdits;
  mirrors: { backend: BackendTarget; percent: number }[];
  timeouts: { requestMs?: number; backendRequestMs?: number };
  retry?: RetryDecision;
  fault?: FaultSpec;
}

/** One alternative of one rule, in the order they are tried. No match = matches everything. */
export interface RouteEntry {
  rule: CompiledRule;
  match?: CompiledMatch;
}

export interface PortRoutes {
  kind: 'httproute' | 'virtualservice';
  /** 'httproute ns/name' of every route attached here. */
  names: string[];
  entries: RouteEntry[];
}

export type { CompiledMatch, PathMatcher };

export function noEdits(): HeaderEdits {
  return { set: [], add: [], remove: [] };
}

export function mergeEdits(a: HeaderEdits, b: HeaderEdits): HeaderEdits {
  return { set: [...a.set, ...b.set], add: [...a.add, ...b.add], remove: [...a.remove, ...b.remove] };
}

/**
 * Istio's retry policy when a route says nothing: 2 retries on connect-failure,
 * refused-stream, unavailable, cancelled and retriable-status-codes (503), Envoy's default
 * 25 ms base backoff.
 */
export function defaultRetry(): RetryDecision {
  return { attempts: 2, codes: [503], backoffMs: 25, retryOnConnectFailure: true };
}
