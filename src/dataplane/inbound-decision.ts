// Whether an inbound connection (an HBONE CONNECT on a pod's 15008, or plaintext captured on
// its 15006) may reach the pod: a pure decision, as route.ts is for outbound.
//   400  the authority is not this listener's workload, or names a capture port (loop)
//   401  authorization denies (the decision names the policy and rule)
import { parseAuthority } from '../core/ip.js';
import type { Decision } from '../rbac/index.js';
import { authorizeConnection } from './l4-forward.js';
import type { Workload } from '../xds/workload-api.js';
import { CAPTURE_PORTS } from './route.js';
import { normalizeIp, type MeshView } from './mesh-view.js';

export interface InboundRequest {
  /** The original destination (from :authority, or SO_ORIGINAL_DST for plaintext). */
  target: { ip: string; port: number };
  /** spiffe://... of the peer; undefined for plaintext. */
  peerIdentity?: string;
  sourceIp?: string;
}

export type InboundDecision =
  | { kind: 'accept'; port: number; authz: Decision }
  | { kind: 'reject'; status: 400; refusal: 'not_this_workload' | 'capture_port'; reason: string }
  | { kind: 'reject'; status: 401; reason: string; authz: Decision };

export function decideInbound(state: MeshView, workload: Workload, req: InboundRequest): InboundDecision {
  if (!workload.addresses.includes(normalizeIp(req.target.ip))) {
    return { kind: 'reject', status: 400, refusal: 'not_this_workload', reason: `${req.target.ip} is not the workload behind this listener (${workload.namespace}/${workload.name})` };
  }
  if (CAPTURE_PORTS.has(req.target.port)) {
    return { kind: 'reject', status: 400, refusal: 'capture_port', reason: `port ${req.target.port} is a mesh capture port; refusing a loop` };
  }
  const authz = authorize(state, workload, req);
  if (authz.decision === 'DENY') return { kind: 'reject', status: 401, reason: authz.reason, authz };
  return { kind: 'accept', port: req.target.port, authz };
}

export function authorize(state: MeshView, workload: Workload, req: InboundRequest): Decision {
  return authorizeConnection(state.policiesFor(workload), { sourceIp: req.sourceIp, peerIdentity: req.peerIdentity, destination: req.target }, 'ztunnel');
}

export function parseTarget(authority: string): { ip: string; port: number } | undefined {
  const a = parseAuthority(authority);
  return a ? { ip: a.ip, port: a.port } : undefined;
}
