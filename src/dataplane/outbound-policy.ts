// Istio's mesh-wide outbound policy at the ztunnel (pure). With `outboundTrafficPolicy.mode:
// REGISTRY_ONLY`, a captured connection to a destination that is not in the registry — no
// Service VIP, no workload address (pods and ServiceEntry endpoints), no ServiceEntry address
// range — is refused instead of passed through.
//
// Istio's ambient ztunnel does not enforce this (only sidecars do, by routing unknown
// destinations to BlackHoleCluster); Ambit's ztunnel does, and labels the refused connection's
// destination_service "BlackHoleCluster" as Istio's sidecars do.
import { cidrContains, parseCidr, parseIp } from '../core/ip.js';
import type { Service } from '../xds/workload-api.js';
import type { MeshView } from './mesh-view.js';

export const BLACK_HOLE_CLUSTER = 'BlackHoleCluster';

/** The pseudo-service a refused connection is reported against. */
export const BLACK_HOLE_SERVICE: Service = Object.freeze({
  name: BLACK_HOLE_CLUSTER, namespace: '', hostname: BLACK_HOLE_CLUSTER, addresses: [], ports: [], subjectAltNames: [],
});

/** Whether `ip` is an address the registry knows. */
export function inRegistry(state: MeshView, ip: string): boolean {
  if (state.serviceByVip(ip) || state.workloadByIp(ip)) return true;
  const parsed = parseIp(ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip);
  if (!parsed) return false;
  return state.mesh.registryCidrs.some((c) => {
    const cidr = parseCidr(c);
    return cidr !== undefined && cidrContains(cidr, parsed);
  });
}

/** The refusal of a connection to an unregistered destination, or undefined when it may pass. */
export function outboundPolicyRefusal(state: MeshView, dst: { ip: string; port: number }): { refusal: 'registry_only'; reason: string } | undefined {
  if (state.mesh.outboundTrafficPolicy !== 'REGISTRY_ONLY' || inRegistry(state, dst.ip)) return undefined;
  return { refusal: 'registry_only', reason: `${dst.ip}:${dst.port} is not in the registry (no Service, ServiceEntry or workload has it) and the mesh's outboundTrafficPolicy is REGISTRY_ONLY` };
}
