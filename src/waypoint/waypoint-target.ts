// What a request through a waypoint is addressed to, for policy binding (pure).
//
// Istio binds waypoint policies (AuthorizationPolicy, RequestAuthentication) by `targetRefs`:
// - kind Gateway naming the waypoint: all traffic through that waypoint;
// - kind Service (or ServiceEntry) naming the destination service: that service's traffic;
// - kind GatewayClass `istio-waypoint`, from the root namespace only: every waypoint (Istio 1.25+).
// Selector-based and namespace-wide policies are never enforced by a waypoint.

import type { PolicyTarget } from '../rbac/index.js';

export const WAYPOINT_GATEWAY_CLASS = 'istio-waypoint';

export interface WaypointTarget {
  waypoint: { namespace: string; name: string };
  /** The destination service, when the request is service-addressed. */
  service?: { namespace: string; name: string; kind?: 'Service' | 'ServiceEntry' };
}

/** The PolicyTargets a request through `target` is bound by: the waypoint Gateway, then its service. */
export function policyTargetsOf(target: WaypointTarget): PolicyTarget[] {
  const out: PolicyTarget[] = [
    { kind: 'Gateway', namespace: target.waypoint.namespace, name: target.waypoint.name, gatewayClassName: WAYPOINT_GATEWAY_CLASS },
  ];
  if (target.service) out.push({ kind: target.service.kind ?? 'Service', namespace: target.service.namespace, name: target.service.name });
  return out;
}
