// What an ingress gateway replica serves, compiled from what it received (pure, once per
// config): its Gateway's listeners grouped by port, the routes attached to them (HTTPRoute,
// GRPCRoute as HTTPRoute, TCPRoute), the certificates of its HTTPS listeners, and the
// waypoint-style L7 config (policies bound to the Gateway, mesh config, DestinationRules).
//
// Invariants (Gateway API, as Istio implements it):
// - A route attaches to a listener when its parentRef names this Gateway (kind Gateway, its
//   namespace defaulting to the route's) and, when given, the listener (sectionName) or port;
//   the listener's allowedRoutes admit the route's namespace (Same by default, All; Selector
//   needs namespace labels, which proxies do not receive: such a listener admits only Same, and
//   compiling warns) and kind (HTTP/HTTPS: HTTPRoute, GRPCRoute; TCP: TCPRoute).
// - Hostnames: a route without hostnames takes the listener's (or any); otherwise the
//   intersection of the route's and the listener's, a wildcard covering the other side; an
//   empty intersection attaches nothing.
// - Virtual hosts are per port: a request is routed by the most specific hostname of its port
//   (exact, then the longest wildcard suffix, then "*"); none -> 404 (NR).
// - A backend in another namespace needs a ReferenceGrant in that namespace; without one the
//   rule's backend is invalid and requests get 500 (Gateway API: RefNotPermitted).
// - A certificate Secret in another namespace needs a ReferenceGrant too; key material stays in
//   the compiled secure contexts; `describe()` names Secrets and hostnames only.
import tls from 'node:tls';
import type { ConfigObject } from '../xds/config-resource.js';
import type { GatewayListener, GatewayResource, HTTPRouteResource } from '../config/resources.js';
import { INGRESS_CLASS, type GRPCRouteResource, type ReferenceGrantResource, type TCPRouteResource } from '../config/ingress-resources.js';
import type { SecretResource } from '../config/egress-resources.js';
import { GATEWAY_GROUP, referenceAllowed } from '../config/reference-grant.js';
import { secretValue, TLS_CERT_KEY, TLS_KEY_KEY } from '../config/secret-data.js';
import type { MeshView } from '../dataplane/mesh-view.js';
import { compileWaypointConfig, routeServices, type WaypointConfig } from '../waypoint/waypoint-config.js';
import { compileHTTPRoute, sortBoundRoutes, type BoundRoute } from '../waypoint/route-httproute.js';
import type { PortRoutes, RouteService } from '../waypoint/route-types.js';
import type { RouteTable } from '../waypoint/routing.js';
import { grpcRouteAsHttpRoute } from '../waypoint/route-grpc.js';
import { compileTcpRoutes, type TcpRouteEntry } from '../waypoint/route-tcp.js';

export interface GatewayRef {
  namespace: string;
  name: string;
}

export interface ListenerTls {
  listener: string;
  /** The listener's hostname ('*' when none). */
  hostname: string;
  context?: tls.SecureContext;
  /** `ns/name` of the Secrets used, for config_dump. */
  secrets: string[];
  /** Why there is no certificate (the handshake then fails). */
  error?: string;
  /** The PEMs, for a TLS server's default certificate (clients without SNI); never described. */
  pem?: { cert: string[]; key: string[] };
}

export interface PortGroup {
  port: number;
  protocol: 'HTTP' | 'HTTPS' | 'TCP';
  listeners: string[];
  /** HTTPS: certificates by listener hostname. */
  tls: ListenerTls[];
  /** HTTP/HTTPS: the virtual hosts of this port (hostnames), most specific first. */
  vhosts: string[];
}

export interface IngressConfig {
  readonly version: string;
  readonly gateway: GatewayRef;
  /** False when no Gateway of class istio with this name was received (nothing is served). */
  readonly found: boolean;
  /** The waypoint-style L7 config; `routes` holds this gateway's virtual hosts. */
  readonly l7: WaypointConfig;
  readonly ports: ReadonlyMap<number, PortGroup>;
  readonly tcpRoutes: ReadonlyMap<string, TcpRouteEntry>;
  readonly warnings: string[];
  /** The route-table key for a request on `port` with `host` (no port); undefined: no route. */
  vhostFor(port: number, host: string): string | undefined;
  /** The certificate for clients without SNI on an HTTPS port: the catch-all listener's, else the first. */
  defaultCertificate(port: number): { cert: string[]; key: string[] } | undefined;
  /** The secure context for an SNI name on an HTTPS port. */
  secureContext(port: number, servername: string | undefined): tls.SecureContext | undefined;
  describe(): Record<string, unknown>;
}

export interface CompileIngressInput {
  version: string;
  gateway: GatewayRef;
  state: MeshView;
  objects: ConfigObject[];
  rootNamespace: string;
  trustDomain: string;
  readFile: (path: string) => string;
}

/** Synthetic namespace of virtual hosts in the route table (no Kubernetes namespace can have a "~"). */
const VHOST_NS = '~ingress';

export function vhostKey(port: number, hostname: string): string {
  return `${port}/${hostname}`;
}

export function compileIngressConfig(input: CompileIngressInput): IngressConfig {
  const warnings: string[] = [];
  const of = <T>(kind: string): T[] => input.objects.filter((o) => o.kind === kind) as unknown as T[];
  const base = compileWaypointConfig({ version: input.version, state: input.state, objects: input.objects, rootNamespace: input.rootNamespace, trustDomain: input.trustDomain, readFile: input.readFile, waypointNamespace: input.gateway.namespace });
  const gw = of<GatewayResource>('Gateway').find((g) => (g.metadata.namespace ?? 'default') === input.gateway.namespace && g.metadata.name === input.gateway.name && g.spec.gatewayClassName === INGRESS_CLASS);
  const grants = of<ReferenceGrantResource>('ReferenceGrant');
  const gwNs = input.gateway.namespace;
  const listeners = (gw?.spec.listeners ?? []).filter((l) => ['HTTP', 'HTTPS', 'TCP'].includes(l.protocol));

  // Ports and certificates.
  const secrets = new Map(of<SecretResource>('Secret').map((s) => [`${s.metadata.namespace ?? 'default'}/${s.metadata.name}`, s]));
  const ports = new Map<number, PortGroup>();
  for (const l of listeners) {
    const g = ports.get(l.port) ?? { port: l.port, protocol: l.protocol as PortGroup['protocol'], listeners: [], tls: [], vhosts: [] };
    if (g.protocol !== l.protocol) { warnings.push(`listener ${l.name}: port ${l.port} is already ${g.protocol}; ignored`); continue; }
    g.listeners.push(l.name);
    if (l.protocol === 'HTTPS') g.tls.push(listenerTls(l, gwNs, secrets, grants, warnings));
    ports.set(l.port, g);
  }

  // HTTP routes (and gRPC routes as HTTP routes) attached to HTTP/HTTPS listeners.
  const services = routeServices(input.state);
  const byKey = new Map<string, RouteService>(services.filter((s) => s.kind !== 'ServiceEntry').map((s) => [`${s.namespace}/${s.name}`, s]));
  const bound = new Map<string, { routes: BoundRoute[]; names: Set<string> }>();
  const httpRoutes = [...of<HTTPRouteResource>('HTTPRoute'), ...of<GRPCRouteResource>('GRPCRoute').map(grpcRouteAsHttpRoute)];
  for (const r of httpRoutes) {
    const kind = r.metadata.annotations?.['ambit.dev/converted-from'] === 'GRPCRoute' ? 'GRPCRoute' : 'HTTPRoute';
    const rns = r.metadata.namespace ?? 'default';
    const ref = `${kind} ${rns}/${r.metadata.name}`;
    const vhosts = new Set<string>();
    for (const p of r.spec.parentRefs ?? []) {
      if (!namesThisGateway(p, rns, input.gateway)) continue;
      for (const l of listeners) {
        if (l.protocol === 'TCP' || !listenerTakes(l, p, kind, rns, gwNs, warnings, ref)) continue;
        for (const h of intersectHostnames(l.hostname, r.spec.hostnames)) vhosts.add(vhostKey(l.port, h));
      }
    }
    if (vhosts.size === 0) continue;
    // Backends in another namespace without a ReferenceGrant are made invalid (500).
    const rules = (r.spec.rules ?? []).map((rule, ri) => ({
      ...rule,
      backendRefs: (rule.backendRefs ?? []).map((b, bi) => {
        const bns = b.namespace ?? rns;
        if ((b.kind ?? 'Service') !== 'Service' || referenceAllowed(grants, { group: GATEWAY_GROUP, kind, namespace: rns }, { group: '', kind: 'Service', namespace: bns, name: b.name })) return b;
        warnings.push(`${ref} rules[${ri}].backendRefs[${bi}]: Service ${bns}/${b.name} is in another namespace and no ReferenceGrant allows it; requests routed to it get 500`);
        return { ...b, namespace: '~refused' };
      }),
    }));
    for (const vh of vhosts) {
      const port = Number(vh.slice(0, vh.indexOf('/')));
      if (!byKey.has(`${VHOST_NS}/${vh}`)) byKey.set(`${VHOST_NS}/${vh}`, { namespace: VHOST_NS, name: vh, hostname: vh, vips: [], ports: [{ port, targetPort: port }] });
    }
    const copy: HTTPRouteResource = { ...r, spec: { rules, parentRefs: [...vhosts].map((vh) => ({ group: '', kind: 'Service', name: vh, namespace: VHOST_NS, port: Number(vh.slice(0, vh.indexOf('/'))) })) } };
    const w: string[] = [];
    for (const b of compileHTTPRoute(copy, { byKey }, w)) {
      const key = `${b.hostname}:${b.port}`;
      const g = bound.get(key) ?? { routes: [], names: new Set<string>() };
      g.routes.push(b);
      g.names.add(`${kind.toLowerCase()} ${rns}/${r.metadata.name}`);
      bound.set(key, g);
    }
    warnings.push(...w.filter((x) => !x.includes('~refused')).map((x) => x.replace(`HTTPRoute ${rns}/`, `${kind} ${rns}/`)));
  }
  const routes = new Map<string, PortRoutes>();
  for (const [key, g] of bound) routes.set(key, { kind: 'httproute', names: [...g.names].sort(), entries: sortBoundRoutes(g.routes) });
  const vhostServices = new Map([...byKey.values()].filter((s) => s.namespace === VHOST_NS).map((s) => [s.hostname, s]));
  for (const vh of vhostServices.keys()) {
    const port = Number(vh.slice(0, vh.indexOf('/')));
    ports.get(port)?.vhosts.push(vh.slice(vh.indexOf('/') + 1));
  }
  for (const g of ports.values()) g.vhosts.sort(bySpecificity);
  const table: RouteTable = Object.freeze({ services: vhostServices, vips: new Map(), routes });

  // TCP routes on TCP listeners: keyed `tcp:<port>`.
  const tcpRoutes = compileTcpRoutes(of<TCPRouteResource>('TCPRoute'), (p, rns) => {
    if (!namesThisGateway(p, rns, input.gateway)) return [];
    return listeners.filter((l) => l.protocol === 'TCP' && listenerTakes(l, p, 'TCPRoute', rns, gwNs, warnings, `TCPRoute ${rns}/?`)).map((l) => `tcp:${l.port}`);
  }, (r, ns, name) => {
    const ok = referenceAllowed(grants, { group: GATEWAY_GROUP, kind: 'TCPRoute', namespace: r.metadata.namespace ?? 'default' }, { group: '', kind: 'Service', namespace: ns, name });
    if (!ok) warnings.push(`TCPRoute ${r.metadata.namespace ?? 'default'}/${r.metadata.name}: Service ${ns}/${name} is in another namespace and no ReferenceGrant allows it; not used`);
    return ok;
  });

  if (!gw) warnings.push(`Gateway ${gwNs}/${input.gateway.name} of class ${INGRESS_CLASS} was not received; nothing is served`);
  const l7: WaypointConfig = { ...base, routes: table };
  return {
    version: input.version, gateway: input.gateway, found: gw !== undefined, l7, ports, tcpRoutes,
    warnings: [...base.warnings.filter((x) => !x.startsWith('HTTPRoute') && !x.startsWith('VirtualService')), ...warnings],
    vhostFor(port, host) {
      const g = ports.get(port);
      if (!g) return undefined;
      const h = host.toLowerCase();
      for (const v of g.vhosts) if (hostnameMatches(v, h)) return vhostKey(port, v);
      return undefined;
    },
    secureContext(port, servername) {
      const g = ports.get(port);
      if (!g) return undefined;
      const name = servername?.toLowerCase();
      const sorted = [...g.tls].sort((a, b) => bySpecificity(a.hostname, b.hostname));
      const hit = name ? sorted.find((t) => hostnameMatches(t.hostname, name)) : sorted.find((t) => t.hostname === '*') ?? sorted[0];
      return hit?.context;
    },
    defaultCertificate(port) {
      const g = ports.get(port);
      return (g?.tls.find((t) => t.hostname === '*' && t.pem) ?? g?.tls.find((t) => t.pem))?.pem;
    },
    describe() {
      return {
        gateway: `${gwNs}/${input.gateway.name}`, found: gw !== undefined,
        ports: [...ports.values()].map((g) => ({ port: g.port, protocol: g.protocol, listeners: g.listeners, vhosts: g.vhosts, tls: g.tls.map((t) => ({ listener: t.listener, hostname: t.hostname, secrets: t.secrets, ...(t.error ? { error: t.error } : { ok: true }) })) })),
        routes: [...routes].map(([k, r]) => ({ vhost: k, routes: r.names })),
        tcpRoutes: [...tcpRoutes].map(([k, r]) => ({ listener: k, route: r.route, backends: r.backends })),
      };
    },
  };
}

function namesThisGateway(p: { group?: string; kind?: string; name: string; namespace?: string }, routeNs: string, gw: GatewayRef): boolean {
  return (p.kind ?? 'Gateway') === 'Gateway' && (p.group ?? GATEWAY_GROUP) === GATEWAY_GROUP && p.name === gw.name && (p.namespace ?? routeNs) === gw.namespace;
}

function listenerTakes(l: GatewayListener, p: { sectionName?: string; port?: number }, kind: string, routeNs: string, gwNs: string, warnings: string[], ref: string): boolean {
  if (p.sectionName !== undefined && p.sectionName !== l.name) return false;
  if (p.port !== undefined && p.port !== l.port) return false;
  const kinds = l.allowedRoutes?.kinds?.map((k) => k.kind) ?? (l.protocol === 'TCP' ? ['TCPRoute'] : ['HTTPRoute', 'GRPCRoute']);
  if (!kinds.includes(kind)) return false;
  const from = l.allowedRoutes?.namespaces?.from ?? 'Same';
  if (from === 'All') return true;
  if (from === 'Selector' && routeNs !== gwNs) {
    warnings.push(`${ref}: listener ${l.name} admits namespaces by selector, which the gateway cannot evaluate (it receives no namespace labels); only routes of ${gwNs} attach`);
  }
  return routeNs === gwNs;
}

/** The hostnames a route serves on a listener (Gateway API intersection). */
export function intersectHostnames(listener: string | undefined, route: readonly string[] | undefined): string[] {
  if (!route?.length) return [listener ?? '*'];
  if (!listener) return [...route];
  const out = new Set<string>();
  for (const h of route) {
    if (hostnameMatches(listener, h)) out.add(h);
    else if (hostnameMatches(h, listener)) out.add(listener);
  }
  return [...out];
}

/** Whether `pattern` (exact, "*.suffix" or "*") covers the name `host`. */
export function hostnameMatches(pattern: string, host: string): boolean {
  if (pattern === '*' || pattern === host) return true;
  return pattern.startsWith('*.') && host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1;
}

/** Exact names first, then wildcards by longer suffix, "*" last. */
function bySpecificity(a: string, b: string): number {
  const rank = (h: string) => (h === '*' ? 2 : h.startsWith('*.') ? 1 : 0);
  return rank(a) - rank(b) || b.length - a.length || (a < b ? -1 : a > b ? 1 : 0);
}

function listenerTls(l: GatewayListener, gwNs: string, secrets: Map<string, SecretResource>, grants: ReferenceGrantResource[], warnings: string[]): ListenerTls {
  const out: ListenerTls = { listener: l.name, hostname: l.hostname ?? '*', secrets: [] };
  const certs: string[] = [];
  const keys: string[] = [];
  for (const ref of l.tls?.certificateRefs ?? []) {
    const ns = ref.namespace ?? gwNs;
    const key = `${ns}/${ref.name}`;
    out.secrets.push(key);
    if (!referenceAllowed(grants, { group: GATEWAY_GROUP, kind: 'Gateway', namespace: gwNs }, { group: '', kind: 'Secret', namespace: ns, name: ref.name })) {
      out.error = `Secret ${key} is in another namespace and no ReferenceGrant allows it`;
      continue;
    }
    const s = secrets.get(key);
    const cert = s ? secretValue(s, TLS_CERT_KEY) : undefined;
    const k = s ? secretValue(s, TLS_KEY_KEY) : undefined;
    if (!cert || !k) { out.error = s ? `Secret ${key} has no ${cert ? TLS_KEY_KEY : TLS_CERT_KEY}` : `Secret ${key} was not received (missing, or not permitted)`; continue; }
    certs.push(cert.toString());
    keys.push(k.toString());
  }
  if (certs.length) {
    try {
      // Several certificateRefs (e.g. RSA and ECDSA) go into one context; OpenSSL picks by the client's algorithms.
      out.context = tls.createSecureContext({ cert: certs, key: keys, minVersion: 'TLSv1.2' });
      out.pem = { cert: certs, key: keys };
      delete out.error;
    } catch (e: unknown) {
      out.error = `the certificate of listener ${l.name} cannot be used: ${e instanceof Error ? e.message.replace(/-----BEGIN[\s\S]*$/, '') : 'unknown error'}`;
    }
  }
  if (out.error) warnings.push(`listener ${l.name}: ${out.error}; TLS handshakes on it fail`);
  return out;
}
