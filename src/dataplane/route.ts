// Where an outbound connection goes: a pure decision over the ztunnel's state, tested without
// a socket (as ztunnel's build_request()). The data path only carries out what this says.
//
// Order of the decision, for a connection from a local workload to an original destination:
// 1. A destination port of 15001/15006/15008 on a pod is refused (it would loop).
// 2. A service VIP: if the service has a waypoint (and the source is not that waypoint), go to
//    the waypoint with :authority = the original VIP:port. Otherwise pick a ready endpoint
//    (round robin) and route to it as in 3, with the endpoint's target port.
// 3. A workload IP: if the workload has a waypoint (and the source is not it), go to the
//    waypoint with :authority = the original ip:port; if it speaks HBONE, HBONE to
//    <pod>:15008 with :authority = ip:port; otherwise plain TCP (passthrough).
// 4. Anything else is outside the mesh: plain TCP passthrough, unless the mesh's outbound policy
//    is REGISTRY_ONLY and no ServiceEntry range holds it (outbound-policy.ts): refused.
import { formatAuthority } from '../core/ip.js';
import type { GatewayAddress, Service, Workload } from '../xds/workload-api.js';
import type { Refusal } from '../telemetry/connection-record.js';
import { identityOf, normalizeIp, targetPortOf, type MeshView, type Picker } from './mesh-view.js';
import { BLACK_HOLE_SERVICE, outboundPolicyRefusal } from './outbound-policy.js';
import { CAPTURE_PORTS, HBONE_PORT } from '../core/mesh-constants.js';

/** Ports a proxy listens on inside a pod's network namespace (outbound, inbound, HBONE, DNS). */
export { CAPTURE_PORTS, HBONE_PORT };

/**
 * Why a captured connection is the proxy calling itself, or undefined when it is not. It
 * reached the capture listener without being redirected (its original destination is the
 * listener itself: someone connected to the port directly), or, outbound, it aims at loopback
 * or the pod's own address — traffic the capture rules never redirect, so only a direct
 * connection can bring it here. Followed, such a connection would come straight back to the
 * listener, again and again.
 */
export function selfCall(direction: 'inbound' | 'outbound', dst: Destination, listener: Destination, pod: { addresses: readonly string[] }): string | undefined {
  if (dst.port === listener.port && normalizeIp(dst.ip) === normalizeIp(listener.ip)) return `a direct connection to the ${direction} capture port ${listener.port}`;
  if (direction === 'inbound') return CAPTURE_PORTS.has(dst.port) ? `port ${dst.port} is a proxy port` : undefined;
  if (isLoopback(dst.ip)) return `destination ${formatAuthority(dst.ip, dst.port)} is loopback`;
  if (pod.addresses.includes(normalizeIp(dst.ip))) return `destination ${formatAuthority(dst.ip, dst.port)} is the pod itself`;
  return undefined;
}

function isLoopback(ip: string): boolean {
  const n = normalizeIp(ip);
  return n.startsWith('127.') || n === '::1';
}

export interface Destination {
  ip: string;
  port: number;
}

export type OutboundRoute =
  | {
      kind: 'hbone';
      /** `direct` to the destination pod, or to its `waypoint`. */
      via: 'direct' | 'waypoint';
      /** Where the HBONE connection goes (pod or waypoint ip:15008). */
      connectTo: Destination;
      authority: string;
      expectedIdentities: string[];
      /** The final destination workload (absent when going to a waypoint for a service). */
      workload?: Workload;
      service?: Service;
      /** For a waypoint hop: the waypoint replica. */
      waypoint?: Workload;
      /** The destination port on the workload (after service target-port mapping). */
      targetPort: number;
    }
  | { kind: 'passthrough'; connectTo: Destination; workload?: Workload; service?: Service; reason: string }
  | { kind: 'refuse'; reason: string; refusal: Extract<Refusal, 'capture_port' | 'no_endpoint' | 'no_waypoint' | 'registry_only'>; service?: Service };

/** Chooses one of n candidates; the data path passes a round-robin counter. */
export { roundRobin, type Picker } from './mesh-view.js';

export function decideOutbound(state: MeshView, source: Workload | undefined, dst: Destination, pick: Picker): OutboundRoute {
  const service = state.serviceByVip(dst.ip);
  if (service) return routeToService(state, source, service, dst, pick);

  const workload = state.workloadByIp(dst.ip);
  if (!workload) {
    const refusal = outboundPolicyRefusal(state, dst);
    if (refusal) return { kind: 'refuse', ...refusal, service: BLACK_HOLE_SERVICE };
    return { kind: 'passthrough', connectTo: dst, reason: 'destination is not in the mesh' };
  }
  if (CAPTURE_PORTS.has(dst.port)) {
    return { kind: 'refuse', refusal: 'capture_port', reason: `port ${dst.port} of a pod is a mesh capture port; connecting to it would loop` };
  }
  if (workload.waypoint && !isSourceWaypoint(state, source, workload.waypoint)) {
    return viaWaypoint(state, workload.waypoint, formatAuthority(dst.ip, dst.port), dst.port, pick, { workload });
  }
  return toWorkload(workload, dst.port, undefined);
}

function routeToService(state: MeshView, source: Workload | undefined, service: Service, dst: Destination, pick: Picker): OutboundRoute {
  if (service.waypoint && !isSourceWaypoint(state, source, service.waypoint)) {
    return viaWaypoint(state, service.waypoint, formatAuthority(dst.ip, dst.port), dst.port, pick, { service });
  }
  // An endpoint known only by a host name (a ServiceEntry with resolution DNS) is resolved by
  // an egress waypoint; the ztunnel itself connects to addresses only.
  const endpoint = state.pickEndpoint(service, pick);
  if (!endpoint) {
    const byName = state.healthyEndpointsOf(service).find((w) => w.hostname);
    return { kind: 'refuse', refusal: 'no_endpoint', reason: byName
      ? `service ${service.hostname} is reached by resolving ${byName.hostname}; the ztunnel does not resolve host names: send it through an egress waypoint (label the ServiceEntry istio.io/use-waypoint)`
      : `service ${service.hostname} has no ready endpoint` };
  }
  return toWorkload(endpoint, targetPortOf(endpoint, service, dst.port), service);
}

function toWorkload(workload: Workload, targetPort: number, service: Service | undefined): OutboundRoute {
  const ip = workload.addresses[0]!;
  if (workload.tunnelProtocol === 'HBONE') {
    return {
      kind: 'hbone', via: 'direct', connectTo: { ip, port: HBONE_PORT }, authority: formatAuthority(ip, targetPort),
      expectedIdentities: [identityOf(workload), ...(service?.subjectAltNames ?? [])], workload, service, targetPort,
    };
  }
  return { kind: 'passthrough', connectTo: { ip, port: targetPort }, workload, service, reason: 'destination does not speak HBONE' };
}

/** The Service of a waypoint, from a workload's or service's waypoint address. */
export function waypointService(state: MeshView, gw: GatewayAddress): Service | undefined {
  if (gw.address) return state.serviceByVip(gw.address.address);
  if (gw.hostname) return state.serviceByKey(`${gw.hostname.namespace}/${gw.hostname.hostname}`);
  return undefined;
}

function isSourceWaypoint(state: MeshView, source: Workload | undefined, gw: GatewayAddress): boolean {
  if (!source) return false;
  const svc = waypointService(state, gw);
  if (svc) return state.endpointsOf(svc).some((w) => w.uid === source.uid);
  return gw.address !== undefined && source.addresses.includes(gw.address.address);
}

function viaWaypoint(
  state: MeshView, gw: GatewayAddress, authority: string, targetPort: number, pick: Picker,
  target: { workload?: Workload; service?: Service },
): OutboundRoute {
  const svc = waypointService(state, gw);
  const replicas = svc ? state.healthyEndpointsOf(svc) : [];
  if (!svc || replicas.length === 0) {
    const name = svc?.hostname ?? gw.address?.address ?? gw.hostname?.hostname ?? '?';
    return { kind: 'refuse', refusal: 'no_waypoint', reason: `waypoint ${name} has no ready replica` };
  }
  const replica = replicas[pick(`wp/${svc.namespace}/${svc.hostname}`, replicas.length)]!;
  return {
    kind: 'hbone', via: 'waypoint', connectTo: { ip: replica.addresses[0]!, port: gw.hboneMtlsPort || HBONE_PORT }, authority,
    expectedIdentities: [identityOf(replica)], waypoint: replica, targetPort, ...target,
  };
}
