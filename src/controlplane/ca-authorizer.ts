// Who may get which certificate: a node credential (a ztunnel) may obtain only the identities
// of workloads currently scheduled on that node (ImpersonatedIdentity); a proxy credential (a
// waypoint replica, a sidecar) only the identity of its own pod. A pure decision over the mesh
// model, so it is tested without a CA.
import type { MeshModel } from '../model/mesh-model.js';

export type CaVerdict = { ok: true; identity: string } | { ok: false; status: 'PERMISSION_DENIED' | 'INVALID_ARGUMENT' | 'UNAUTHENTICATED'; reason: string };

export function authorizeCertificate(model: MeshModel, caller: { nodeId?: string; pod?: { namespace: string; name: string } }, requested: string | undefined): CaVerdict {
  if (caller.pod) {
    const own = model.workloadByName(caller.pod.namespace, caller.pod.name);
    if (!own) return { ok: false, status: 'PERMISSION_DENIED', reason: `the proxy of ${caller.pod.namespace}/${caller.pod.name} asks for a certificate, but that pod does not exist` };
    if (requested !== undefined && requested !== own.identity) {
      return { ok: false, status: 'PERMISSION_DENIED', reason: `the proxy of ${caller.pod.namespace}/${caller.pod.name} may obtain only its own identity ${own.identity}, not ${requested}` };
    }
    return { ok: true, identity: own.identity };
  }
  if (!caller.nodeId) return { ok: false, status: 'UNAUTHENTICATED', reason: 'the caller presented no node credential' };
  if (!requested) return { ok: false, status: 'INVALID_ARGUMENT', reason: 'a ztunnel must name the workload identity it asks for (ImpersonatedIdentity)' };
  const workloads = model.workloadsWithIdentity(requested);
  if (workloads.length === 0) return { ok: false, status: 'PERMISSION_DENIED', reason: `no workload has identity ${requested}` };
  if (!workloads.some((w) => w.node === caller.nodeId)) {
    const where = [...new Set(workloads.map((w) => w.node))].join(', ');
    return { ok: false, status: 'PERMISSION_DENIED', reason: `node ${caller.nodeId} runs no workload with identity ${requested} (it runs on ${where})` };
  }
  return { ok: true, identity: requested };
}
