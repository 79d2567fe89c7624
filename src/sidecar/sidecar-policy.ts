// What a sidecar enforces for its own pod (pure).
//
// - Inbound AuthorizationPolicy: the policies that apply to the pod as a workload (as
//   rbac/applicable.ts selects them): root-namespace policies without selector, its namespace's policies without
//   selector, and the selector policies that pick it. The control plane already matched the
//   selectors against the pod's labels and listed the matches by name in the workload's
//   `authorization_policies`, so the sidecar needs no labels: it selects, among the full
//   AuthorizationPolicies it received as Ambit config, exactly what a ztunnel would
//   (`policiesForZtunnel`) -- but evaluates them with the HTTP attributes, L7 rules included.
//   targetRefs policies are never the sidecar's: a waypoint enforces them.
// - PeerAuthentication: the control plane's converted policies (`istio_converted_static_strict`,
//   `converted_peer_authentication_<name>`) decide whether plaintext (the pod's 15006) may
//   reach the pod at all, before any HTTP is read, as the ztunnel decides it.
// - Outbound: no authorization (Istio's sidecars enforce policy on the receiving side only).
import type { CompiledPolicy } from '../rbac/compiled-policy.js';
import { policiesForZtunnel, STATIC_STRICT_POLICY_NAME, type Decision } from '../rbac/index.js';
import type { Workload } from '../xds/workload-api.js';
import type { MeshView } from '../dataplane/mesh-view.js';
import { authorizeConnection } from '../dataplane/l4-forward.js';

const CONVERTED_PEER_AUTHN_PREFIX = 'converted_peer_authentication_';

/** The AuthorizationPolicies a sidecar enforces on requests to its pod. */
export function sidecarInboundPolicies(all: readonly CompiledPolicy[], self: Pick<Workload, 'namespace' | 'authorizationPolicies'>): CompiledPolicy[] {
  return policiesForZtunnel(all, self);
}

/** Whether an Authorization pushed to proxies is PeerAuthentication's, converted. */
export function isPeerAuthenticationPolicy(name: string): boolean {
  return name === STATIC_STRICT_POLICY_NAME || name.startsWith(CONVERTED_PEER_AUTHN_PREFIX);
}

/**
 * May a plaintext connection (no peer identity) from `sourceIp` reach `target` on the pod?
 * Only PeerAuthentication decides here; AuthorizationPolicies come after, per request.
 */
export function decidePlaintext(state: MeshView, self: Workload, sourceIp: string, target: { ip: string; port: number }): Decision {
  const peerAuthn = state.policiesFor(self).filter((p) => isPeerAuthenticationPolicy(p.name));
  return authorizeConnection(peerAuthn, { sourceIp, destination: target }, 'ztunnel');
}
