// Types of the ingress kinds: the listener details of a Gateway of class `istio` (TLS,
// allowedRoutes), ReferenceGrant (gateway.networking.k8s.io v1beta1), GRPCRoute and TCPRoute.
import type { Base, BackendObjectReference, HTTPHeaderFilter, HTTPHeaderMatch, ParentReference } from './resources.js';

/** The Gateway class of Istio's ingress (and egress) gateways. */
export const INGRESS_CLASS = 'istio';
export const LISTENER_PROTOCOLS = ['HTTP', 'HTTPS', 'TLS', 'TCP', 'UDP', 'HBONE'] as const;

export interface SecretObjectReference {
  group?: string;
  kind?: string;
  name: string;
  namespace?: string;
}

export interface GatewayTlsConfig {
  mode?: 'Terminate' | 'Passthrough';
  certificateRefs?: SecretObjectReference[];
  options?: Record<string, string>;
}

export interface AllowedRoutes {
  namespaces?: { from?: 'All' | 'Same' | 'Selector'; selector?: { matchLabels?: Record<string, string>; matchExpressions?: unknown[] } };
  kinds?: { group?: string; kind: string }[];
}

/** A listener as the ingress reads it (GatewayListener plus its TLS and allowedRoutes). */
export interface IngressListener {
  name: string;
  port: number;
  protocol: string;
  hostname?: string;
  tls?: GatewayTlsConfig;
  allowedRoutes?: AllowedRoutes;
}

export interface ReferenceGrantSpec {
  from: { group: string; kind: string; namespace: string }[];
  to: { group: string; kind: string; name?: string }[];
}
export type ReferenceGrantResource = Base<'ReferenceGrant', ReferenceGrantSpec>;

export interface GRPCMethodMatch {
  type?: 'Exact' | 'RegularExpression';
  service?: string;
  method?: string;
}

export interface GRPCRouteRule {
  name?: string;
  matches?: { method?: GRPCMethodMatch; headers?: HTTPHeaderMatch[] }[];
  filters?: { type: string; requestHeaderModifier?: HTTPHeaderFilter; responseHeaderModifier?: HTTPHeaderFilter; requestMirror?: unknown; extensionRef?: unknown }[];
  backendRefs?: (BackendObjectReference & { weight?: number; filters?: unknown[] })[];
}

export interface GRPCRouteSpec {
  parentRefs?: ParentReference[];
  hostnames?: string[];
  rules?: GRPCRouteRule[];
}
export type GRPCRouteResource = Base<'GRPCRoute', GRPCRouteSpec>;

export interface TCPRouteSpec {
  parentRefs?: ParentReference[];
  rules?: { name?: string; backendRefs?: (BackendObjectReference & { weight?: number })[] }[];
}
export type TCPRouteResource = Base<'TCPRoute', TCPRouteSpec>;
